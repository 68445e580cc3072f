/* controller/strmap.h: a small string-keyed hash map.
 *
 * The work queue, the manager's registries and the instance reconciler all
 * index things by text keys ("inst/kiln.dev/v1alpha1/webapps/ns/name"). The map
 * copies each key and owns the copy; values are opaque pointers the caller
 * owns (the map never frees them). Not thread-safe: callers lock.
 */
#ifndef KILN_CONTROLLER_STRMAP_H
#define KILN_CONTROLLER_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kiln_strmap_entry {
    char *key; /* owned */
    void *value;
    struct kiln_strmap_entry *next;
} kiln_strmap_entry;

typedef struct kiln_strmap {
    kiln_strmap_entry **buckets;
    size_t nbuckets;
    size_t len;
} kiln_strmap;

void kiln_strmap_init(kiln_strmap *m);
/* Frees the entries and keys, not the values. */
void kiln_strmap_clear(kiln_strmap *m);
/* The entry for key, or NULL. Borrowed. */
kiln_strmap_entry *kiln_strmap_find(const kiln_strmap *m, const char *key);
void *kiln_strmap_get(const kiln_strmap *m, const char *key);
bool kiln_strmap_has(const kiln_strmap *m, const char *key);
/* Sets key to value; returns the previous value (NULL when there was none). */
void *kiln_strmap_put(kiln_strmap *m, const char *key, void *value);
/* Removes key; returns its value (NULL when absent). */
void *kiln_strmap_del(kiln_strmap *m, const char *key);

/* Iteration: for (it = kiln_strmap_next(m, NULL, &b); it; it = kiln_strmap_next(m, it, &b)).
 * The map must not change while iterating. */
kiln_strmap_entry *kiln_strmap_next(const kiln_strmap *m, kiln_strmap_entry *it, size_t *bucket);

#endif
