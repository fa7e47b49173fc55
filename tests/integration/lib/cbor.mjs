// cbor.mjs: the small CBOR (RFC 8949) subset WebAuthn needs, for tests. No dependencies.
//
// encode(value) understands:
//   integers (number or bigint) -> major 0/1, shortest form (CTAP2 canonical)
//   Uint8Array / Buffer         -> byte string
//   string                      -> text string
//   Array                       -> array
//   Map                         -> map, keys in insertion order (int or text keys)
//   plain object                -> map with text keys, in insertion order
//   true / false / null         -> simple values
//   new CborRaw(bytes)          -> the given bytes verbatim (for tampering tests)
// decode(bytes) returns the same shapes (maps always as Map, byte strings as Buffer); it throws
// on anything outside that subset (tags, floats, indefinite lengths) or on trailing bytes.

export class CborRaw {
    constructor(bytes) {
        this.bytes = Buffer.from(bytes);
    }
}

function head(major, n) {
    const m = major << 5;
    const v = BigInt(n);
    if (v < 24n) return Buffer.from([m | Number(v)]);
    if (v < 0x100n) return Buffer.from([m | 24, Number(v)]);
    if (v < 0x10000n) {
        const b = Buffer.alloc(3);
        b[0] = m | 25;
        b.writeUInt16BE(Number(v), 1);
        return b;
    }
    if (v < 0x100000000n) {
        const b = Buffer.alloc(5);
        b[0] = m | 26;
        b.writeUInt32BE(Number(v), 1);
        return b;
    }
    const b = Buffer.alloc(9);
    b[0] = m | 27;
    b.writeBigUInt64BE(v, 1);
    return b;
}

export function encode(value) {
    if (value instanceof CborRaw) return value.bytes;
    if (typeof value === 'number') {
        if (!Number.isInteger(value)) throw new TypeError('cbor: only integers are supported');
        value = BigInt(value);
    }
    if (typeof value === 'bigint') {
        return value >= 0n ? head(0, value) : head(1, -1n - value);
    }
    if (value instanceof Uint8Array) {
        return Buffer.concat([head(2, value.length), Buffer.from(value)]);
    }
    if (typeof value === 'string') {
        const s = Buffer.from(value, 'utf8');
        return Buffer.concat([head(3, s.length), s]);
    }
    if (Array.isArray(value)) {
        return Buffer.concat([head(4, value.length), ...value.map(encode)]);
    }
    if (value === false) return Buffer.from([0xf4]);
    if (value === true) return Buffer.from([0xf5]);
    if (value === null) return Buffer.from([0xf6]);
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    const parts = [head(5, entries.length)];
    for (const [k, v] of entries) parts.push(encode(k), encode(v));
    return Buffer.concat(parts);
}

export function decode(bytes) {
    const buf = Buffer.from(bytes);
    const [value, end] = decodeAt(buf, 0, 0);
    if (end !== buf.length) throw new Error(`cbor: ${buf.length - end} trailing bytes`);
    return value;
}

// Decodes one item at offset `off`; returns [value, offset after it]. Exported for authData,
// where the COSE key is followed by other bytes.
export function decodeAt(buf, off, depth = 0) {
    if (depth > 32) throw new Error('cbor: too deep');
    if (off >= buf.length) throw new Error('cbor: truncated');
    const major = buf[off] >> 5;
    const ai = buf[off] & 31;
    off++;
    let n;
    if (ai < 24) {
        n = BigInt(ai);
    } else if (ai <= 27) {
        const len = 1 << (ai - 24);
        if (off + len > buf.length) throw new Error('cbor: truncated');
        n = 0n;
        for (let i = 0; i < len; i++) n = (n << 8n) | BigInt(buf[off + i]);
        off += len;
    } else {
        throw new Error('cbor: indefinite or reserved length');
    }
    const small = () => {
        if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('cbor: length too big');
        return Number(n);
    };
    switch (major) {
    case 0:
        return [n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n, off];
    case 1: {
        const v = -1n - n;
        return [v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v, off];
    }
    case 2:
    case 3: {
        const len = small();
        if (off + len > buf.length) throw new Error('cbor: truncated');
        const s = buf.subarray(off, off + len);
        return [major === 2 ? Buffer.from(s) : s.toString('utf8'), off + len];
    }
    case 4: {
        const out = [];
        for (let i = 0, len = small(); i < len; i++) {
            const [v, next] = decodeAt(buf, off, depth + 1);
            out.push(v);
            off = next;
        }
        return [out, off];
    }
    case 5: {
        const out = new Map();
        for (let i = 0, len = small(); i < len; i++) {
            const [k, o1] = decodeAt(buf, off, depth + 1);
            const [v, o2] = decodeAt(buf, o1, depth + 1);
            out.set(k, v);
            off = o2;
        }
        return [out, off];
    }
    case 7:
        if (ai === 20) return [false, off];
        if (ai === 21) return [true, off];
        if (ai === 22) return [null, off];
        throw new Error('cbor: unsupported simple value or float');
    default:
        throw new Error('cbor: tags are not supported');
    }
}
