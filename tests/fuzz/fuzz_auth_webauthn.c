/* fuzz_auth_webauthn.c: libFuzzer target for WebAuthn registration and assertion verification
 * (clientDataJSON, attestationObject and authData CBOR, attStmt, X.509, COSE keys).
 * Input: one mode byte, then
 *   mode 0: attestationObject (clientDataJSON made here, challenge 32 x 0x42)
 *   mode 1: u16 authData length, authData, u16 sig length, sig, COSE key (clientData made here)
 *   mode 2: u16 clientDataJSON length, clientDataJSON, attestationObject
 *   mode 3: u16 clientDataJSON length, clientDataJSON, then as mode 1
 * Lengths are big-endian and clamped to what is left. Seeds (gen.mjs) use the same
 * clientDataJSON as modes 0 and 1, so their signatures verify. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth/webauthn.h"

#define CHALLENGE_B64 "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI"

static const char cd_create[] = "{\"type\":\"webauthn.create\",\"challenge\":\"" CHALLENGE_B64
                                "\",\"origin\":\"https://example.org\",\"crossOrigin\":false}";
static const char cd_get[] = "{\"type\":\"webauthn.get\",\"challenge\":\"" CHALLENGE_B64
                             "\",\"origin\":\"https://example.org\",\"crossOrigin\":false}";

struct input {
    const uint8_t *p;
    size_t len;
};

static struct input take(struct input *in)
{
    size_t n = 0;
    if (in->len >= 2) {
        n = (size_t)in->p[0] << 8 | in->p[1];
        in->p += 2;
        in->len -= 2;
    }
    if (n > in->len)
        n = in->len;
    struct input out = { in->p, n };
    in->p += n;
    in->len -= n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const origins[] = { "https://example.org" };
    static uint8_t challenge[32];
    memset(challenge, 0x42, sizeof(challenge));
    if (size == 0)
        return 0;
    unsigned mode = data[0] & 3;
    struct input in = { data + 1, size - 1 };
    struct webauthn_rp rp = {
        .rp_id = "example.org", .origins = origins, .n_origins = 1, .require_uv = (data[0] & 4) != 0
    };
    struct input cd = { (const uint8_t *)(mode == 0 ? cd_create : cd_get),
                        mode == 0 ? sizeof(cd_create) - 1 : sizeof(cd_get) - 1 };
    if (mode >= 2)
        cd = take(&in);
    char err[128];
    if (mode == 0 || mode == 2) {
        struct webauthn_new_cred c;
        if (webauthn_verify_registration(&rp, challenge, sizeof(challenge), cd.p, cd.len, in.p,
                                         in.len, &c, err, sizeof(err)) == 0)
            webauthn_cose_alg(c.cose_key, c.cose_key_len);
        webauthn_new_cred_clear(&c);
        return 0;
    }
    struct input ad = take(&in);
    struct input sig = take(&in);
    uint32_t count;
    webauthn_verify_assertion(&rp, challenge, sizeof(challenge), cd.p, cd.len, ad.p, ad.len, sig.p,
                              sig.len, in.p, in.len, (data[0] & 8) ? WEBAUTHN_ES256 : 0,
                              (data[0] & 16) ? 5 : 0, &count, err, sizeof(err));
    webauthn_cose_alg(in.p, in.len);
    return 0;
}
