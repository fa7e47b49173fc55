/* store_files.c: secrets kept as small files in the state directory. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/rnd.h"

int store_open_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path) || path[0] == '\0') {
        err_printf(err, errlen, "store path empty or too long");
        return -EINVAL;
    }
    for (char *p = path + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                int e = errno;
                err_printf(err, errlen, "cannot create %s: %s", path, strerror(e));
                return -e;
            }
            *p = saved;
        }
        if (end)
            break;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        err_printf(err, errlen, "%s is not a directory", dir);
        return -ENOTDIR;
    }
    return 0;
}

static int read_secret(const char *path, uint8_t *out, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char text[1024];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        err_printf(err, errlen, "cannot read %s: %s", path, strerror(e));
        return -e;
    }
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    text[n] = '\0';
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    int rc = b64_decode(text, (size_t)n, B64_URL, &raw, &rawlen);
    OPENSSL_cleanse(text, sizeof(text));
    if (rc < 0 || rawlen != len) {
        if (raw != NULL) {
            OPENSSL_cleanse(raw, rawlen);
            mem_free(raw);
        }
        err_printf(err, errlen, "%s: expected %zu bytes of base64url", path, len);
        return -EINVAL;
    }
    memcpy(out, raw, len);
    OPENSSL_cleanse(raw, rawlen);
    mem_free(raw);
    return 0;
}

int store_secret_load_or_create(const char *dir, const char *name, uint8_t *out, size_t len,
                                int *created, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s.key", dir, name) >= (int)sizeof(path)) {
        err_printf(err, errlen, "store path too long");
        return -ENAMETOOLONG;
    }
    *created = 0;
    int rc = read_secret(path, out, len, err, errlen);
    if (rc != -ENOENT)
        return rc;

    /* First start: generate, write to a temporary file, fsync, rename (atomic). */
    rnd_bytes(out, len);
    size_t tl = 0;
    char *text = b64_encode(out, len, B64_URL, &tl);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        OPENSSL_cleanse(text, tl);
        mem_free(text);
        err_printf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
        return -e;
    }
    ssize_t w = write(fd, text, tl);
    int e = errno;
    OPENSSL_cleanse(text, tl);
    mem_free(text);
    if (w != (ssize_t)tl || fsync(fd) < 0) {
        close(fd);
        unlink(tmp);
        err_printf(err, errlen, "cannot write %s: %s", tmp, strerror(e ? e : EIO));
        return -(e ? e : EIO);
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        err_printf(err, errlen, "cannot rename %s: %s", tmp, strerror(e));
        return -e;
    }
    *created = 1;
    return 0;
}
