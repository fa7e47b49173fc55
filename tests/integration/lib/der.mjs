// der.mjs: just enough DER (X.690) to build a self-signed X.509 v3 certificate in pure Node
// (node:crypto parses certificates but cannot create them). Used by webauthn-soft.mjs for
// "packed" attestation with x5c. No dependencies, no openssl CLI.
import crypto from 'node:crypto';

function len(n) {
    if (n < 0x80) return Buffer.from([n]);
    const bytes = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag, content) {
    const c = Buffer.from(content);
    return Buffer.concat([Buffer.from([tag]), len(c.length), c]);
}

export const seq = (...items) => tlv(0x30, Buffer.concat(items));
export const set = (...items) => tlv(0x31, Buffer.concat(items));
export const octet = (b) => tlv(0x04, b);
export const bitstr = (b) => tlv(0x03, Buffer.concat([Buffer.from([0]), Buffer.from(b)]));
export const nul = () => Buffer.from([0x05, 0x00]);
export const bool = (v) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
export const utf8 = (s) => tlv(0x0c, Buffer.from(s, 'utf8'));
export const printable = (s) => tlv(0x13, Buffer.from(s, 'ascii'));
// [n] EXPLICIT, constructed.
export const explicit = (n, content) => tlv(0xa0 | n, content);

// Unsigned INTEGER from a bigint, a number or big-endian bytes.
export function int(v) {
    let b;
    if (typeof v === 'number' || typeof v === 'bigint') {
        let x = BigInt(v);
        const bytes = [];
        do {
            bytes.unshift(Number(x & 0xffn));
            x >>= 8n;
        } while (x > 0n);
        b = Buffer.from(bytes);
    } else {
        b = Buffer.from(v);
        let i = 0;
        while (i < b.length - 1 && b[i] === 0) i++;
        b = b.subarray(i);
    }
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return tlv(0x02, b);
}

export function oid(dotted) {
    const parts = dotted.split('.').map((p) => BigInt(p));
    const out = [Number(parts[0] * 40n + parts[1])];
    for (const p of parts.slice(2)) {
        const bytes = [];
        let v = p;
        do {
            bytes.unshift(Number(v & 0x7fn));
            v >>= 7n;
        } while (v > 0n);
        for (let i = 0; i < bytes.length - 1; i++) bytes[i] |= 0x80;
        out.push(...bytes);
    }
    return tlv(0x06, Buffer.from(out));
}

// UTCTime (YYMMDDHHMMSSZ); fine until 2049.
export function utcTime(d) {
    const p = (n) => String(n).padStart(2, '0');
    const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
        `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
    return tlv(0x17, Buffer.from(s, 'ascii'));
}

const OID = {
    C: '2.5.4.6',
    O: '2.5.4.10',
    OU: '2.5.4.11',
    CN: '2.5.4.3',
    basicConstraints: '2.5.29.19',
    fidoAaguid: '1.3.6.1.4.1.45724.1.1.4',
    ecdsaSha256: '1.2.840.10045.4.3.2',
    sha256Rsa: '1.2.840.113549.1.1.11',
    ed25519: '1.3.101.112',
};

function name(subject) {
    const rdns = [];
    for (const key of ['C', 'O', 'OU', 'CN']) {
        if (subject[key] === undefined) continue;
        const value = key === 'C' ? printable(subject[key]) : utf8(subject[key]);
        rdns.push(set(seq(oid(OID[key]), value)));
    }
    return seq(...rdns);
}

// The AlgorithmIdentifier and the node:crypto digest for signing with `privateKey`.
function sigAlg(privateKey) {
    switch (privateKey.asymmetricKeyType) {
    case 'ec':
        return { id: seq(oid(OID.ecdsaSha256)), digest: 'sha256' };
    case 'rsa':
        return { id: seq(oid(OID.sha256Rsa), nul()), digest: 'sha256' };
    case 'ed25519':
        return { id: seq(oid(OID.ed25519)), digest: null };
    default:
        throw new Error(`der: unsupported key type ${privateKey.asymmetricKeyType}`);
    }
}

// Builds a self-signed certificate (DER Buffer) for a key pair.
// opts: subject {C, O, OU, CN}; version (3 default; 1 omits the extensions); ca (basic
// constraints cA, default false); aaguid (16-byte Buffer: adds the FIDO AAGUID extension);
// notBefore/notAfter (Date).
export function selfSignedCert(publicKey, privateKey, opts = {}) {
    const subject = opts.subject ?? {
        C: 'US',
        O: 'Sparkgate Test',
        OU: 'Authenticator Attestation',
        CN: 'Sparkgate Soft Authenticator',
    };
    const version = opts.version ?? 3;
    const alg = sigAlg(privateKey);
    const now = Date.now();
    const notBefore = opts.notBefore ?? new Date(now - 86400e3);
    const notAfter = opts.notAfter ?? new Date(now + 10 * 365 * 86400e3);
    const serial = crypto.randomBytes(16);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const fields = [];
    if (version === 3) fields.push(explicit(0, int(2)));
    fields.push(int(serial), alg.id, name(subject),
        seq(utcTime(notBefore), utcTime(notAfter)), name(subject), spki);
    if (version === 3) {
        const exts = [seq(oid(OID.basicConstraints), bool(true),
            octet(seq(...(opts.ca ? [bool(true)] : []))))];
        if (opts.aaguid) exts.push(seq(oid(OID.fidoAaguid), octet(octet(opts.aaguid))));
        fields.push(explicit(3, seq(...exts)));
    }
    const tbs = seq(...fields);
    const sig = crypto.sign(alg.digest, tbs, privateKey);
    return seq(tbs, alg.id, bitstr(sig));
}
