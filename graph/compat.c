/* graph/compat.c: breaking changes between two OpenAPI schemas (see
 * graph/compat.h). The walk follows the old schema: what old objects may
 * hold is what a new schema must still accept.
 */
#include "graph/compat.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

typedef struct cctx {
    kiln_errs *out;
    int count;
} cctx;

static void report(cctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(cctx *c, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_errs_vadd_at(c->out, KILN_EINVAL, path, fmt, ap);
    va_end(ap);
    c->count++;
}

/* Compact JSON of v for messages. New string. */
static char *show(const json_t *v)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    char *r = kiln_xstrdup(s ? s : "?");
    free(s);
    return r;
}

static bool flag(const json_t *s, const char *key)
{
    return json_is_true(json_object_get(s, key));
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keys of an object, sorted (new array of borrowed strings). */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    const char **keys = kiln_xcalloc(json_object_size(obj) + 1, sizeof(*keys));
    const char *k;
    json_t *v;
    *n = 0;
    json_object_foreach((json_t *)obj, k, v) keys[(*n)++] = k;
    qsort(keys, *n, sizeof(*keys), key_cmp);
    return keys;
}

static bool in_array(const json_t *arr, const json_t *v)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (json_equal(e, (json_t *)v))
            return true;
    }
    return false;
}

static bool names(const json_t *arr, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (json_is_string(e) && !strcmp(json_string_value(e), name))
            return true;
    }
    return false;
}

/* lower: a lower bound (tightened when raised); else an upper bound. */
static void compare_bound(cctx *c, const char *path, const json_t *o, const json_t *n,
                          const char *key, bool lower)
{
    const json_t *a = json_object_get(o, key), *b = json_object_get(n, key);
    if (!json_is_number(b))
        return;
    char *nb = show(b);
    if (!json_is_number(a)) {
        report(c, path, "%s added: %s", key, nb);
    } else {
        double x = json_number_value(a), y = json_number_value(b);
        if (lower ? y > x : y < x) {
            char *ob = show(a);
            report(c, path, "%s %s from %s to %s", key, lower ? "raised" : "lowered", ob, nb);
            kiln_xfree(ob);
        }
    }
    kiln_xfree(nb);
}

static char *child_path(const char *path, const char *key)
{
    if (!path[0])
        return kiln_xstrdup(key);
    if (key[0] == '[')
        return kiln_xasprintf("%s%s", path, key);
    return kiln_xasprintf("%s.%s", path, key);
}

static void compare(cctx *c, const char *path, const json_t *o, const json_t *n);

static bool compare_type(cctx *c, const char *path, const json_t *o, const json_t *n)
{
    const char *ot = json_string_value(json_object_get(o, "type"));
    const char *nt = json_string_value(json_object_get(n, "type"));
    if (ot && nt && strcmp(ot, nt)) {
        report(c, path, "type changed from %s to %s", ot, nt);
        return false;
    }
    if (flag(o, "x-kubernetes-int-or-string") && !flag(n, "x-kubernetes-int-or-string")) {
        report(c, path, "x-kubernetes-int-or-string removed");
        return false;
    }
    if (!ot && nt && !flag(o, "x-kubernetes-int-or-string")) {
        report(c, path, "type set to %s", nt);
        return false;
    }
    return true;
}

static void compare_enum(cctx *c, const char *path, const json_t *o, const json_t *n)
{
    const json_t *oe = json_object_get(o, "enum"), *ne = json_object_get(n, "enum");
    size_t i;
    json_t *v;
    if (!json_is_array(ne))
        return;
    if (!json_is_array(oe)) {
        char *shown = show(ne);
        report(c, path, "enum added: %s", shown);
        kiln_xfree(shown);
        return;
    }
    json_array_foreach(oe, i, v)
    {
        if (in_array(ne, v))
            continue;
        char *shown = show(v);
        report(c, path, "enum value %s removed", shown);
        kiln_xfree(shown);
    }
}

static void compare_list_type(cctx *c, const char *path, const json_t *o, const json_t *n)
{
    const char *ol = json_string_value(json_object_get(o, "x-kubernetes-list-type"));
    const char *nl = json_string_value(json_object_get(n, "x-kubernetes-list-type"));
    /* set and map forbid duplicates that an atomic list may hold. */
    if (nl && strcmp(nl, "atomic") && (!ol || strcmp(ol, nl))) {
        report(c, path, "x-kubernetes-list-type changed from %s to %s", ol ? ol : "atomic", nl);
        return;
    }
    if (nl && !strcmp(nl, "map")) {
        const json_t *ok = json_object_get(o, "x-kubernetes-list-map-keys");
        const json_t *nk = json_object_get(n, "x-kubernetes-list-map-keys");
        if (!json_equal((json_t *)ok, (json_t *)nk)) {
            char *a = show(ok), *b = show(nk);
            report(c, path, "x-kubernetes-list-map-keys changed from %s to %s", a, b);
            kiln_xfree(a);
            kiln_xfree(b);
        }
    }
    if (flag(n, "uniqueItems") && !flag(o, "uniqueItems"))
        report(c, path, "uniqueItems added");
}

static void compare_pattern(cctx *c, const char *path, const json_t *o, const json_t *n)
{
    const char *op = json_string_value(json_object_get(o, "pattern"));
    const char *np = json_string_value(json_object_get(n, "pattern"));
    if (!np)
        return;
    if (!op)
        report(c, path, "pattern added: \"%s\"", np);
    else if (strcmp(op, np))
        report(c, path, "pattern changed from \"%s\" to \"%s\"", op, np);
}

static void compare_object(cctx *c, const char *path, const json_t *o, const json_t *n)
{
    const json_t *op = json_object_get(o, "properties"), *np = json_object_get(n, "properties");
    const json_t *oreq = json_object_get(o, "required"), *nreq = json_object_get(n, "required");
    size_t nk = 0, i;
    const char **keys;

    /* New required names, sorted for a stable report. */
    json_t *req_names = json_object();
    json_t *r;
    json_array_foreach(nreq, i, r)
    {
        if (json_is_string(r) && !names(oreq, json_string_value(r)))
            json_object_set_new(req_names, json_string_value(r), json_true());
    }
    keys = sorted_keys(req_names, &nk);
    for (i = 0; i < nk; i++) {
        char *p = child_path(path, keys[i]);
        report(c, p, json_object_get(op, keys[i]) ? "field became required" : "new required field");
        kiln_xfree(p);
    }
    kiln_xfree(keys);
    json_decref(req_names);

    keys = sorted_keys(op, &nk);
    for (i = 0; i < nk; i++) {
        char *p = child_path(path, keys[i]);
        const json_t *ns = json_object_get(np, keys[i]);
        if (!ns)
            report(c, p, "property removed");
        else
            compare(c, p, json_object_get(op, keys[i]), ns);
        kiln_xfree(p);
    }
    kiln_xfree(keys);

    const json_t *oa = json_object_get(o, "additionalProperties");
    const json_t *na = json_object_get(n, "additionalProperties");
    if (json_is_object(oa) && json_is_object(na)) {
        char *p = child_path(path, "[*]");
        compare(c, p, oa, na);
        kiln_xfree(p);
    } else if ((json_is_object(oa) || json_is_true(oa)) && !json_is_object(na) &&
               !json_is_true(na)) {
        report(c, path, "additionalProperties removed");
    }
}

static void compare(cctx *c, const char *path, const json_t *o, const json_t *n)
{
    if (!json_is_object(o) || !json_is_object(n))
        return;
    if (!compare_type(c, path, o, n))
        return;
    if (flag(o, "x-kubernetes-preserve-unknown-fields") &&
        !flag(n, "x-kubernetes-preserve-unknown-fields"))
        report(c, path, "x-kubernetes-preserve-unknown-fields removed");
    if (flag(o, "nullable") && !flag(n, "nullable"))
        report(c, path, "nullable removed");
    compare_enum(c, path, o, n);
    compare_bound(c, path, o, n, "minimum", true);
    compare_bound(c, path, o, n, "maximum", false);
    if (flag(n, "exclusiveMinimum") && !flag(o, "exclusiveMinimum"))
        report(c, path, "exclusiveMinimum set");
    if (flag(n, "exclusiveMaximum") && !flag(o, "exclusiveMaximum"))
        report(c, path, "exclusiveMaximum set");
    {
        const json_t *om = json_object_get(o, "multipleOf"), *nm = json_object_get(n, "multipleOf");
        if (json_is_number(nm) && !json_equal((json_t *)om, (json_t *)nm)) {
            char *a = show(nm);
            report(c, path, "multipleOf set to %s", a);
            kiln_xfree(a);
        }
    }
    compare_bound(c, path, o, n, "minLength", true);
    compare_bound(c, path, o, n, "maxLength", false);
    compare_pattern(c, path, o, n);
    compare_bound(c, path, o, n, "minItems", true);
    compare_bound(c, path, o, n, "maxItems", false);
    compare_list_type(c, path, o, n);
    compare_bound(c, path, o, n, "minProperties", true);
    compare_bound(c, path, o, n, "maxProperties", false);
    compare_object(c, path, o, n);
    const json_t *oi = json_object_get(o, "items"), *ni = json_object_get(n, "items");
    if (json_is_object(oi) && json_is_object(ni)) {
        char *p = child_path(path, "[*]");
        compare(c, p, oi, ni);
        kiln_xfree(p);
    }
}

int kiln_crd_breaking_changes(kiln_errs *out, const json_t *old_schema, const json_t *new_schema)
{
    cctx c = {.out = out};
    if (!json_is_object(old_schema) || !json_is_object(new_schema)) {
        if (out)
            kiln_errs_add(out, KILN_EINVAL, "breaking-change check: both schemas must be objects");
        return KILN_EINVAL;
    }
    compare(&c, "", old_schema, new_schema);
    return c.count;
}
