/* store.h: the gateway's persistent state under store.path. For now: named secrets (the JWT
 * signing key), generated at first start from the kernel's random source and kept in files of
 * mode 0600 inside a 0700 directory. These calls do blocking file I/O and are meant for
 * start-up, before the loop runs; the SQLite store of later issues runs on the thread pool.
 * Never logs secret values. */
#ifndef SPARKGATE_STORE_STORE_H
#define SPARKGATE_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Creates dir (and parents) with mode 0700 when missing. 0 or -errno (message in err). */
int store_open_dir(const char *dir, char *err, size_t errlen);

/* Reads the secret `name` (len bytes, stored base64url in <dir>/<name>.key) into out, creating
 * it with random bytes when the file does not exist. 0, or -errno / -EINVAL (wrong length or
 * format) with a message in err. Sets *created to 1 when it was generated now. */
int store_secret_load_or_create(const char *dir, const char *name, uint8_t *out, size_t len,
                                int *created, char *err, size_t errlen);

#endif
