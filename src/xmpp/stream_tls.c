/* stream_tls.c: client TLS over OpenSSL memory BIOs (the socket stays a plain libuv handle), one
 * shared SSL_CTX for the process, SNI and host name verification against the XMPP domain. */
#define LOG_MODULE "xmpp"

#include <errno.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/mem.h"
#include "xmpp/stream.h"
#include "xmpp/xmpp_int.h"

struct xmpp_tls {
    SSL_CTX *ctx;
    bool verify;
};

/* TLS records carry at most 16 KiB of plaintext. */
static _Thread_local char plain_buf[16384];

static void ssl_err_text(char *out, size_t outlen)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(out, outlen, "unknown");
    else
        ERR_error_string_n(e, out, outlen);
    ERR_clear_error();
}

struct xmpp_tls *xmpp_tls_new(const char *ca_file, bool verify, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ssl_err_text(err, errlen);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
        ERR_clear_error(); /* no system store: only ca_file will be trusted */
    if (ca_file != NULL && ca_file[0] != '\0' &&
        SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        char e[200];
        ssl_err_text(e, sizeof(e));
        snprintf(err, errlen, "cannot load CA file %s: %s", ca_file, e);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (!verify)
        log_warn("tls_noverify", "msg=\"TLS certificate verification is DISABLED for upstream "
                                 "XMPP connections; do not use this in production\"");
    struct xmpp_tls *t = mem_calloc(1, sizeof(*t));
    t->ctx = ctx;
    t->verify = verify;
    return t;
}

void xmpp_tls_free(struct xmpp_tls *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    mem_free(tls);
}

/* Moves pending ciphertext from the write BIO to the socket. */
static int flush(struct xmpp_stream *s)
{
    size_t n = (size_t)BIO_ctrl_pending(s->wbio);
    if (n == 0)
        return 0;
    char *tmp = mem_alloc(n);
    int got = BIO_read(s->wbio, tmp, (int)n);
    int rc = got > 0 ? xmpp__write_wire(s, tmp, (size_t)got) : 0;
    mem_free(tmp);
    return rc;
}

static void tls_fail(struct xmpp_stream *s, const char *what)
{
    char e[256];
    ssl_err_text(e, sizeof(e));
    long vr = SSL_get_verify_result(s->ssl);
    log_warn("tls_fail", "jid=%s host=%s op=%s verify=\"%s\" msg=\"%s\"", s->logjid, s->host, what,
             vr == X509_V_OK ? "ok" : X509_verify_cert_error_string(vr), e);
    xmpp__finish(s, -EPROTO, "tls", false);
}

/* Advances the handshake; true once it is complete. */
static bool handshake(struct xmpp_stream *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(s->ssl, r);
    if (flush(s) < 0 && r == 1) {
        xmpp__finish(s, -ECONNRESET, "write failed", false);
        return false;
    }
    if (r != 1) {
        if (e != SSL_ERROR_WANT_READ)
            tls_fail(s, "handshake");
        return false;
    }
    s->tls_active = true;
    log_info("tls", "jid=%s host=%s version=%s cipher=%s resumed=%d", s->logjid, s->host,
             SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl), (int)SSL_session_reused(s->ssl));
    s->state = XMPP__ST_STREAM;
    int rc = xmpp__send_header(s);
    if (rc < 0) {
        xmpp__finish(s, rc, "write failed", false);
        return false;
    }
    return true;
}

int xmpp__tls_start(struct xmpp_stream *s)
{
    SSL *ssl = SSL_new(s->tls_ctx->ctx);
    if (ssl == NULL)
        return -ENOMEM;
    s->ssl = ssl;
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (s->rbio == NULL || s->wbio == NULL) {
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        s->rbio = s->wbio = NULL;
        return -ENOMEM;
    }
    /* a read BIO at EOF reports "retry" instead of end of file */
    BIO_set_mem_eof_return(s->rbio, -1);
    SSL_set_bio(ssl, s->rbio, s->wbio);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, s->domain);
    if (s->tls_ctx->verify && SSL_set1_host(ssl, s->domain) != 1)
        return -EPROTO;
    if (s->state != XMPP__ST_TLS_DIRECT)
        s->state = XMPP__ST_TLS_HS;
    handshake(s);
    return 0;
}

void xmpp__tls_input(struct xmpp_stream *s, const char *data, size_t len)
{
    if (BIO_write(s->rbio, data, (int)len) != (int)len) {
        xmpp__finish(s, -ENOMEM, "tls buffer", false);
        return;
    }
    if (!s->tls_active && (!handshake(s) || xmpp__gone(s)))
        return;
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(s->ssl, plain_buf, sizeof(plain_buf));
        if (n > 0) {
            xmpp__input(s, plain_buf, (size_t)n);
            if (xmpp__gone(s))
                return;
            continue;
        }
        int e = SSL_get_error(s->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
            xmpp__finish(s, s->state == XMPP__ST_CLOSING ? 0 : -ECONNRESET, "tls closed", false);
        } else {
            tls_fail(s, "read");
        }
        return;
    }
    if (flush(s) < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
}

int xmpp__tls_write(struct xmpp_stream *s, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    ERR_clear_error();
    int r = SSL_write(s->ssl, data, (int)len);
    if (r <= 0) {
        char e[256];
        ssl_err_text(e, sizeof(e));
        log_warn("tls_fail", "jid=%s op=write msg=\"%s\"", s->logjid, e);
        return -EPROTO;
    }
    return flush(s);
}

void xmpp__tls_close_notify(struct xmpp_stream *s)
{
    if (s->ssl == NULL || !s->tls_active)
        return;
    ERR_clear_error();
    SSL_shutdown(s->ssl);
    ERR_clear_error();
    flush(s);
}

void xmpp__tls_free(struct xmpp_stream *s)
{
    if (s->ssl != NULL)
        SSL_free(s->ssl); /* frees both BIOs */
    s->ssl = NULL;
    s->rbio = s->wbio = NULL;
}
