/* controller/inventory.h: the record of what kiln applied for one instance.
 *
 * The inventory lives in the instance's annotation kiln.dev/inventory as
 * compact JSON, one entry per child: [wave, node, apiVersion, kind,
 * namespace, name], sorted by wave, then by identity. The wave is the node's
 * position in the graph's topological order. An annotation rather than a
 * status field because it must survive a status rewrite by anyone, must be
 * readable with no graph at all (deletion never evaluates templates, so a
 * broken or deleted RGD cannot block it), and is written before the children
 * it names are applied (a superset), then shrunk after a prune.
 *
 * Deletion runs in reverse waves: the highest wave that still has objects is
 * deleted, and the next one only once it is gone (a child finalizer holds its
 * wave). Identities compare API group, kind, namespace and name (not the
 * version: one object is served under several).
 *
 * An inventory owns its strings.
 */
#ifndef KILN_CONTROLLER_INVENTORY_H
#define KILN_CONTROLLER_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

typedef struct kiln_inventory_item {
    int wave;
    char *node;
    char *api_version;
    char *kind;
    char *namespace; /* "" for cluster-scoped objects */
    char *name;
} kiln_inventory_item;

typedef struct kiln_inventory {
    kiln_inventory_item *items;
    size_t len, cap;
} kiln_inventory;

void kiln_inventory_init(kiln_inventory *inv);
void kiln_inventory_free(kiln_inventory *inv);

/* Parses the annotation text (NULL or "" is an empty inventory). */
int kiln_inventory_parse(kiln_inventory *out, const char *text, kiln_err *err);
/* The annotation text (new string), entries sorted. */
char *kiln_inventory_format(const kiln_inventory *inv);

/* Adds an entry unless one with the same identity exists (strings copied). */
void kiln_inventory_add(kiln_inventory *inv, int wave, const char *node, const char *api_version,
                        const char *kind, const char *ns, const char *name);
/* Adds obj (borrowed; apiVersion, kind, metadata) under node and wave. */
void kiln_inventory_add_object(kiln_inventory *inv, int wave, const char *node, const json_t *obj);
/* Index of the entry with obj's identity, or -1. */
long kiln_inventory_find(const kiln_inventory *inv, const char *api_version, const char *kind,
                         const char *ns, const char *name);
/* True when every entry of a is in b. */
bool kiln_inventory_subset(const kiln_inventory *a, const kiln_inventory *b);

/* The entries to delete now: exists[i] says whether entry i still exists.
 * Marks now[i] for every existing entry of the highest wave that has one;
 * returns how many were marked (0: nothing is left). */
size_t kiln_inventory_next_wave(const kiln_inventory *inv, const bool *exists, bool *now);

/* The children (array of objects, borrowed) whose identity is not in keep:
 * what a prune deletes. New array of borrowed-then-increfed objects. */
json_t *kiln_inventory_prune_set(const json_t *children, const kiln_inventory *keep);

/* Identity helpers: the API group of an apiVersion ("apps/v1" -> "apps",
 * "v1" -> ""), copied into out. */
void kiln_inventory_group(char *out, size_t n, const char *api_version);

#endif
