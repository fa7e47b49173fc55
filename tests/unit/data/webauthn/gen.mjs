// gen.mjs: writes the WebAuthn test vectors for tests/unit/test_auth_webauthn.c
// (vectors.json next to this file) and seeds for tests/fuzz/fuzz_auth_webauthn.c
// (tests/fuzz/corpus/auth_webauthn/), all made by the software authenticator of the
// integration tests. Keys are random, so every run writes different but equivalent files.
//
//   node tests/unit/data/webauthn/gen.mjs
//
// vectors.json: { rp_id, origin, registrations: [row], assertions: [row] }, binary members
// base64url. Each row has a name (printed on failure), `expect` ("OK", "EINVAL", "EACCES",
// "ENOTSUP", "ESTALE") and require_uv. Registration rows: challenge, client_data, att_obj,
// and for OK rows what webauthn_new_cred must hold (alg, fmt, x5c, cred_id, cose_key,
// sign_count, flags). Assertion rows: challenge, client_data, auth_data, sig, cose_key, alg
// (as passed to the verifier), stored_count, and new_count for OK rows.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CborRaw, encode } from '../../../integration/lib/cbor.mjs';
import { SoftAuthenticator, FLAG_AT, FLAG_BS, FLAG_UP, FLAG_UV } from
    '../../../integration/lib/webauthn-soft.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../../..');
const RP_ID = 'example.org';
const ORIGIN = 'https://example.org';
const COSE = { ES256: -7, EdDSA: -8, RS256: -257 };
const b64u = (b) => Buffer.from(b).toString('base64url');

function creationOptions(challenge) {
    return {
        rp: { name: 'sparkweb', id: RP_ID },
        user: { name: 'alice', displayName: 'Alice', id: b64u(crypto.randomBytes(64)) },
        challenge: b64u(challenge),
        pubKeyCredParams: [{ alg: -7, type: 'public-key' }, { alg: -8, type: 'public-key' },
            { alg: -257, type: 'public-key' }],
        excludeCredentials: [],
        attestation: 'none',
    };
}

const registrations = [];
const assertions = [];

// One registration row. opts: authenticator options; o: create() overrides; expect; extra:
// require_uv, expected_challenge (the verifier's challenge, when it should differ).
function reg(name, opts, o = {}, expect = 'OK', extra = {}) {
    const a = new SoftAuthenticator(opts);
    const challenge = crypto.randomBytes(32);
    const cred = a.create(creationOptions(challenge), ORIGIN, o);
    const row = {
        name,
        expect,
        require_uv: extra.require_uv ?? false,
        challenge: b64u(extra.expected_challenge ?? challenge),
        client_data: cred.response.clientDataJSON,
        att_obj: cred.response.attestationObject,
    };
    if (expect === 'OK') {
        Object.assign(row, {
            alg: COSE[a.alg],
            fmt: a.attestation === 'none' ? 'none' : 'packed',
            x5c: a.attestation === 'packed-x5c',
            cred_id: b64u(a.credentialId),
            cose_key: b64u(a.publicKeyCose),
            sign_count: a.signCount,
            flags: authFlags(cred),
        });
    }
    registrations.push(row);
    return a;
}

function authFlags(cred) {
    // The flags byte follows the rpIdHash inside the attestationObject's authData.
    const ao = Buffer.from(cred.response.attestationObject, 'base64url');
    const hash = crypto.createHash('sha256').update(RP_ID).digest();
    const at = ao.indexOf(hash);
    return ao[at + 32];
}

// One assertion row from authenticator a. o: get() overrides; extra: stored_count (default
// the counter before the call), require_uv, alg, cose_key (to verify against another key),
// expected_challenge.
function asr(name, a, o = {}, expect = 'OK', extra = {}) {
    const stored = extra.stored_count ?? a.signCount;
    const challenge = crypto.randomBytes(32);
    const res = a.get({ challenge: b64u(challenge), rpId: RP_ID, allowCredentials:
        [{ type: 'public-key', id: b64u(a.credentialId) }], userVerification: 'preferred' },
    ORIGIN, o);
    const row = {
        name,
        expect,
        require_uv: extra.require_uv ?? false,
        challenge: b64u(extra.expected_challenge ?? challenge),
        client_data: res.response.clientDataJSON,
        auth_data: res.response.authenticatorData,
        sig: res.response.signature,
        cose_key: b64u(extra.cose_key ?? a.publicKeyCose),
        alg: extra.alg ?? COSE[a.alg],
        stored_count: stored,
    };
    if (expect === 'OK') row.new_count = Buffer.from(res.response.authenticatorData,
        'base64url').readUInt32BE(33);
    assertions.push(row);
    return res;
}

// Registrations that verify: every algorithm with every attestation.
const auths = {};
for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    for (const att of ['none', 'packed', 'packed-x5c']) {
        auths[`${alg}-${att}`] = reg(`${alg} ${att} registers`, { alg, attestation: att,
            signCount: att === 'none' ? 0 : 5 });
    }
}
reg('EdDSA key with an ES256 attestation certificate registers',
    { alg: 'EdDSA', attestation: 'packed-x5c', attestationAlg: 'ES256' });
reg('RS256 key with an EdDSA attestation certificate registers',
    { alg: 'RS256', attestation: 'packed-x5c', attestationAlg: 'EdDSA' });
reg('packed with credProtect and hmac-secret extensions registers',
    { alg: 'ES256', attestation: 'packed' },
    { extensions: new Map([['credProtect', 2], ['hmac-secret', true]]) });
reg('none with an unknown extension registers', { attestation: 'none' },
    { extensions: new Map([['example.ext', 'x']]) });
reg('backup eligible and backed up registers', { alg: 'ES256', attestation: 'packed',
    backup: true });
reg('UV required and present registers', { attestation: 'packed' }, {}, 'OK',
    { require_uv: true });
reg('credential id of 1023 bytes registers', { alg: 'ES256', attestation: 'packed',
    credIdLength: 1023 });

// Registrations that must fail.
reg('credential id of 1024 bytes is malformed', { credIdLength: 1024 }, {}, 'EINVAL');
reg('registration with a wrong challenge is refused', {}, {}, 'EACCES',
    { expected_challenge: crypto.randomBytes(32) });
reg('registration with a shorter challenge is refused', {}, {}, 'EACCES',
    { expected_challenge: crypto.randomBytes(16) });
reg('registration from a wrong origin is refused', {}, { origin: 'https://evil.example.org' },
    'EACCES');
reg('registration from an origin with a port is refused', {},
    { origin: 'https://example.org:8443' }, 'EACCES');
reg('registration with type webauthn.get is refused', {}, { type: 'webauthn.get' }, 'EACCES');
reg('registration with crossOrigin true is refused', {}, { crossOrigin: true }, 'EACCES');
reg('registration with crossOrigin a string is malformed', {}, { crossOrigin: 'false' },
    'EINVAL');
reg('registration with a non-base64url challenge is malformed', {},
    { challenge: 'not*base64' }, 'EINVAL');
reg('registration clientDataJSON that is not JSON is malformed', {},
    { clientDataJSON: '{"type":"webauthn.create",' }, 'EINVAL');
reg('registration clientDataJSON with duplicate members is malformed', {},
    { clientDataJSON: '{"type":"webauthn.create","type":"webauthn.create"}' }, 'EINVAL');
reg('registration with another RP ID hash is refused', { attestation: 'packed' },
    { rpId: 'evil.org' }, 'EACCES');
reg('registration without UP is refused', { attestation: 'packed' }, { up: false }, 'EACCES');
reg('registration without UV when required is refused', { attestation: 'packed' },
    { uv: false }, 'EACCES', { require_uv: true });
reg('registration with BS but not BE is malformed', {},
    { flags: FLAG_UP | FLAG_UV | FLAG_AT | FLAG_BS }, 'EINVAL');
reg('registration without the AT flag is malformed', {}, { flags: FLAG_UP | FLAG_UV },
    'EINVAL');
for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    reg(`${alg} packed self signature tampered is refused`, { alg, attestation: 'packed' },
        { corruptSignature: true }, 'EACCES');
    reg(`${alg} packed x5c signature tampered is refused`, { alg, attestation: 'packed-x5c' },
        { corruptSignature: true }, 'EACCES');
}
reg('packed self attStmt alg mismatch is refused', { alg: 'ES256', attestation: 'packed' },
    { attStmtAlg: -257 }, 'EACCES');
reg('packed x5c with an unsupported alg is unsupported', { attestation: 'packed-x5c' },
    { attStmtAlg: -35 }, 'ENOTSUP');
reg('packed x5c alg naming the wrong key type is refused',
    { alg: 'ES256', attestation: 'packed-x5c' }, { attStmtAlg: -257 }, 'EACCES');
reg('packed x5c with a CA certificate is refused', { attestation: 'packed-x5c',
    cert: { ca: true } }, {}, 'EACCES');
reg('packed x5c with a v1 certificate is refused', { attestation: 'packed-x5c',
    cert: { version: 1 } }, {}, 'EACCES');
reg('packed x5c with a certificate for another AAGUID is refused',
    { attestation: 'packed-x5c', cert: { aaguid: crypto.randomBytes(16) } }, {}, 'EACCES');
reg('packed x5c with a wrong OU is refused', { attestation: 'packed-x5c',
    cert: { subject: { C: 'US', O: 'X', OU: 'Something Else', CN: 'Y' } } }, {}, 'EACCES');
reg('packed x5c that is not a certificate is malformed', { attestation: 'packed' },
    { attStmt: new Map([['alg', -7], ['sig', Buffer.alloc(70, 1)],
        ['x5c', [Buffer.from('not a certificate')]]]) }, 'EINVAL');
reg('packed with ECDAA is unsupported', { attestation: 'packed' },
    { attStmt: new Map([['alg', -7], ['sig', Buffer.alloc(70, 1)],
        ['ecdaaKeyId', Buffer.alloc(32)]]) }, 'ENOTSUP');
reg('packed without sig is malformed', { attestation: 'packed' },
    { attStmt: new Map([['alg', -7]]) }, 'EINVAL');
reg('packed with a duplicate alg is malformed', { attestation: 'packed' },
    { attStmt: new CborRaw(Buffer.concat([Buffer.from([0xa3]), encode('alg'), encode(-7),
        encode('alg'), encode(-7), encode('sig'), encode(Buffer.alloc(70, 1))])) }, 'EINVAL');
reg('fmt tpm is unsupported', { attestation: 'packed' }, { fmt: 'tpm' }, 'ENOTSUP');
reg('fmt fido-u2f is unsupported', { attestation: 'packed' }, { fmt: 'fido-u2f' }, 'ENOTSUP');
reg('fmt apple is unsupported', {}, { fmt: 'apple' }, 'ENOTSUP');
reg('fmt that is not text is malformed', {}, { fmt: 7 }, 'EINVAL');
reg('none with a non-empty attStmt is malformed', {},
    { attStmt: new Map([['alg', -7]]) }, 'EINVAL');
reg('none with attStmt not a map is malformed', {}, { attStmt: [] }, 'EINVAL');
reg('EdDSA packed with authData over the 992-byte libfido2 limit is unsupported',
    { alg: 'EdDSA', attestation: 'packed', credIdLength: 1000 }, {}, 'ENOTSUP');

// Assertions.
for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    const a = auths[`${alg}-packed`];
    asr(`${alg} assertion verifies`, a);
    asr(`${alg} second assertion verifies`, a);
    asr(`${alg} assertion with a tampered signature is refused`, a,
        { corruptSignature: true }, 'EACCES');
    const other = auths[`${alg}-none`];
    asr(`${alg} assertion checked against another key is refused`, a, {}, 'EACCES',
        { cose_key: other.publicKeyCose });
}
{
    const a = auths['ES256-none'];
    asr('assertion with alg 0 takes the key\'s alg', a, {}, 'OK', { alg: 0 });
    asr('assertion with a stored alg other than the key\'s is malformed', a, {}, 'EINVAL',
        { alg: -8 });
    asr('assertion with an equal sign count is stale', a, {}, 'ESTALE',
        { stored_count: a.signCount + 1 });
    asr('assertion with a lower sign count is stale', a, {}, 'ESTALE',
        { stored_count: a.signCount + 10 });
    asr('assertion with count zero over a stored count is stale', a, { signCount: 0 }, 'ESTALE',
        { stored_count: 3 });
    asr('assertion with a wrong challenge is refused', a, {}, 'EACCES',
        { expected_challenge: crypto.randomBytes(32) });
    asr('assertion from a wrong origin is refused', a, { origin: 'http://example.org' },
        'EACCES');
    asr('assertion with type webauthn.create is refused', a, { type: 'webauthn.create' },
        'EACCES');
    asr('assertion with crossOrigin true is refused', a, { crossOrigin: true }, 'EACCES');
    asr('assertion with another RP ID hash is refused', a, { rpId: 'example.com' }, 'EACCES');
    asr('assertion without UP is refused', a, { up: false }, 'EACCES');
    asr('assertion without UV when required is refused', a, { uv: false }, 'EACCES',
        { require_uv: true });
    asr('assertion with UV when required verifies', a, {}, 'OK', { require_uv: true });
    asr('assertion without UV when not required verifies', a, { uv: false });
    asr('assertion with the AT flag is malformed', a, { flags: FLAG_UP | FLAG_AT }, 'EINVAL');
    asr('assertion with an unknown extension verifies', a,
        { extensions: new Map([['example.ext', true]]) });
    asr('assertion with an hmac-secret extension verifies', a,
        { extensions: new Map([['hmac-secret', Buffer.alloc(32, 9)]]) });
}
{
    const a = new SoftAuthenticator({ alg: 'ES256', counterStep: 0 });
    a.create(creationOptions(crypto.randomBytes(32)), ORIGIN);
    asr('assertion with count zero over stored zero verifies', a, {}, 'OK',
        { stored_count: 0 });
}
{
    const a = auths['EdDSA-none'];
    const clone = a.clone();
    asr('original authenticator verifies', a);
    asr('clone replaying the same counter is stale', clone, {}, 'ESTALE',
        { stored_count: a.signCount });
}

const out = { rp_id: RP_ID, origin: ORIGIN, registrations, assertions };
fs.writeFileSync(path.join(here, 'vectors.json'), JSON.stringify(out, null, 1) + '\n');

// Fuzz seeds: the harness builds its own clientDataJSON for modes 0 and 1, so seeds are made
// with exactly that text and verify end to end.
const fuzzChallenge = b64u(Buffer.alloc(32, 0x42));
const cdCreate = `{"type":"webauthn.create","challenge":"${fuzzChallenge}",` +
    `"origin":"${ORIGIN}","crossOrigin":false}`;
const cdGet = `{"type":"webauthn.get","challenge":"${fuzzChallenge}",` +
    `"origin":"${ORIGIN}","crossOrigin":false}`;
const corpus = path.join(root, 'tests/fuzz/corpus/auth_webauthn');
fs.mkdirSync(corpus, { recursive: true });
const u16 = (n) => Buffer.from([n >> 8, n & 0xff]);
for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    for (const att of ['none', 'packed', 'packed-x5c']) {
        const a = new SoftAuthenticator({ alg, attestation: att });
        const cred = a.create(creationOptions(Buffer.alloc(32, 0x42)), ORIGIN,
            { clientDataJSON: cdCreate });
        const ao = Buffer.from(cred.response.attestationObject, 'base64url');
        fs.writeFileSync(path.join(corpus, `reg-${alg}-${att}`),
            Buffer.concat([Buffer.from([0]), ao]));
        if (att !== 'packed') continue;
        const res = a.get({ challenge: fuzzChallenge, rpId: RP_ID }, ORIGIN,
            { clientDataJSON: cdGet });
        const ad = Buffer.from(res.response.authenticatorData, 'base64url');
        const sig = Buffer.from(res.response.signature, 'base64url');
        fs.writeFileSync(path.join(corpus, `asr-${alg}`), Buffer.concat([Buffer.from([1]),
            u16(ad.length), ad, u16(sig.length), sig, a.publicKeyCose]));
    }
}
console.log(`wrote ${registrations.length} registrations, ${assertions.length} assertions`);
