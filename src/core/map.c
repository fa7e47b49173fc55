/* map.c: chained hash map with FNV-1a hashing. */
#include "core/map.h"

#include <stdint.h>
#include <string.h>

#include "core/mem.h"

struct map_entry {
    struct map_entry *next;
    uint64_t hash;
    void *value;
    char key[];
};

struct map {
    struct map_entry **slots;
    size_t n_slots; /* power of two */
    size_t count;
};

static uint64_t map_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct map *map_new(void)
{
    struct map *m = mem_calloc(1, sizeof(*m));
    m->n_slots = 16;
    m->slots = mem_calloc(m->n_slots, sizeof(*m->slots));
    return m;
}

void map_free(struct map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_slots; i++) {
        for (struct map_entry *e = m->slots[i]; e != NULL;) {
            struct map_entry *n = e->next;
            mem_free(e);
            e = n;
        }
    }
    mem_free(m->slots);
    mem_free(m);
}

static struct map_entry **map_find(const struct map *m, const char *key, uint64_t h)
{
    struct map_entry **pp = &m->slots[h & (m->n_slots - 1)];
    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *map_get(const struct map *m, const char *key)
{
    struct map_entry **pp = map_find(m, key, map_hash(key));
    return *pp ? (*pp)->value : NULL;
}

static void map_grow(struct map *m)
{
    size_t n = m->n_slots * 2;
    struct map_entry **slots = mem_calloc(n, sizeof(*slots));
    for (size_t i = 0; i < m->n_slots; i++) {
        for (struct map_entry *e = m->slots[i]; e != NULL;) {
            struct map_entry *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    mem_free(m->slots);
    m->slots = slots;
    m->n_slots = n;
}

void *map_put(struct map *m, const char *key, void *value)
{
    uint64_t h = map_hash(key);
    struct map_entry **pp = map_find(m, key, h);
    if (*pp != NULL) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    size_t kl = strlen(key);
    struct map_entry *e = mem_alloc(sizeof(*e) + kl + 1);
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (++m->count > m->n_slots)
        map_grow(m);
    return NULL;
}

void *map_remove(struct map *m, const char *key)
{
    struct map_entry **pp = map_find(m, key, map_hash(key));
    struct map_entry *e = *pp;
    if (e == NULL)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    mem_free(e);
    m->count--;
    return v;
}

size_t map_count(const struct map *m)
{
    return m->count;
}

void map_walk(struct map *m, map_walk_cb *fn, void *data)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        struct map_entry **pp = &m->slots[i];
        while (*pp != NULL) {
            struct map_entry *e = *pp;
            if (fn(e->key, e->value, data)) {
                *pp = e->next;
                mem_free(e);
                m->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}
