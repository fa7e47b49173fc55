// webauthn-soft.mjs: a software WebAuthn authenticator plus the browser's part of the ceremony,
// for tests (Node 20, node:crypto only). It answers the JSON options of the SparkWeb contract
// (A4 `credentials.publicKey`, A6 `assertion.publicKey`; binary members base64url) with the JSON
// credential a browser posts to A5/A7 (every binary member base64url, no padding).
//
//   const a = new SoftAuthenticator({ alg: 'ES256', attestation: 'packed-x5c' });
//   const cred = a.create(startJson.credentials.publicKey, 'https://gw.example.org');
//   const asn = a.get(startJson.assertion.publicKey, 'https://gw.example.org');
//
// One authenticator holds one credential, made by create(). Algorithms: 'ES256' (P-256),
// 'EdDSA' (Ed25519), 'RS256' (RSA-2048). Attestation: 'none' (empty attStmt), 'packed' (self:
// signed with the credential key), 'packed-x5c' (signed by an attestation key whose self-signed
// X.509 v3 certificate, built in pure Node by der.mjs, is sent in x5c; no openssl CLI).
//
// Tampering: both ceremonies take an optional third argument of overrides, applied before
// signing unless said otherwise (so the signature stays valid over what was altered):
//   type, challenge (b64url), origin, crossOrigin, clientData (extra members merged in),
//   clientDataJSON (the exact string to send), rpId (hashed into authData instead of the real
//   one), flags (the whole flags byte), up/uv (false clears the flag), signCount (this call's
//   counter), extensions (authData extensions map: sets ED), fmt, attStmt (replaces it; a Map
//   or object), attStmtAlg, corruptSignature (flips a bit after signing), userHandle (string
//   b64url, '' allowed).
// Cloning: clone() returns an authenticator with the same key, credential and counter (the
// counter then advances separately: the replay/clone case); resetSignCount(n) rewinds it.
import crypto from 'node:crypto';

import { encode } from './cbor.mjs';
import { selfSignedCert } from './der.mjs';

const b64u = (b) => Buffer.from(b).toString('base64url');
const unb64u = (s) => Buffer.from(s, 'base64url');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();

export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
export const FLAG_BE = 0x08;
export const FLAG_BS = 0x10;
export const FLAG_AT = 0x40;
export const FLAG_ED = 0x80;

const ALGS = {
    ES256: { cose: -7, gen: ['ec', { namedCurve: 'P-256' }], digest: 'sha256' },
    EdDSA: { cose: -8, gen: ['ed25519', {}], digest: null },
    RS256: { cose: -257, gen: ['rsa', { modulusLength: 2048 }], digest: 'sha256' },
};

// The COSE_Key (RFC 8152 §13, RFC 8230) of a node:crypto public key, CTAP2 canonical order.
export function coseKey(publicKey, alg) {
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = ALGS[alg].cose;
    switch (alg) {
    case 'ES256':
        return encode(new Map([[1, 2], [3, cose], [-1, 1], [-2, unb64u(jwk.x)], [-3, unb64u(jwk.y)]]));
    case 'EdDSA':
        return encode(new Map([[1, 1], [3, cose], [-1, 6], [-2, unb64u(jwk.x)]]));
    case 'RS256':
        return encode(new Map([[1, 3], [3, cose], [-1, unb64u(jwk.n)], [-2, unb64u(jwk.e)]]));
    default:
        throw new Error(`unknown alg ${alg}`);
    }
}

function sign(alg, privateKey, data) {
    return crypto.sign(ALGS[alg].digest, data, privateKey);
}

export class SoftAuthenticator {
    // opts: alg ('ES256'), attestation ('none'), signCount (initial counter, 0), counterStep
    // (added by each get(); 0 models an authenticator without a counter, 1 default), aaguid
    // (16-byte Buffer, random), credIdLength (32), attestationAlg (key type of the x5c
    // certificate, default: alg), cert (options for der.mjs selfSignedCert: version, ca,
    // aaguid, subject; default: a valid attestation certificate carrying aaguid), backup
    // (true sets BE|BS).
    constructor(opts = {}) {
        this.alg = opts.alg ?? 'ES256';
        if (!ALGS[this.alg]) throw new Error(`unknown alg ${this.alg}`);
        this.attestation = opts.attestation ?? 'none';
        if (!['none', 'packed', 'packed-x5c'].includes(this.attestation)) {
            throw new Error(`unknown attestation ${this.attestation}`);
        }
        this.signCount = opts.signCount ?? 0;
        this.counterStep = opts.counterStep ?? 1;
        this.aaguid = opts.aaguid ?? crypto.randomBytes(16);
        this.backup = opts.backup ?? false;
        const { publicKey, privateKey } = crypto.generateKeyPairSync(...ALGS[this.alg].gen);
        this.publicKey = publicKey;
        this.privateKey = privateKey;
        this.publicKeyCose = coseKey(publicKey, this.alg);
        this.credentialId = crypto.randomBytes(opts.credIdLength ?? 32);
        this.userHandle = null;
        this.rpId = null;
        if (this.attestation === 'packed-x5c') {
            this.attestationAlg = opts.attestationAlg ?? this.alg;
            const pair = crypto.generateKeyPairSync(...ALGS[this.attestationAlg].gen);
            this.attestationKey = pair.privateKey;
            this.certificate = selfSignedCert(pair.publicKey, pair.privateKey,
                { aaguid: this.aaguid, ...(opts.cert ?? {}) });
        }
    }

    // A second authenticator with the same credential and counter (a clone).
    clone() {
        const c = Object.create(SoftAuthenticator.prototype);
        Object.assign(c, this);
        return c;
    }

    resetSignCount(n = 0) {
        this.signCount = n;
    }

    // navigator.credentials.create(): options are PublicKeyCredentialCreationOptions JSON
    // (or {publicKey: ...}); returns the registration credential JSON (A5 body).
    create(options, origin, o = {}) {
        const pk = options.publicKey ?? options;
        const rpId = pk.rp?.id ?? new URL(origin).hostname;
        const params = pk.pubKeyCredParams;
        if (params && !params.some((p) => p.alg === ALGS[this.alg].cose)) {
            throw new Error(`NotSupportedError: ${this.alg} not in pubKeyCredParams`);
        }
        const excluded = (pk.excludeCredentials ?? []).map((c) => c.id);
        if (excluded.includes(b64u(this.credentialId))) {
            throw new Error('InvalidStateError: credential excluded');
        }
        this.rpId = rpId;
        this.userHandle = pk.user?.id ? unb64u(pk.user.id) : null;
        const clientDataJSON = this._clientData('webauthn.create', pk.challenge, origin, o);
        const credData = Buffer.alloc(18);
        this.aaguid.copy(credData, 0);
        credData.writeUInt16BE(this.credentialId.length, 16);
        const authData = this._authData(o, FLAG_AT, this.signCount,
            Buffer.concat([credData, this.credentialId, this.publicKeyCose]));
        const toSign = Buffer.concat([authData, sha256(clientDataJSON)]);
        let fmt = this.attestation === 'none' ? 'none' : 'packed';
        let attStmt = new Map();
        if (this.attestation === 'packed') {
            attStmt = new Map([['alg', o.attStmtAlg ?? ALGS[this.alg].cose],
                ['sig', this._corrupt(sign(this.alg, this.privateKey, toSign), o)]]);
        } else if (this.attestation === 'packed-x5c') {
            attStmt = new Map([['alg', o.attStmtAlg ?? ALGS[this.attestationAlg].cose],
                ['sig', this._corrupt(sign(this.attestationAlg, this.attestationKey, toSign), o)],
                ['x5c', [this.certificate]]]);
        }
        if (o.fmt !== undefined) fmt = o.fmt;
        if (o.attStmt !== undefined) attStmt = o.attStmt;
        const attestationObject = encode(new Map([['fmt', fmt], ['attStmt', attStmt],
            ['authData', authData]]));
        return {
            id: b64u(this.credentialId),
            rawId: b64u(this.credentialId),
            type: 'public-key',
            response: {
                clientDataJSON: b64u(clientDataJSON),
                attestationObject: b64u(attestationObject),
            },
            clientExtensionResults: {},
        };
    }

    // navigator.credentials.get(): options are PublicKeyCredentialRequestOptions JSON (or
    // {publicKey: ...}); returns the assertion credential JSON (A7 body). Advances the counter
    // by counterStep first.
    get(options, origin, o = {}) {
        const pk = options.publicKey ?? options;
        const rpId = pk.rpId ?? this.rpId ?? new URL(origin).hostname;
        const allowed = (pk.allowCredentials ?? []).map((c) => c.id);
        if (allowed.length && !allowed.includes(b64u(this.credentialId))) {
            throw new Error('NotAllowedError: credential not in allowCredentials');
        }
        this.signCount = (this.signCount + this.counterStep) >>> 0;
        const clientDataJSON = this._clientData('webauthn.get', pk.challenge, origin, o);
        const authData = this._authData({ rpId, ...o }, 0, o.signCount ?? this.signCount,
            Buffer.alloc(0));
        const sig = sign(this.alg, this.privateKey,
            Buffer.concat([authData, sha256(clientDataJSON)]));
        const userHandle = o.userHandle ?? (this.userHandle ? b64u(this.userHandle) : '');
        return {
            id: b64u(this.credentialId),
            rawId: b64u(this.credentialId),
            type: 'public-key',
            response: {
                clientDataJSON: b64u(clientDataJSON),
                authenticatorData: b64u(authData),
                signature: b64u(this._corrupt(sig, o)),
                userHandle,
            },
            clientExtensionResults: {},
        };
    }

    // The clientDataJSON bytes, members in the order browsers use.
    _clientData(type, challenge, origin, o) {
        if (o.clientDataJSON !== undefined) return Buffer.from(o.clientDataJSON, 'utf8');
        const cd = {
            type: o.type ?? type,
            challenge: o.challenge ?? b64u(unb64u(challenge)),
            origin: o.origin ?? origin,
            crossOrigin: o.crossOrigin ?? false,
            ...(o.clientData ?? {}),
        };
        return Buffer.from(JSON.stringify(cd), 'utf8');
    }

    _authData(o, extraFlags, count, tail) {
        let flags = FLAG_UP | FLAG_UV | extraFlags;
        if (this.backup) flags |= FLAG_BE | FLAG_BS;
        if (o.up === false) flags &= ~FLAG_UP;
        if (o.uv === false) flags &= ~FLAG_UV;
        let ext = Buffer.alloc(0);
        if (o.extensions !== undefined) {
            flags |= FLAG_ED;
            ext = encode(o.extensions);
        }
        if (o.flags !== undefined) flags = o.flags;
        const head = Buffer.alloc(37);
        sha256(Buffer.from(o.rpId ?? this.rpId, 'utf8')).copy(head, 0);
        head[32] = flags;
        head.writeUInt32BE((o.signCount ?? count) >>> 0, 33);
        return Buffer.concat([head, tail, ext]);
    }

    _corrupt(sig, o) {
        if (!o.corruptSignature) return sig;
        const s = Buffer.from(sig);
        s[s.length >> 1] ^= 0x01;
        return s;
    }
}
