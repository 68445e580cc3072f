/* controller/strmap.c: chained hash map keyed by strings (FNV-1a). */
#include <string.h>

#include "controller/strmap.h"
#include "core/hash.h"
#include "core/mem.h"

void kiln_strmap_init(kiln_strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void kiln_strmap_clear(kiln_strmap *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        kiln_strmap_entry *e = m->buckets[i];
        while (e) {
            kiln_strmap_entry *next = e->next;
            kiln_xfree(e->key);
            kiln_xfree(e);
            e = next;
        }
    }
    kiln_xfree(m->buckets);
    memset(m, 0, sizeof(*m));
}

static size_t slot(const kiln_strmap *m, const char *key)
{
    return (size_t)(kiln_fnv1a64(key, strlen(key)) % m->nbuckets);
}

kiln_strmap_entry *kiln_strmap_find(const kiln_strmap *m, const char *key)
{
    if (m->nbuckets == 0)
        return NULL;
    for (kiln_strmap_entry *e = m->buckets[slot(m, key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

void *kiln_strmap_get(const kiln_strmap *m, const char *key)
{
    kiln_strmap_entry *e = kiln_strmap_find(m, key);
    return e ? e->value : NULL;
}

bool kiln_strmap_has(const kiln_strmap *m, const char *key)
{
    return kiln_strmap_find(m, key) != NULL;
}

static void grow(kiln_strmap *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    kiln_strmap_entry **b = kiln_xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < m->nbuckets; i++) {
        kiln_strmap_entry *e = m->buckets[i];
        while (e) {
            kiln_strmap_entry *next = e->next;
            size_t s = (size_t)(kiln_fnv1a64(e->key, strlen(e->key)) % n);
            e->next = b[s];
            b[s] = e;
            e = next;
        }
    }
    kiln_xfree(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *kiln_strmap_put(kiln_strmap *m, const char *key, void *value)
{
    kiln_strmap_entry *e = kiln_strmap_find(m, key);
    if (e) {
        void *old = e->value;
        e->value = value;
        return old;
    }
    if (m->len + 1 > m->nbuckets * 3 / 4)
        grow(m);
    e = kiln_xmalloc(sizeof(*e));
    e->key = kiln_xstrdup(key);
    e->value = value;
    size_t s = slot(m, key);
    e->next = m->buckets[s];
    m->buckets[s] = e;
    m->len++;
    return NULL;
}

void *kiln_strmap_del(kiln_strmap *m, const char *key)
{
    if (m->nbuckets == 0)
        return NULL;
    kiln_strmap_entry **pp = &m->buckets[slot(m, key)];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            kiln_strmap_entry *e = *pp;
            void *v = e->value;
            *pp = e->next;
            kiln_xfree(e->key);
            kiln_xfree(e);
            m->len--;
            return v;
        }
    }
    return NULL;
}

kiln_strmap_entry *kiln_strmap_next(const kiln_strmap *m, kiln_strmap_entry *it, size_t *bucket)
{
    if (it && it->next)
        return it->next;
    size_t b = it ? *bucket + 1 : 0;
    for (; b < m->nbuckets; b++) {
        if (m->buckets[b]) {
            *bucket = b;
            return m->buckets[b];
        }
    }
    return NULL;
}
