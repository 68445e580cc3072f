/* controller/inventory.c: the kiln.dev/inventory annotation. */
#include <stdlib.h>
#include <string.h>

#include "controller/inventory.h"
#include "core/json.h"
#include "core/mem.h"

void kiln_inventory_init(kiln_inventory *inv)
{
    memset(inv, 0, sizeof(*inv));
}

void kiln_inventory_free(kiln_inventory *inv)
{
    for (size_t i = 0; i < inv->len; i++) {
        kiln_inventory_item *it = &inv->items[i];
        kiln_xfree(it->node);
        kiln_xfree(it->api_version);
        kiln_xfree(it->kind);
        kiln_xfree(it->namespace);
        kiln_xfree(it->name);
    }
    kiln_xfree(inv->items);
    memset(inv, 0, sizeof(*inv));
}

void kiln_inventory_group(char *out, size_t n, const char *api_version)
{
    const char *slash = api_version ? strchr(api_version, '/') : NULL;
    size_t len = slash ? (size_t)(slash - api_version) : 0;
    if (len >= n)
        len = n - 1;
    memcpy(out, api_version ? api_version : "", len);
    out[len] = '\0';
}

static bool same_identity(const kiln_inventory_item *it, const char *api_version, const char *kind,
                          const char *ns, const char *name)
{
    char g1[256], g2[256];
    kiln_inventory_group(g1, sizeof(g1), it->api_version);
    kiln_inventory_group(g2, sizeof(g2), api_version);
    return strcmp(g1, g2) == 0 && strcmp(it->kind, kind ? kind : "") == 0 &&
           strcmp(it->namespace, ns ? ns : "") == 0 && strcmp(it->name, name ? name : "") == 0;
}

long kiln_inventory_find(const kiln_inventory *inv, const char *api_version, const char *kind,
                         const char *ns, const char *name)
{
    for (size_t i = 0; i < inv->len; i++)
        if (same_identity(&inv->items[i], api_version, kind, ns, name))
            return (long)i;
    return -1;
}

void kiln_inventory_add(kiln_inventory *inv, int wave, const char *node, const char *api_version,
                        const char *kind, const char *ns, const char *name)
{
    if (kiln_inventory_find(inv, api_version, kind, ns, name) >= 0)
        return;
    if (inv->len == inv->cap) {
        inv->cap = inv->cap ? inv->cap * 2 : 8;
        inv->items = kiln_xrealloc(inv->items, inv->cap * sizeof(*inv->items));
    }
    kiln_inventory_item *it = &inv->items[inv->len++];
    it->wave = wave;
    it->node = kiln_xstrdup(node ? node : "");
    it->api_version = kiln_xstrdup(api_version ? api_version : "");
    it->kind = kiln_xstrdup(kind ? kind : "");
    it->namespace = kiln_xstrdup(ns ? ns : "");
    it->name = kiln_xstrdup(name ? name : "");
}

void kiln_inventory_add_object(kiln_inventory *inv, int wave, const char *node, const json_t *obj)
{
    kiln_inventory_add(inv, wave, node, kiln_json_get_string(obj, "apiVersion"),
                       kiln_json_get_string(obj, "kind"),
                       kiln_json_get_string(obj, "metadata.namespace"),
                       kiln_json_get_string(obj, "metadata.name"));
}

int kiln_inventory_parse(kiln_inventory *out, const char *text, kiln_err *err)
{
    kiln_inventory_init(out);
    if (!text || !*text)
        return 0;
    json_t *doc = NULL;
    int rc = kiln_json_load(&doc, text, strlen(text), err);
    if (rc < 0) {
        kiln_err_prefix(err, "annotation kiln.dev/inventory");
        return rc;
    }
    if (!json_is_array(doc)) {
        json_decref(doc);
        return kiln_err_set(err, KILN_EINVAL, "annotation kiln.dev/inventory: expected a list");
    }
    size_t i;
    json_t *e;
    json_array_foreach(doc, i, e)
    {
        if (!json_is_array(e) || json_array_size(e) != 6 ||
            !json_is_integer(json_array_get(e, 0))) {
            kiln_inventory_free(out);
            json_decref(doc);
            return kiln_err_set(err, KILN_EINVAL,
                                "annotation kiln.dev/inventory[%zu]: expected [wave, node, "
                                "apiVersion, kind, namespace, name]",
                                i);
        }
        const char *s[5];
        for (int k = 0; k < 5; k++) {
            s[k] = json_string_value(json_array_get(e, (size_t)k + 1));
            if (!s[k]) {
                kiln_inventory_free(out);
                json_decref(doc);
                return kiln_err_set(err, KILN_EINVAL,
                                    "annotation kiln.dev/inventory[%zu][%d]: expected a string", i,
                                    k + 1);
            }
        }
        kiln_inventory_add(out, (int)json_integer_value(json_array_get(e, 0)), s[0], s[1], s[2],
                           s[3], s[4]);
    }
    json_decref(doc);
    return 0;
}

static int cmp_items(const void *pa, const void *pb)
{
    const kiln_inventory_item *a = pa, *b = pb;
    if (a->wave != b->wave)
        return a->wave < b->wave ? -1 : 1;
    int c;
    if ((c = strcmp(a->kind, b->kind)) != 0)
        return c;
    if ((c = strcmp(a->namespace, b->namespace)) != 0)
        return c;
    if ((c = strcmp(a->name, b->name)) != 0)
        return c;
    return strcmp(a->api_version, b->api_version);
}

char *kiln_inventory_format(const kiln_inventory *inv)
{
    kiln_inventory_item *sorted = kiln_xmalloc((inv->len + 1) * sizeof(*sorted));
    if (inv->len)
        memcpy(sorted, inv->items, inv->len * sizeof(*sorted));
    qsort(sorted, inv->len, sizeof(*sorted), cmp_items);
    json_t *doc = json_array();
    for (size_t i = 0; i < inv->len; i++) {
        const kiln_inventory_item *it = &sorted[i];
        json_array_append_new(doc, json_pack("[i, s, s, s, s, s]", it->wave, it->node,
                                             it->api_version, it->kind, it->namespace, it->name));
    }
    kiln_xfree(sorted);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    char *out = kiln_xstrdup(s ? s : "[]");
    free(s);
    return out;
}

bool kiln_inventory_subset(const kiln_inventory *a, const kiln_inventory *b)
{
    for (size_t i = 0; i < a->len; i++) {
        const kiln_inventory_item *it = &a->items[i];
        if (kiln_inventory_find(b, it->api_version, it->kind, it->namespace, it->name) < 0)
            return false;
    }
    return true;
}

size_t kiln_inventory_next_wave(const kiln_inventory *inv, const bool *exists, bool *now)
{
    int top = -1;
    bool any = false;
    for (size_t i = 0; i < inv->len; i++) {
        now[i] = false;
        if (exists[i] && (!any || inv->items[i].wave > top)) {
            top = inv->items[i].wave;
            any = true;
        }
    }
    size_t n = 0;
    for (size_t i = 0; any && i < inv->len; i++) {
        if (exists[i] && inv->items[i].wave == top) {
            now[i] = true;
            n++;
        }
    }
    return n;
}

json_t *kiln_inventory_prune_set(const json_t *children, const kiln_inventory *keep)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(children, i, c)
    {
        if (kiln_inventory_find(keep, kiln_json_get_string(c, "apiVersion"),
                                kiln_json_get_string(c, "kind"),
                                kiln_json_get_string(c, "metadata.namespace"),
                                kiln_json_get_string(c, "metadata.name")) < 0)
            json_array_append(out, c);
    }
    return out;
}
