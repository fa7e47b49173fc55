// webauthn-soft.test.mjs: the software authenticator's output checked with node:crypto alone
// (no gateway): structure of attestationObject/authData, every signature, counters, clones.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';

import { decode, decodeAt } from './lib/cbor.mjs';
import { SoftAuthenticator, FLAG_AT, FLAG_UP, FLAG_UV } from './lib/webauthn-soft.mjs';

const ORIGIN = 'https://example.org';
const b64u = (b) => Buffer.from(b).toString('base64url');
const unb64u = (s) => Buffer.from(s, 'base64url');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const DIGEST = { ES256: 'sha256', RS256: 'sha256', EdDSA: null };

function creation(challenge) {
    return {
        publicKey: {
            rp: { name: 'sparkweb', id: 'example.org' },
            user: { name: 'alice', displayName: 'Alice', id: b64u(crypto.randomBytes(64)) },
            challenge: b64u(challenge),
            pubKeyCredParams: [{ alg: -7, type: 'public-key' }, { alg: -8, type: 'public-key' },
                { alg: -257, type: 'public-key' }],
            excludeCredentials: [],
            attestation: 'none',
        },
    };
}

function parseAuthData(ad) {
    const out = { rpIdHash: ad.subarray(0, 32), flags: ad[32], signCount: ad.readUInt32BE(33) };
    if (out.flags & FLAG_AT) {
        out.aaguid = ad.subarray(37, 53);
        const n = ad.readUInt16BE(53);
        out.credId = ad.subarray(55, 55 + n);
        const [key, end] = decodeAt(ad, 55 + n);
        out.coseKey = key;
        out.coseBytes = ad.subarray(55 + n, end);
        out.rest = ad.subarray(end);
    }
    return out;
}

for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    for (const attestation of ['none', 'packed', 'packed-x5c']) {
        test(`${alg} ${attestation}: create and get verify with node:crypto`, () => {
            const a = new SoftAuthenticator({ alg, attestation, signCount: 2 });
            const challenge = crypto.randomBytes(32);
            const cred = a.create(creation(challenge), ORIGIN);
            assert.equal(cred.type, 'public-key');
            assert.equal(cred.id, cred.rawId);
            const cd = JSON.parse(unb64u(cred.response.clientDataJSON));
            assert.deepEqual(cd, { type: 'webauthn.create', challenge: b64u(challenge),
                origin: ORIGIN, crossOrigin: false });
            const ao = decode(unb64u(cred.response.attestationObject));
            assert.deepEqual([...ao.keys()], ['fmt', 'attStmt', 'authData']);
            assert.equal(ao.get('fmt'), attestation === 'none' ? 'none' : 'packed');
            const ad = parseAuthData(ao.get('authData'));
            assert.deepEqual(ad.rpIdHash, sha256('example.org'));
            assert.equal(ad.flags, FLAG_UP | FLAG_UV | FLAG_AT);
            assert.equal(ad.signCount, 2);
            assert.equal(b64u(ad.credId), cred.id);
            assert.deepEqual(ad.coseBytes, a.publicKeyCose);
            assert.equal(ad.rest.length, 0);
            const signed = Buffer.concat([ao.get('authData'),
                sha256(unb64u(cred.response.clientDataJSON))]);
            const stmt = ao.get('attStmt');
            if (attestation === 'none') {
                assert.equal(stmt.size, 0);
            } else if (attestation === 'packed') {
                assert.equal(stmt.get('alg'), ad.coseKey.get(3));
                assert.ok(crypto.verify(DIGEST[alg], signed, a.publicKey, stmt.get('sig')));
            } else {
                const cert = new crypto.X509Certificate(stmt.get('x5c')[0]);
                assert.equal(cert.ca, false);
                assert.match(cert.subject, /OU=Authenticator Attestation/);
                assert.ok(crypto.verify(DIGEST[alg], signed, cert.publicKey, stmt.get('sig')));
            }
            const ch2 = crypto.randomBytes(32);
            const asn = a.get({ publicKey: { challenge: b64u(ch2), rpId: 'example.org',
                allowCredentials: [{ type: 'public-key', id: cred.id }] } }, ORIGIN);
            const aad = unb64u(asn.response.authenticatorData);
            assert.equal(aad.length, 37);
            assert.equal(parseAuthData(aad).signCount, 3);
            const sig = unb64u(asn.response.signature);
            const msg = Buffer.concat([aad, sha256(unb64u(asn.response.clientDataJSON))]);
            assert.ok(crypto.verify(DIGEST[alg], msg, a.publicKey, sig));
            assert.equal(unb64u(asn.response.userHandle).length, 64);
        });
    }
}

test('overrides tamper while clones and counters behave', () => {
    const a = new SoftAuthenticator({ alg: 'ES256' });
    const cred = a.create(creation(crypto.randomBytes(32)), ORIGIN);
    const opts = { challenge: b64u(crypto.randomBytes(32)), rpId: 'example.org' };
    const bad = a.get(opts, ORIGIN, { corruptSignature: true, origin: 'https://evil.test' });
    const msg = Buffer.concat([unb64u(bad.response.authenticatorData),
        sha256(unb64u(bad.response.clientDataJSON))]);
    assert.equal(crypto.verify('sha256', msg, a.publicKey, unb64u(bad.response.signature)),
        false);
    assert.equal(JSON.parse(unb64u(bad.response.clientDataJSON)).origin, 'https://evil.test');
    const noUp = a.get(opts, ORIGIN, { up: false });
    assert.equal(unb64u(noUp.response.authenticatorData)[32] & FLAG_UP, 0);
    const clone = a.clone();
    const c1 = parseAuthData(unb64u(a.get(opts, ORIGIN).response.authenticatorData)).signCount;
    const c2 = parseAuthData(unb64u(clone.get(opts, ORIGIN).response.authenticatorData))
        .signCount;
    assert.equal(c1, c2);
    a.resetSignCount(0);
    assert.equal(parseAuthData(unb64u(a.get(opts, ORIGIN).response.authenticatorData))
        .signCount, 1);
    assert.throws(() => a.get({ ...opts, allowCredentials: [{ type: 'public-key', id: 'AAAA' }] },
        ORIGIN), /NotAllowedError/);
    assert.throws(() => a.create({ ...creation(crypto.randomBytes(32)).publicKey,
        excludeCredentials: [{ type: 'public-key', id: cred.id }] }, ORIGIN), /InvalidState/);
});
