/* devcluster/patch.c: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
 * strategic merge patch for built-in kinds, and server-side apply with
 * managedFields.
 *
 * Strategic merge patch knows the merge keys kubectl relies on (containers,
 * env, ports, volumes, volumeMounts, conditions, ...) and the directives
 * $patch, $setElementOrder/, $retainKeys and $deleteFromPrimitiveList/.
 *
 * Server-side apply is a simplified model, documented in docs/devcluster.md:
 * field sets are FieldsV1 with every list treated as atomic (one leaf), the
 * applied object is merged into the live one as a merge patch (lists
 * replaced), conflicts are leaf fields whose value differs and which another
 * manager owns, and fields a manager applied before but omits now are removed
 * when no other manager owns them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "devcluster/internal.h"

/* ---------------- merge patch ---------------- */

json_t *kiln_dc_patch_merge(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(out, k);
            continue;
        }
        json_object_set_new(out, k, kiln_dc_patch_merge(json_object_get(out, k), v));
    }
    return out;
}

/* ---------------- JSON patch ---------------- */

/* Splits an RFC 6901 pointer into unescaped tokens (new array of strings). */
static json_t *pointer_parse(const char *ptr)
{
    json_t *toks = json_array();
    if (!*ptr)
        return toks;
    if (*ptr != '/') {
        json_decref(toks);
        return NULL;
    }
    const char *p = ptr + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char *t = kiln_xmalloc(n + 1);
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '~' && i + 1 < n && p[i + 1] == '1') {
                t[w++] = '/';
                i++;
            } else if (p[i] == '~' && i + 1 < n && p[i + 1] == '0') {
                t[w++] = '~';
                i++;
            } else {
                t[w++] = p[i];
            }
        }
        t[w] = '\0';
        json_array_append_new(toks, json_string(t));
        kiln_xfree(t);
        if (!slash)
            break;
        p = slash + 1;
    }
    return toks;
}

static bool parse_index(const char *s, size_t *out)
{
    if (!*s || (s[0] == '0' && s[1]))
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > (1u << 30))
        return false;
    *out = (size_t)v;
    return true;
}

/* Resolves all but the last token: the container the op works on. */
static json_t *parent_of(json_t *doc, json_t *toks)
{
    json_t *cur = doc;
    for (size_t i = 0; i + 1 < json_array_size(toks); i++) {
        const char *t = json_string_value(json_array_get(toks, i));
        if (json_is_object(cur)) {
            cur = json_object_get(cur, t);
        } else if (json_is_array(cur)) {
            size_t idx;
            if (!parse_index(t, &idx))
                return NULL;
            cur = json_array_get(cur, idx);
        } else {
            return NULL;
        }
        if (!cur)
            return NULL;
    }
    return cur;
}

static json_t *pointer_get(json_t *doc, json_t *toks)
{
    if (json_array_size(toks) == 0)
        return doc;
    json_t *parent = parent_of(doc, toks);
    const char *last = json_string_value(json_array_get(toks, json_array_size(toks) - 1));
    if (json_is_object(parent))
        return json_object_get(parent, last);
    size_t idx;
    if (json_is_array(parent) && parse_index(last, &idx))
        return json_array_get(parent, idx);
    return NULL;
}

static int op_add(json_t **doc, json_t *toks, json_t *value, const char *path, kiln_err *err)
{
    if (json_array_size(toks) == 0) {
        json_decref(*doc);
        *doc = json_deep_copy(value);
        return 0;
    }
    json_t *parent = parent_of(*doc, toks);
    const char *last = json_string_value(json_array_get(toks, json_array_size(toks) - 1));
    if (json_is_object(parent)) {
        json_object_set_new(parent, last, json_deep_copy(value));
        return 0;
    }
    if (json_is_array(parent)) {
        size_t idx;
        if (!strcmp(last, "-"))
            idx = json_array_size(parent);
        else if (!parse_index(last, &idx) || idx > json_array_size(parent))
            return kiln_err_set(err, KILN_EINVAL,
                                "add operation does not apply: index out of bounds: %s", path);
        json_array_insert_new(parent, idx, json_deep_copy(value));
        return 0;
    }
    return kiln_err_set(err, KILN_EINVAL,
                        "add operation does not apply: doc is missing path: \"%s\"", path);
}

static int op_remove(json_t *doc, json_t *toks, const char *path, const char *opname, kiln_err *err)
{
    json_t *parent = json_array_size(toks) ? parent_of(doc, toks) : NULL;
    const char *last = json_string_value(json_array_get(toks, json_array_size(toks) - 1));
    if (json_is_object(parent) && json_object_get(parent, last)) {
        json_object_del(parent, last);
        return 0;
    }
    size_t idx;
    if (json_is_array(parent) && parse_index(last, &idx) && idx < json_array_size(parent)) {
        json_array_remove(parent, idx);
        return 0;
    }
    return kiln_err_set(err, KILN_EINVAL,
                        "jsonpatch %s operation does not apply: doc is missing path: \"%s\"",
                        opname, path);
}

int kiln_dc_patch_json(json_t **doc, const json_t *ops, kiln_err *err)
{
    size_t i;
    json_t *op;
    json_array_foreach((json_t *)ops, i, op)
    {
        const char *name = json_string_value(json_object_get(op, "op"));
        const char *path = json_string_value(json_object_get(op, "path"));
        const char *from = json_string_value(json_object_get(op, "from"));
        json_t *value = json_object_get(op, "value");
        if (!name || !path)
            return kiln_err_set(err, KILN_EIO, "operation %zu: missing op or path", i);
        json_t *toks = pointer_parse(path);
        if (!toks)
            return kiln_err_set(err, KILN_EIO, "invalid JSON pointer: %s", path);
        int rc = 0;
        if (!strcmp(name, "add")) {
            rc = value ? op_add(doc, toks, value, path, err)
                       : kiln_err_set(err, KILN_EIO, "add operation missing value");
        } else if (!strcmp(name, "remove")) {
            rc = op_remove(*doc, toks, path, "remove", err);
        } else if (!strcmp(name, "replace")) {
            if (!value)
                rc = kiln_err_set(err, KILN_EIO, "replace operation missing value");
            else if (!pointer_get(*doc, toks))
                rc = kiln_err_set(err, KILN_EINVAL,
                                  "jsonpatch replace operation does not apply: doc is missing "
                                  "key: %s: missing value",
                                  path);
            else if ((rc = op_remove(*doc, toks, path, "replace", err)) == 0)
                rc = op_add(doc, toks, value, path, err);
        } else if (!strcmp(name, "test")) {
            json_t *have = pointer_get(*doc, toks);
            if (!value || !have || !json_equal(have, value))
                rc = kiln_err_set(err, KILN_EINVAL, "testing value %s failed: test failed", path);
        } else if (!strcmp(name, "move") || !strcmp(name, "copy")) {
            json_t *ft = from ? pointer_parse(from) : NULL;
            json_t *v = ft ? pointer_get(*doc, ft) : NULL;
            if (!v) {
                rc = kiln_err_set(err, KILN_EINVAL,
                                  "jsonpatch %s operation does not apply: doc is missing from "
                                  "path: %s",
                                  name, from ? from : "");
            } else {
                json_t *copy = json_deep_copy(v);
                if (!strcmp(name, "move"))
                    rc = op_remove(*doc, ft, from, "move", err);
                if (rc == 0)
                    rc = op_add(doc, toks, copy, path, err);
                json_decref(copy);
            }
            json_decref(ft);
        } else {
            rc = kiln_err_set(err, KILN_EIO, "Unexpected kind: %s", name);
        }
        json_decref(toks);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---------------- strategic merge patch ---------------- */

/* The patchMergeKey of a list field, or NULL for lists that are replaced. */
static const char *merge_key(const char *field, const json_t *items)
{
    static const struct {
        const char *field, *key;
    } keys[] = {
        {"containers", "name"},
        {"initContainers", "name"},
        {"ephemeralContainers", "name"},
        {"volumes", "name"},
        {"env", "name"},
        {"imagePullSecrets", "name"},
        {"volumeMounts", "mountPath"},
        {"volumeDevices", "devicePath"},
        {"conditions", "type"},
        {"hostAliases", "ip"},
        {"ownerReferences", "uid"},
        {"topologySpreadConstraints", "topologyKey"},
        {"resourceClaims", "name"},
    };
    if (!strcmp(field, "ports")) {
        /* Container ports merge on containerPort, Service ports on port. */
        json_t *first = json_array_get(items, 0);
        return json_object_get(first, "containerPort") ? "containerPort" : "port";
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(keys[i].field, field))
            return keys[i].key;
    return NULL;
}

/* Primitive lists with patchStrategy merge (a set). */
static bool merge_primitive(const char *field)
{
    return !strcmp(field, "finalizers");
}

static int smp_object(json_t *out, const json_t *patch, kiln_err *err);

static json_t *find_keyed(json_t *list, const char *key, const json_t *val, size_t *idx)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (json_equal(json_object_get(e, key), (json_t *)val)) {
            *idx = i;
            return e;
        }
    }
    return NULL;
}

static int smp_list(json_t *out, const char *field, const json_t *patch, kiln_err *err)
{
    json_t *cur = json_object_get(out, field);
    const char *key = merge_key(field, patch);
    if (merge_primitive(field) && json_is_array(cur)) {
        json_t *merged = json_deep_copy(cur);
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)patch, i, e)
        {
            bool have = false;
            size_t j;
            json_t *f;
            json_array_foreach(merged, j, f) have |= json_equal(e, f);
            if (!have)
                json_array_append(merged, e);
        }
        json_object_set_new(out, field, merged);
        return 0;
    }
    if (!key || !json_is_array(cur)) {
        /* No merge key: replace, dropping directive-only items. */
        json_t *list = json_array();
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)patch, i, e)
        {
            if (json_is_object(e) && json_object_get(e, "$patch"))
                continue;
            json_array_append_new(list, json_deep_copy(e));
        }
        json_object_set_new(out, field, list);
        return 0;
    }
    json_t *list = json_deep_copy(cur);
    size_t i;
    json_t *item;
    json_array_foreach((json_t *)patch, i, item)
    {
        if (!json_is_object(item)) {
            json_decref(list);
            return kiln_err_set(err, KILN_EIO, "%s: expected a list of objects", field);
        }
        const char *directive = json_string_value(json_object_get(item, "$patch"));
        json_t *kv = json_object_get(item, key);
        if (directive && !strcmp(directive, "replace")) {
            json_t *repl = json_array();
            size_t j;
            json_t *e;
            json_array_foreach((json_t *)patch, j, e)
            {
                if (!json_object_get(e, "$patch"))
                    json_array_append_new(repl, json_deep_copy(e));
            }
            json_decref(list);
            json_object_set_new(out, field, repl);
            return 0;
        }
        if (!kv) {
            json_decref(list);
            return kiln_err_set(err, KILN_EIO, "map: %s does not contain declared merge key: %s",
                                field, key);
        }
        size_t idx = 0;
        json_t *target = find_keyed(list, key, kv, &idx);
        if (directive && !strcmp(directive, "delete")) {
            if (target)
                json_array_remove(list, idx);
            continue;
        }
        if (target) {
            int rc = smp_object(target, item, err);
            if (rc < 0) {
                json_decref(list);
                return rc;
            }
        } else {
            json_t *fresh = json_object();
            int rc = smp_object(fresh, item, err);
            if (rc < 0) {
                json_decref(fresh);
                json_decref(list);
                return rc;
            }
            json_array_append_new(list, fresh);
        }
    }
    json_object_set_new(out, field, list);
    return 0;
}

static void apply_order(json_t *out, const char *field, const json_t *order)
{
    json_t *list = json_object_get(out, field);
    if (!json_is_array(list) || !json_is_array(order))
        return;
    const char *key = merge_key(field, list);
    json_t *sorted = json_array();
    json_t *rest = json_deep_copy(list);
    size_t i;
    json_t *o;
    json_array_foreach((json_t *)order, i, o)
    {
        size_t idx = 0;
        json_t *hit = NULL;
        if (key && json_is_object(o)) {
            hit = find_keyed(rest, key, json_object_get(o, key), &idx);
        } else {
            size_t j;
            json_t *e;
            json_array_foreach(rest, j, e) if (!hit && json_equal(e, o))
            {
                hit = e;
                idx = j;
            }
        }
        if (hit) {
            json_array_append(sorted, hit);
            json_array_remove(rest, idx);
        }
    }
    json_array_extend(sorted, rest);
    json_decref(rest);
    json_object_set_new(out, field, sorted);
}

static int smp_object(json_t *out, const json_t *patch, kiln_err *err)
{
    const char *directive = json_string_value(json_object_get(patch, "$patch"));
    if (directive && !strcmp(directive, "replace")) {
        json_object_clear(out);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)patch, k, v) if (k[0] != '$')
            json_object_set_new(out, k, json_deep_copy(v));
        return 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (!strncmp(k, "$deleteFromPrimitiveList/", 25)) {
            json_t *cur = json_object_get(out, k + 25);
            for (size_t i = json_array_size(cur); i-- > 0;) {
                size_t j;
                json_t *d;
                json_array_foreach(v, j, d) if (json_equal(json_array_get(cur, i), d))
                {
                    json_array_remove(cur, i);
                    break;
                }
            }
            continue;
        }
        if (k[0] == '$')
            continue;
        if (json_is_null(v)) {
            json_object_del(out, k);
        } else if (json_is_object(v)) {
            const char *d = json_string_value(json_object_get(v, "$patch"));
            if (d && !strcmp(d, "delete")) {
                json_object_del(out, k);
                continue;
            }
            json_t *cur = json_object_get(out, k);
            if (!json_is_object(cur)) {
                cur = json_object();
                json_object_set_new(out, k, cur);
            }
            int rc = smp_object(cur, v, err);
            if (rc < 0)
                return rc;
        } else if (json_is_array(v)) {
            int rc = smp_list(out, k, v, err);
            if (rc < 0)
                return rc;
        } else {
            json_object_set_new(out, k, json_deep_copy(v));
        }
    }
    json_object_foreach((json_t *)patch, k, v)
    {
        if (!strncmp(k, "$setElementOrder/", 17))
            apply_order(out, k + 17, v);
    }
    json_t *retain = json_object_get(patch, "$retainKeys");
    if (json_is_array(retain)) {
        const char *key;
        json_t *val;
        void *tmp;
        json_object_foreach_safe(out, tmp, key, val)
        {
            bool keep = false;
            size_t i;
            json_t *r;
            json_array_foreach(retain, i, r) keep |= !strcmp(json_string_value(r) ?: "", key);
            if (!keep)
                json_object_del(out, key);
        }
    }
    return 0;
}

int kiln_dc_patch_strategic(json_t **out, const json_t *target, const json_t *patch, kiln_err *err)
{
    json_t *doc = json_deep_copy(target);
    int rc = smp_object(doc, patch, err);
    if (rc < 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* ---------------- managed fields ---------------- */

/* FieldsV1 set of obj: objects recurse, everything else is a leaf ({}). */
static json_t *fieldset(const json_t *obj, int depth)
{
    json_t *set = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (depth == 0 && (!strcmp(k, "apiVersion") || !strcmp(k, "kind")))
            continue;
        if (depth == 0 && !strcmp(k, "metadata")) {
            json_t *md = json_object();
            static const char *tracked[] = {"labels", "annotations", "finalizers",
                                            "ownerReferences"};
            for (size_t i = 0; i < 4; i++) {
                json_t *f = json_object_get(v, tracked[i]);
                if (!f)
                    continue;
                char key[64];
                snprintf(key, sizeof key, "f:%s", tracked[i]);
                json_object_set_new(md, key, json_is_object(f) ? fieldset(f, 1) : json_object());
            }
            if (json_object_size(md))
                json_object_set_new(set, "f:metadata", md);
            else
                json_decref(md);
            continue;
        }
        char *key = kiln_xasprintf("f:%s", k);
        json_object_set_new(set, key,
                            json_is_object(v) && json_object_size(v) ? fieldset(v, depth + 1)
                                                                     : json_object());
        kiln_xfree(key);
    }
    return set;
}

/* Leaf paths of a set as arrays of plain keys (new array of arrays). */
static void leaves_rec(const json_t *set, json_t *prefix, json_t *out)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)set, k, v)
    {
        if (strncmp(k, "f:", 2))
            continue;
        json_t *p = json_copy(prefix);
        json_array_append_new(p, json_string(k + 2));
        if (json_object_size(v) == 0)
            json_array_append(out, p);
        else
            leaves_rec(v, p, out);
        json_decref(p);
    }
}

static json_t *leaves(const json_t *set)
{
    json_t *out = json_array();
    json_t *prefix = json_array();
    leaves_rec(set, prefix, out);
    json_decref(prefix);
    return out;
}

static json_t *value_at(const json_t *obj, const json_t *path)
{
    const json_t *cur = obj;
    size_t i;
    json_t *k;
    json_array_foreach((json_t *)path, i, k)
    {
        cur = json_object_get(cur, json_string_value(k));
        if (!cur)
            return NULL;
    }
    return (json_t *)cur;
}

/* Relation of path to a set: owned exactly, via an ancestor leaf, or via a descendant. */
static bool set_overlaps(const json_t *set, const json_t *path)
{
    const json_t *cur = set;
    size_t i;
    json_t *k;
    json_array_foreach((json_t *)path, i, k)
    {
        char key[300];
        snprintf(key, sizeof key, "f:%s", json_string_value(k));
        cur = json_object_get(cur, key);
        if (!cur)
            return false;
        if (json_object_size(cur) == 0)
            return true; /* a leaf at or above path */
    }
    return true; /* path is an interior node with owned descendants */
}

static void set_remove(json_t *set, const json_t *path, size_t depth)
{
    if (depth >= json_array_size(path))
        return;
    char key[300];
    snprintf(key, sizeof key, "f:%s", json_string_value(json_array_get(path, depth)));
    json_t *child = json_object_get(set, key);
    if (!child)
        return;
    if (depth + 1 == json_array_size(path) || json_object_size(child) == 0) {
        json_object_del(set, key);
        return;
    }
    set_remove(child, path, depth + 1);
    if (json_object_size(child) == 0)
        json_object_del(set, key);
}

static void set_add(json_t *set, const json_t *path)
{
    json_t *cur = set;
    size_t i;
    json_t *k;
    json_array_foreach((json_t *)path, i, k)
    {
        char key[300];
        snprintf(key, sizeof key, "f:%s", json_string_value(k));
        json_t *child = json_object_get(cur, key);
        if (!child || (json_object_size(child) == 0 && i + 1 < json_array_size(path))) {
            if (child && i + 1 < json_array_size(path))
                return; /* an ancestor leaf already covers it */
            child = json_object();
            json_object_set_new(cur, key, child);
        }
        cur = child;
    }
    json_object_clear(cur);
}

static void path_string(const json_t *path, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    size_t i;
    json_t *k;
    json_array_foreach((json_t *)path, i, k)
    {
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, ".%s", json_string_value(k));
        if (len >= n)
            break;
    }
}

static void now_rfc3339(char out[32])
{
    kiln_dc_timestamp(out);
}

static json_t *entry_for(json_t *mf, const char *manager, const char *op, const char *sub)
{
    size_t i;
    json_t *e;
    json_array_foreach(mf, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "manager"));
        const char *o = json_string_value(json_object_get(e, "operation"));
        const char *s = json_string_value(json_object_get(e, "subresource"));
        if (m && o && !strcmp(m, manager) && !strcmp(o, op) && !strcmp(s ? s : "", sub ? sub : ""))
            return e;
    }
    return NULL;
}

static void prune_empty_entries(json_t *mf)
{
    for (size_t i = json_array_size(mf); i-- > 0;) {
        json_t *e = json_array_get(mf, i);
        if (json_object_size(json_object_get(e, "fieldsV1")) == 0)
            json_array_remove(mf, i);
    }
}

static void stamp(json_t *entry, const char *api_version)
{
    char ts[32];
    now_rfc3339(ts);
    json_object_set_new(entry, "apiVersion", json_string(api_version));
    json_object_set_new(entry, "time", json_string(ts));
    json_object_set_new(entry, "fieldsType", json_string("FieldsV1"));
}

static json_t *managed(json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    json_t *mf = json_object_get(md, "managedFields");
    if (!json_is_array(mf)) {
        mf = json_array();
        json_object_set_new(md, "managedFields", mf);
    }
    return mf;
}

void kiln_dc_managed_update(json_t *newobj, const json_t *old, const char *manager,
                            const char *api_version, const char *subresource)
{
    if (!json_is_object(json_object_get(newobj, "metadata")))
        return;
    json_t *mf = managed(newobj);
    json_t *nset = fieldset(newobj, 0);
    json_t *oset = old ? fieldset(old, 0) : json_object();
    json_t *nl = leaves(nset);
    json_t *ol = leaves(oset);
    json_t *changed = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(nl, i, p)
    {
        json_t *a = value_at(newobj, p), *b = old ? value_at(old, p) : NULL;
        if (!b || !json_equal(a, b))
            json_array_append(changed, p);
    }
    json_t *removed = json_array();
    json_array_foreach(ol, i, p) if (!value_at(newobj, p)) json_array_append(removed, p);
    if (json_array_size(changed) || json_array_size(removed)) {
        size_t j;
        json_t *e;
        json_array_foreach(mf, j, e)
        {
            json_t *fs = json_object_get(e, "fieldsV1");
            json_array_foreach(changed, i, p) set_remove(fs, p, 0);
            json_array_foreach(removed, i, p) set_remove(fs, p, 0);
        }
        json_t *mine = entry_for(mf, manager, "Update", subresource);
        if (!mine && json_array_size(changed)) {
            mine =
                json_pack("{s:s,s:s,s:{}}", "manager", manager, "operation", "Update", "fieldsV1");
            if (subresource)
                json_object_set_new(mine, "subresource", json_string(subresource));
            json_array_append_new(mf, mine);
        }
        if (mine) {
            json_t *fs = json_object_get(mine, "fieldsV1");
            json_array_foreach(changed, i, p) set_add(fs, p);
            stamp(mine, api_version);
        }
        prune_empty_entries(mf);
    }
    json_decref(nset);
    json_decref(oset);
    json_decref(nl);
    json_decref(ol);
    json_decref(changed);
    json_decref(removed);
}

int kiln_dc_apply(json_t **out, const json_t *live, const json_t *applied, const char *manager,
                  bool force, const char *api_version, const char *subresource,
                  kiln_devcluster_response *resp)
{
    if (json_object_get(json_object_get(applied, "metadata"), "managedFields")) {
        kiln_dc_status(resp, 400, "BadRequest", NULL, "metadata.managedFields must be nil");
        return KILN_EINVAL;
    }
    json_t *cfg = json_deep_copy(applied);
    if (subresource && !strcmp(subresource, "status")) {
        /* Apply to /status considers only .status. */
        json_t *keep = json_pack("{s:O?}", "status", json_object_get(cfg, "status"));
        json_decref(cfg);
        cfg = keep;
        if (!json_object_get(cfg, "status"))
            json_object_del(cfg, "status");
    }
    json_t *aset = fieldset(cfg, 0);
    json_t *al = leaves(aset);
    json_t *base = live ? json_deep_copy(live) : json_object();
    json_t *mf = json_object_get(json_object_get(base, "metadata"), "managedFields");
    if (!json_is_array(mf) && json_is_object(json_object_get(base, "metadata"))) {
        mf = json_array();
        json_object_set_new(json_object_get(base, "metadata"), "managedFields", mf);
    }
    /* Conflicts: a leaf whose value changes and which another manager owns. */
    kiln_buf msg;
    kiln_buf_init(&msg, 65536);
    json_t *causes = json_array();
    size_t nconf = 0;
    char first[1200] = "";
    size_t i;
    json_t *p;
    json_array_foreach(al, i, p)
    {
        json_t *want = value_at(cfg, p), *have = value_at(base, p);
        if (!have || json_equal(want, have))
            continue;
        size_t j;
        json_t *e;
        json_array_foreach(mf, j, e)
        {
            const char *m = json_string_value(json_object_get(e, "manager"));
            const char *op = json_string_value(json_object_get(e, "operation"));
            if (!m || (!strcmp(m, manager) && op && !strcmp(op, "Apply")))
                continue;
            if (!set_overlaps(json_object_get(e, "fieldsV1"), p))
                continue;
            if (force) {
                set_remove(json_object_get(e, "fieldsV1"), p, 0);
                continue;
            }
            char field[512], cm[600];
            path_string(p, field, sizeof field);
            const char *eav = json_string_value(json_object_get(e, "apiVersion"));
            if (op && !strcmp(op, "Update"))
                snprintf(cm, sizeof cm, "conflict with \"%s\" using %s at %s", m, eav ? eav : "",
                         json_string_value(json_object_get(e, "time")) ?: "");
            else
                snprintf(cm, sizeof cm, "conflict with \"%s\" using %s", m, eav ? eav : "");
            json_array_append_new(causes,
                                  json_pack("{s:s,s:s,s:s}", "reason", "FieldManagerConflict",
                                            "message", cm, "field", field));
            if (nconf == 0)
                snprintf(first, sizeof first, "%s: %s", cm, field);
            kiln_buf_printf(&msg, NULL, "\n- %s: %s", cm, field);
            nconf++;
        }
    }
    if (nconf) {
        json_t *d = json_pack("{s:o}", "causes", causes);
        /* Wording of apimachinery's managedfields conflict.go. */
        if (nconf == 1)
            kiln_dc_status(resp, 409, "Conflict", d, "Apply failed with 1 conflict: %s", first);
        else
            kiln_dc_status(resp, 409, "Conflict", d, "Apply failed with %zu conflicts:%s", nconf,
                           msg.data ? msg.data : "");
        kiln_buf_free(&msg);
        json_decref(cfg);
        json_decref(aset);
        json_decref(al);
        json_decref(base);
        return KILN_ECONFLICT;
    }
    json_decref(causes);
    kiln_buf_free(&msg);
    json_t *merged = kiln_dc_patch_merge(base, cfg);
    json_t *mmf = managed(merged);
    /* Fields this manager applied before but omits now go, unless someone else owns them. */
    json_t *mine = entry_for(mmf, manager, "Apply", subresource);
    if (mine) {
        json_t *pl = leaves(json_object_get(mine, "fieldsV1"));
        json_array_foreach(pl, i, p)
        {
            if (value_at(cfg, p))
                continue;
            bool other = false;
            size_t j;
            json_t *e;
            json_array_foreach(mmf, j,
                               e) if (e != mine && set_overlaps(json_object_get(e, "fieldsV1"), p))
                other = true;
            if (other)
                continue;
            json_t *parent = merged;
            for (size_t k = 0; parent && k + 1 < json_array_size(p); k++)
                parent = json_object_get(parent, json_string_value(json_array_get(p, k)));
            if (json_is_object(parent))
                json_object_del(parent,
                                json_string_value(json_array_get(p, json_array_size(p) - 1)));
        }
        json_decref(pl);
        json_object_set(mine, "fieldsV1", aset);
    } else {
        mine =
            json_pack("{s:s,s:s,s:O}", "manager", manager, "operation", "Apply", "fieldsV1", aset);
        if (subresource)
            json_object_set_new(mine, "subresource", json_string(subresource));
        json_array_append_new(mmf, mine);
    }
    stamp(mine, api_version);
    /* Other managers lose the fields this apply now owns only when forced
     * (above); equal values are shared ownership, as in real SSA. */
    prune_empty_entries(mmf);
    if (json_array_size(mmf) == 0)
        json_object_del(json_object_get(merged, "metadata"), "managedFields");
    json_decref(cfg);
    json_decref(aset);
    json_decref(al);
    json_decref(base);
    *out = merged;
    return 0;
}
