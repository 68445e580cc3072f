/* devcluster/store.c: objects per resource, the resourceVersion counter and the
 * watch event history.
 *
 * One counter for every resource, as etcd's revision: resourceVersions are
 * decimal, strictly increasing and comparable across kinds (API conventions
 * allow that; 1.35 conformance requires decimal integers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "devcluster/internal.h"

void kiln_dc_table_init(kiln_dc_table *t)
{
    t->nbuckets = 64;
    t->buckets = kiln_xcalloc(t->nbuckets, sizeof *t->buckets);
    t->count = 0;
}

void kiln_dc_table_free(kiln_dc_table *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        kiln_dc_object *o = t->buckets[i];
        while (o) {
            kiln_dc_object *next = o->next;
            kiln_xfree(o->key);
            kiln_xfree(o->json);
            kiln_xfree(o);
            o = next;
        }
    }
    kiln_xfree(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

static size_t bucket_of(const kiln_dc_table *t, const char *key)
{
    return (size_t)kiln_fnv1a64(key, strlen(key)) & (t->nbuckets - 1);
}

static void grow(kiln_dc_table *t)
{
    size_t n = t->nbuckets * 2;
    kiln_dc_object **b = kiln_xcalloc(n, sizeof *b);
    for (size_t i = 0; i < t->nbuckets; i++) {
        kiln_dc_object *o = t->buckets[i];
        while (o) {
            kiln_dc_object *next = o->next;
            size_t h = (size_t)kiln_fnv1a64(o->key, strlen(o->key)) & (n - 1);
            o->next = b[h];
            b[h] = o;
            o = next;
        }
    }
    kiln_xfree(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static kiln_dc_object *table_get(kiln_dc_table *t, const char *key)
{
    for (kiln_dc_object *o = t->buckets[bucket_of(t, key)]; o; o = o->next)
        if (!strcmp(o->key, key))
            return o;
    return NULL;
}

static char *make_key(const char *ns, const char *name)
{
    return kiln_xasprintf("%s/%s", ns ? ns : "", name);
}

void kiln_dc_key_split(const char *key, char *ns, size_t nsn, const char **name)
{
    const char *slash = strchr(key, '/');
    *name = slash ? slash + 1 : key;
    if (nsn == 0)
        return;
    size_t n = slash ? (size_t)(slash - key) : 0;
    if (n >= nsn)
        n = nsn - 1;
    memcpy(ns, key, n);
    ns[n] = '\0';
}

kiln_dc_object *kiln_dc_store_get(kiln_dc_resource *r, const char *ns, const char *name)
{
    char *key = make_key(r->namespaced ? ns : "", name);
    kiln_dc_object *o = table_get(&r->objects, key);
    kiln_xfree(key);
    return o;
}

json_t *kiln_dc_store_load(const kiln_dc_object *o)
{
    json_t *doc = json_loadb(o->json, o->len, 0, NULL);
    if (!doc)
        abort(); /* stored text is always our own dump */
    return doc;
}

static void history_push(kiln_devcluster *dc, kiln_dc_event *ev)
{
    if (dc->hcap == 0)
        return;
    if (dc->hlen == dc->hcap) {
        kiln_dc_event *old = dc->hist[dc->hhead];
        dc->compacted_rv = old->rv;
        kiln_dc_event_unref(old);
        dc->hhead = (dc->hhead + 1) % dc->hcap;
        dc->hlen--;
    }
    ev->refs++;
    dc->hist[(dc->hhead + dc->hlen) % dc->hcap] = ev;
    dc->hlen++;
}

void kiln_dc_event_unref(kiln_dc_event *ev)
{
    if (!ev || --ev->refs > 0)
        return;
    kiln_xfree(ev->key);
    kiln_xfree(ev->obj);
    kiln_xfree(ev->prev);
    kiln_xfree(ev);
}

void kiln_dc_store_free_history(kiln_devcluster *dc)
{
    for (size_t i = 0; i < dc->hlen; i++)
        kiln_dc_event_unref(dc->hist[(dc->hhead + i) % dc->hcap]);
    kiln_xfree(dc->hist);
    dc->hist = NULL;
    dc->hlen = dc->hcap = dc->hhead = 0;
}

static void emit(kiln_devcluster *dc, kiln_dc_resource *r, kiln_dc_evtype type, const char *key,
                 char *obj, size_t len, char *prev)
{
    if (dc->replaying) {
        kiln_xfree(prev);
        return;
    }
    kiln_dc_event *ev = kiln_xcalloc(1, sizeof *ev);
    ev->refs = 1;
    ev->rv = dc->rv;
    ev->type = type;
    ev->res = r;
    ev->key = kiln_xstrdup(key);
    ev->obj = kiln_xstrndup(obj, len);
    ev->prev = prev;
    history_push(dc, ev);
    kiln_dc_watch_publish(dc, ev);
    kiln_dc_ctl_note(dc, r, key);
    kiln_dc_event_unref(ev);
    dc->ctl_dirty = true;
}

static void set_rv(json_t *obj, uint64_t rv)
{
    json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md)) {
        md = json_object();
        json_object_set_new(obj, "metadata", md);
    }
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)rv);
    json_object_set_new(md, "resourceVersion", json_string(buf));
}

kiln_dc_object *kiln_dc_store_put(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj,
                                  bool created)
{
    const char *ns = kiln_dc_meta_str(obj, "namespace");
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    char *key = make_key(r->namespaced ? ns : "", name ? name : "");
    if (!dc->replaying)
        dc->rv++;
    set_rv(obj, dc->rv);
    char *text = kiln_dc_dump(obj);
    size_t len = strlen(text);
    kiln_dc_object *o = table_get(&r->objects, key);
    char *prev = NULL;
    if (o) {
        prev = o->json;
        kiln_xfree(key);
        key = NULL;
    } else {
        if (r->objects.count + 1 > r->objects.nbuckets)
            grow(&r->objects);
        o = kiln_xcalloc(1, sizeof *o);
        o->key = key;
        size_t h = bucket_of(&r->objects, key);
        o->next = r->objects.buckets[h];
        r->objects.buckets[h] = o;
        r->objects.count++;
    }
    o->json = text;
    o->len = len;
    o->rv = dc->rv;
    if (dc->wal && !dc->replaying)
        kiln_dc_wal_append(dc, r, o->key, text, len, false);
    if (strstr(text, "\"deletionTimestamp\""))
        dc->gc_dirty = true;
    emit(dc, r, created || !prev ? KILN_DC_ADDED : KILN_DC_MODIFIED, o->key, text, len, prev);
    return o;
}

void kiln_dc_store_delete(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj)
{
    const char *ns = kiln_dc_meta_str(obj, "namespace");
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    char *key = make_key(r->namespaced ? ns : "", name ? name : "");
    size_t h = bucket_of(&r->objects, key);
    kiln_dc_object **pp = &r->objects.buckets[h];
    while (*pp && strcmp((*pp)->key, key))
        pp = &(*pp)->next;
    kiln_dc_object *o = *pp;
    if (!o) {
        kiln_xfree(key);
        return;
    }
    *pp = o->next;
    r->objects.count--;
    /* The DELETED event carries the final state at a new resourceVersion, as
     * kube-apiserver's watch cache does. */
    if (!dc->replaying)
        dc->rv++;
    set_rv(obj, dc->rv);
    char *text = kiln_dc_dump(obj);
    if (dc->wal && !dc->replaying)
        kiln_dc_wal_append(dc, r, key, "", 0, true);
    dc->gc_dirty = true;
    emit(dc, r, KILN_DC_DELETED, key, text, strlen(text), NULL);
    kiln_xfree(text);
    kiln_xfree(o->key);
    kiln_xfree(o->json);
    kiln_xfree(o);
    kiln_xfree(key);
}

static int cmp_obj(const void *a, const void *b)
{
    const kiln_dc_object *x = *(kiln_dc_object *const *)a;
    const kiln_dc_object *y = *(kiln_dc_object *const *)b;
    return strcmp(x->key, y->key);
}

kiln_dc_object **kiln_dc_store_sorted(kiln_dc_resource *r, size_t *n)
{
    kiln_dc_object **v = kiln_xmalloc((r->objects.count + 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < r->objects.nbuckets; i++)
        for (kiln_dc_object *o = r->objects.buckets[i]; o; o = o->next)
            v[k++] = o;
    qsort(v, k, sizeof *v, cmp_obj);
    *n = k;
    return v;
}
