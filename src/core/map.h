/* map.h: a string-keyed hash map (separate chaining, grows at load 1) holding void * values.
 * Keys are copied; values are borrowed (the map never frees them). Iteration order is
 * unspecified. Not thread-safe. */
#ifndef SPARKGATE_CORE_MAP_H
#define SPARKGATE_CORE_MAP_H

#include <stddef.h>

struct map;

struct map *map_new(void);
/* Frees the map and its keys (not the values). */
void map_free(struct map *m);
/* The value for key, or NULL. */
void *map_get(const struct map *m, const char *key);
/* Inserts or replaces; returns the previous value or NULL. value must not be NULL. */
void *map_put(struct map *m, const char *key, void *value);
/* Removes key; returns its value or NULL when absent. */
void *map_remove(struct map *m, const char *key);
size_t map_count(const struct map *m);

/* Calls fn(key, value, data) for every entry; fn returns nonzero to remove that entry during
 * the walk (the value is not freed). */
typedef int map_walk_cb(const char *key, void *value, void *data);
void map_walk(struct map *m, map_walk_cb *fn, void *data);

#endif
