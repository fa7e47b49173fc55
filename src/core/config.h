/* config.h: the gateway's settings. One table in config.c declares every key (section.name),
 * its type, default, bounds, unit and help line (nginx directive tables; Redis's commented
 * redis.conf). Values come from, in increasing priority: the defaults, an INI file
 * (`[section]` / `name = value`, read with libinih), and environment variables
 * SPARKGATE_<SECTION>_<NAME> (upper case). An unknown key in the file, a value of the wrong type
 * or out of range is an error naming the key; nothing is clamped silently.
 * docs/config.md documents every key; a unit test keeps the two in step.
 * Loop thread (read-only after load). */
#ifndef SPARKGATE_CORE_CONFIG_H
#define SPARKGATE_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;

enum config_type {
    CONFIG_STR,
    CONFIG_INT,      /* int64 with min/max */
    CONFIG_BOOL,     /* true/false, on/off, yes/no, 1/0 */
    CONFIG_ENUM,     /* one of a '|'-separated list */
    CONFIG_DURATION, /* "250ms", "30s", "5m", "1h", "2d"; a bare number is seconds */
    CONFIG_SIZE,     /* "512", "64k", "1m" (bytes, KiB, MiB) */
};

struct config *config_new(void);
void config_free(struct config *c);

/* Reads an INI file. 0, or -errno with a message in err (e.g. "line 3: unknown key x.y"). */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);
/* Applies SPARKGATE_* variables from envp (NULL-terminated, as environ). An unknown
 * SPARKGATE_ variable is an error too (catches typos). */
int config_load_env(struct config *c, char *const *envp, char *err, size_t errlen);
/* Sets one key from text, validating it. -ENOENT unknown key, -EINVAL bad value. */
int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen);

/* Typed getters; the key must exist in the table with that type (programmer error otherwise:
 * aborts). Strings are never NULL (empty string when unset). */
const char *config_str(const struct config *c, const char *key);
int64_t config_int(const struct config *c, const char *key);
bool config_bool(const struct config *c, const char *key);
/* CONFIG_DURATION in milliseconds. */
uint64_t config_ms(const struct config *c, const char *key);
/* CONFIG_SIZE in bytes. */
size_t config_size(const struct config *c, const char *key);

/* Table introspection, for --help, docs checks and tests. */
size_t config_key_count(void);
const char *config_key_name(size_t i);
const char *config_key_help(size_t i);
/* Writes "--help" text: every key with type, default, range and env name. */
void config_print_help(FILE *f);
/* Logs the effective settings at info level (values of secret keys are redacted). */
void config_log(const struct config *c);

#endif
