/* graph/simpleschema.c: SimpleSchema declarations -> OpenAPI v3 (see
 * graph/simpleschema.h and docs/simpleschema.md).
 *
 * A declaration is `<type> [| <marker>=<value> ...]`, split at the first `|`.
 * Custom types are resolved depth-first with memoization, so each is built
 * once and copied where it is used; the resolution stack spells out a cycle.
 * Every schema object built or copied is counted, because inline expansion of
 * types that use each other twice per level grows exponentially.
 */
#include "graph/simpleschema.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/schema.h"

/* Longest chain of custom types referring to each other while one resolves. */
#define MAX_TYPE_CHAIN 32

enum { TYPE_UNSEEN, TYPE_VISITING, TYPE_DONE, TYPE_BROKEN };

typedef struct ctype {
    const char *name;   /* borrowed from the types map */
    const json_t *body; /* borrowed: an alias declaration or a struct map */
    json_t *schema;     /* owned once resolved */
    bool required;      /* the alias says required=true */
    int depth;          /* schema levels inside, for the nesting bound */
    size_t nodes;       /* schema objects inside, for the expansion bound */
    int state;
} ctype;

typedef struct ctx {
    kiln_errs *errs; /* borrowed, may be NULL */
    int code;        /* the first error's code */
    ctype *types;    /* owned array, sorted by name */
    size_t ntypes;
    const char *types_path;
    ctype *stack[MAX_TYPE_CHAIN]; /* types being resolved, outermost first */
    size_t nstack;
    size_t nodes;
    bool nodes_reported;
} ctx;

static int fail(ctx *c, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(ctx *c, int code, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_errs_vadd_at(c->errs, code, path, fmt, ap);
    va_end(ap);
    if (!c->code)
        c->code = code;
    return code;
}

static char *join(const char *path, const char *key)
{
    if (!path || !path[0])
        return kiln_xstrdup(key);
    return kiln_xasprintf("%s.%s", path, key);
}

/* A JSON value's type in SimpleSchema's words: maps and lists. */
static const char *type_name(const json_t *v)
{
    if (json_is_object(v))
        return "map";
    if (json_is_array(v))
        return "list";
    return kiln_json_type_name(v);
}

/* Compact JSON of v for messages. New string. */
static char *show(const json_t *v)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    char *r = kiln_xstrdup(s ? s : "?");
    free(s);
    return r;
}

static json_t *new_object(ctx *c)
{
    c->nodes++;
    return json_object();
}

static bool over_nodes(ctx *c, size_t more, const char *path)
{
    if (c->nodes + more <= KILN_SIMPLESCHEMA_MAX_NODES)
        return false;
    if (!c->nodes_reported)
        fail(c, KILN_ELIMIT, path,
             "schema would exceed %d nodes (custom types are expanded inline where used)",
             KILN_SIMPLESCHEMA_MAX_NODES);
    else if (!c->code)
        c->code = KILN_ELIMIT;
    c->nodes_reported = true;
    return true;
}

static bool too_deep(ctx *c, int depth, const char *path)
{
    if (depth <= KILN_SIMPLESCHEMA_MAX_DEPTH)
        return false;
    fail(c, KILN_ELIMIT, path, "schema nesting exceeds maximum depth of %d",
         KILN_SIMPLESCHEMA_MAX_DEPTH);
    return true;
}

static ctype *find_type(ctx *c, const char *name, size_t n)
{
    size_t lo = 0, hi = c->ntypes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strncmp(c->types[mid].name, name, n);
        if (r == 0 && c->types[mid].name[n] != '\0')
            r = 1;
        if (r == 0)
            return &c->types[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int resolve_type(ctx *c, ctype *t);
static json_t *build_decl(ctx *c, const char *decl, const char *path, bool *required, int *depth);
static json_t *build_map(ctx *c, const json_t *map, const char *path, int level, int *depth);

/* --- types --------------------------------------------------------------- */

static bool is_atomic(const char *t, size_t n, const char *name)
{
    return strlen(name) == n && !memcmp(t, name, n);
}

/* Builds the schema of a type expression t[0..n). *type_required: a custom
 * type named directly (not as an element) is an alias marked required. */
static json_t *build_type(ctx *c, const char *t, size_t n, const char *path, int nesting,
                          int *depth, bool *type_required)
{
    json_t *s = NULL;
    while (n && isspace((unsigned char)*t)) {
        t++;
        n--;
    }
    while (n && isspace((unsigned char)t[n - 1]))
        n--;
    if (n == 0) {
        fail(c, KILN_EINVAL, path, "missing type");
        return NULL;
    }
    if (n >= 2 && !memcmp(t, "[]", 2)) {
        if (nesting + 1 > KILN_SIMPLESCHEMA_MAX_TYPE_DEPTH) {
            fail(c, KILN_ELIMIT, path, "type nesting exceeds maximum depth of %d",
                 KILN_SIMPLESCHEMA_MAX_TYPE_DEPTH);
            return NULL;
        }
        int d = 0;
        json_t *items = build_type(c, t + 2, n - 2, path, nesting + 1, &d, NULL);
        if (!items)
            return NULL;
        s = new_object(c);
        json_object_set_new(s, "type", json_string("array"));
        json_object_set_new(s, "items", items);
        *depth = d + 1;
        if (too_deep(c, *depth, path)) {
            json_decref(s);
            return NULL;
        }
        return s;
    }
    if (n >= 4 && !memcmp(t, "map[", 4)) {
        const char *close = memchr(t + 4, ']', n - 4);
        if (!close) {
            fail(c, KILN_EINVAL, path, "invalid map type \"%.*s\": missing ]", (int)n, t);
            return NULL;
        }
        const char *k = t + 4;
        size_t kn = (size_t)(close - k);
        while (kn && isspace((unsigned char)*k)) {
            k++;
            kn--;
        }
        while (kn && isspace((unsigned char)k[kn - 1]))
            kn--;
        if (!is_atomic(k, kn, "string")) {
            fail(c, KILN_EINVAL, path, "map key type must be string, got \"%.*s\"", (int)kn, k);
            return NULL;
        }
        if (nesting + 1 > KILN_SIMPLESCHEMA_MAX_TYPE_DEPTH) {
            fail(c, KILN_ELIMIT, path, "type nesting exceeds maximum depth of %d",
                 KILN_SIMPLESCHEMA_MAX_TYPE_DEPTH);
            return NULL;
        }
        int d = 0;
        size_t rest = n - (size_t)(close + 1 - t);
        json_t *values = build_type(c, close + 1, rest, path, nesting + 1, &d, NULL);
        if (!values)
            return NULL;
        s = new_object(c);
        json_object_set_new(s, "type", json_string("object"));
        json_object_set_new(s, "additionalProperties", values);
        *depth = d + 1;
        if (too_deep(c, *depth, path)) {
            json_decref(s);
            return NULL;
        }
        return s;
    }
    *depth = 1;
    if (is_atomic(t, n, "string") || is_atomic(t, n, "integer") || is_atomic(t, n, "boolean")) {
        s = new_object(c);
        json_object_set_new(s, "type", json_stringn(t, n));
        return s;
    }
    if (is_atomic(t, n, "float")) {
        s = new_object(c);
        json_object_set_new(s, "type", json_string("number"));
        return s;
    }
    if (is_atomic(t, n, "object")) {
        s = new_object(c);
        json_object_set_new(s, "type", json_string("object"));
        json_object_set_new(s, "x-kubernetes-preserve-unknown-fields", json_true());
        return s;
    }
    ctype *ct = find_type(c, t, n);
    if (!ct) {
        fail(c, KILN_EINVAL, path, "unknown type \"%.*s\"", (int)(n > 64 ? 64 : n), t);
        return NULL;
    }
    /* A broken type was reported where it is defined; its users say nothing
     * more, so each problem is reported once. */
    if (resolve_type(c, ct) != 0)
        return NULL;
    if (over_nodes(c, ct->nodes, path))
        return NULL;
    c->nodes += ct->nodes;
    *depth = ct->depth;
    if (type_required)
        *type_required = ct->required;
    return json_deep_copy(ct->schema);
}

static int resolve_type(ctx *c, ctype *t)
{
    char *path = NULL;
    json_t *s = NULL;
    int depth = 0;
    bool required = false;
    size_t before;

    if (t->state == TYPE_DONE)
        return 0;
    if (t->state == TYPE_BROKEN)
        return KILN_EINVAL;
    if (t->state == TYPE_VISITING) {
        size_t i = 0;
        while (i < c->nstack && c->stack[i] != t)
            i++;
        char cycle[KILN_ERR_MSG_MAX] = "";
        size_t len = 0;
        for (size_t j = i; j < c->nstack && len < sizeof(cycle); j++)
            len += (size_t)snprintf(cycle + len, sizeof(cycle) - len, "%s -> ", c->stack[j]->name);
        if (len < sizeof(cycle))
            snprintf(cycle + len, sizeof(cycle) - len, "%s", t->name);
        path = join(c->types_path, c->stack[i]->name);
        fail(c, KILN_EINVAL, path, "cyclic dependency in types: %s", cycle);
        kiln_xfree(path);
        return KILN_EINVAL;
    }
    path = join(c->types_path, t->name);
    if (c->nstack == MAX_TYPE_CHAIN) {
        fail(c, KILN_ELIMIT, path, "custom types refer to each other more than %d deep",
             MAX_TYPE_CHAIN);
        kiln_xfree(path);
        t->state = TYPE_BROKEN;
        return KILN_ELIMIT;
    }
    t->state = TYPE_VISITING;
    c->stack[c->nstack++] = t;
    before = c->nodes;
    if (json_is_string(t->body))
        s = build_decl(c, json_string_value(t->body), path, &required, &depth);
    else if (json_is_object(t->body))
        s = build_map(c, t->body, path, 0, &depth);
    else
        fail(c, KILN_EINVAL, path, "expected a type declaration string or a map of fields, got %s",
             type_name(t->body));
    c->nstack--;
    kiln_xfree(path);
    if (!s) {
        t->state = TYPE_BROKEN;
        return KILN_EINVAL;
    }
    t->schema = s;
    t->required = required;
    t->depth = depth;
    t->nodes = c->nodes - before;
    t->state = TYPE_DONE;
    return 0;
}

/* --- markers ------------------------------------------------------------- */

typedef struct marker {
    char *key;
    char *value; /* unquoted content */
    bool quoted;
} marker;

typedef struct markers {
    marker *items;
    size_t len;
    size_t cap;
} markers;

static void markers_free(markers *m)
{
    for (size_t i = 0; i < m->len; i++) {
        kiln_xfree(m->items[i].key);
        kiln_xfree(m->items[i].value);
    }
    kiln_xfree(m->items);
}

/* Skips a double-quoted string starting at *p == '"'; returns the position
 * after the closing quote, or NULL when it is not closed. */
static const char *skip_quoted(const char *p, char q)
{
    for (p++; *p; p++) {
        if (*p == '\\' && q == '"' && p[1])
            p++;
        else if (*p == q)
            return p + 1;
    }
    return NULL;
}

static int parse_markers(ctx *c, markers *out, const char *text, const char *path)
{
    const char *p = text;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        const char *key = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t kn = (size_t)(p - key);
        if (*p != '=' || kn == 0) {
            int shown = (int)(kn > 64 ? 64 : kn);
            if (kn == 0)
                return fail(c, KILN_EINVAL, path, "invalid marker: missing name before =");
            return fail(c, KILN_EINVAL, path, "invalid marker \"%.*s\": expected name=value", shown,
                        key);
        }
        p++;
        char *value = NULL;
        bool quoted = false;
        char keybuf[65];
        snprintf(keybuf, sizeof(keybuf), "%.*s", (int)(kn > 64 ? 64 : kn), key);
        if (*p == '"' || *p == '\'') {
            const char *end = skip_quoted(p, *p);
            if (!end)
                return fail(c, KILN_EINVAL, path, "marker \"%s\": unterminated quoted value",
                            keybuf);
            if (*end && !isspace((unsigned char)*end))
                return fail(c, KILN_EINVAL, path,
                            "marker \"%s\": unexpected text after quoted value", keybuf);
            json_t *s = NULL;
            if (*p == '"')
                s = json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY, NULL);
            if (json_is_string(s))
                value = kiln_xstrndup(json_string_value(s), json_string_length(s));
            else
                value = kiln_xstrndup(p + 1, (size_t)(end - p - 2));
            json_decref(s);
            quoted = true;
            p = end;
        } else {
            const char *start = p;
            int depth = 0;
            while (*p && !(depth == 0 && isspace((unsigned char)*p))) {
                if (*p == '[' || *p == '{' || *p == '(') {
                    depth++;
                } else if (*p == ']' || *p == '}' || *p == ')') {
                    if (--depth < 0)
                        return fail(c, KILN_EINVAL, path,
                                    "marker \"%s\": unbalanced brackets in value", keybuf);
                } else if (*p == '"' && depth > 0) {
                    const char *end = skip_quoted(p, '"');
                    if (!end)
                        return fail(c, KILN_EINVAL, path,
                                    "marker \"%s\": unterminated quoted value", keybuf);
                    p = end;
                    continue;
                }
                p++;
            }
            if (depth != 0)
                return fail(c, KILN_EINVAL, path, "marker \"%s\": unbalanced brackets in value",
                            keybuf);
            if (p == start)
                return fail(c, KILN_EINVAL, path, "marker \"%s\": missing value", keybuf);
            value = kiln_xstrndup(start, (size_t)(p - start));
        }
        if (out->len == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 8;
            out->items = kiln_xrealloc(out->items, out->cap * sizeof(*out->items));
        }
        out->items[out->len].key = kiln_xstrndup(key, kn);
        out->items[out->len].value = value;
        out->items[out->len].quoted = quoted;
        out->len++;
    }
}

static const char *const known_markers[] = {
    "required",  "default",   "description", "enum",       "minimum",  "maximum",
    "pattern",   "minLength", "maxLength",   "minItems",   "maxItems", "uniqueItems",
    "immutable", "listType",  "listMapKey",  "validation",
};

static bool repeatable(const char *key)
{
    return !strcmp(key, "listMapKey") || !strcmp(key, "validation");
}

static int parse_bool(ctx *c, const marker *m, const char *path, bool *out)
{
    if (!strcmp(m->value, "true")) {
        *out = true;
        return 0;
    }
    if (!strcmp(m->value, "false")) {
        *out = false;
        return 0;
    }
    return fail(c, KILN_EINVAL, path, "marker \"%s\" expects true or false, got \"%.64s\"", m->key,
                m->value);
}

static int parse_count(ctx *c, const marker *m, const char *path, json_int_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(m->value, &end, 10);
    if (!isdigit((unsigned char)m->value[0]) || *end || errno)
        return fail(c, KILN_EINVAL, path,
                    "marker \"%s\" expects a non-negative integer, got \"%.64s\"", m->key,
                    m->value);
    *out = (json_int_t)v;
    return 0;
}

/* A JSON number: integer text stays an integer, anything else is a real. */
static json_t *parse_number(const char *text)
{
    if (!text[0] || strspn(text, "0123456789+-.eE") != strlen(text))
        return NULL;
    char *end = NULL;
    errno = 0;
    const char *digits = text[0] == '-' ? text + 1 : text;
    if (digits[0] && strspn(digits, "0123456789") == strlen(digits)) {
        long long v = strtoll(text, &end, 10);
        if (*end || errno)
            return NULL;
        return json_integer((json_int_t)v);
    }
    double d = strtod(text, &end);
    if (*end || errno || !isfinite(d))
        return NULL;
    return json_real(d);
}

static void add_rule(json_t *s, const char *rule, const char *message)
{
    json_t *rules = json_object_get(s, "x-kubernetes-validations");
    if (!json_is_array(rules)) {
        rules = json_array();
        json_object_set_new(s, "x-kubernetes-validations", rules);
    }
    json_array_append_new(rules, json_pack("{s:s, s:s}", "rule", rule, "message", message));
}

static int apply_enum(ctx *c, json_t *s, const char *type, const marker *m, const char *path)
{
    if (!type || (strcmp(type, "string") && strcmp(type, "integer")))
        return fail(c, KILN_EINVAL, path,
                    "marker \"enum\" is only supported on string and integer fields, not %s",
                    type ? type : "untyped");
    json_t *values = json_array();
    const char *p = m->value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        char *item = NULL;
        if (n >= 2 && ((p[0] == '"' && p[n - 1] == '"') || (p[0] == '\'' && p[n - 1] == '\'')))
            item = kiln_xstrndup(p + 1, n - 2);
        else
            item = kiln_xstrndup(p, n);
        json_t *v = NULL;
        if (!item[0]) {
            fail(c, KILN_EINVAL, path, "marker \"enum\": empty value in \"%.64s\"", m->value);
        } else if (!strcmp(type, "integer")) {
            v = parse_number(item);
            if (!json_is_integer(v)) {
                json_decref(v);
                v = NULL;
                fail(c, KILN_EINVAL, path, "marker \"enum\": value \"%.64s\" is not an integer",
                     item);
            }
        } else {
            v = json_string(item);
            if (!v)
                fail(c, KILN_EINVAL, path, "marker \"enum\": value is not valid UTF-8");
        }
        if (v) {
            size_t i;
            json_t *e;
            bool dup = false;
            json_array_foreach(values, i, e) dup = dup || json_equal(e, v);
            if (dup) {
                fail(c, KILN_EINVAL, path, "marker \"enum\": duplicate value \"%.64s\"", item);
                json_decref(v);
                v = NULL;
            }
        }
        kiln_xfree(item);
        if (!v) {
            json_decref(values);
            return KILN_EINVAL;
        }
        json_array_append_new(values, v);
        if (!comma)
            break;
        p = comma + 1;
    }
    json_object_set_new(s, "enum", values);
    return 0;
}

static bool default_type_ok(const char *type, const json_t *v)
{
    if (!type)
        return true;
    if (!strcmp(type, "string"))
        return json_is_string(v);
    if (!strcmp(type, "integer"))
        return json_is_integer(v);
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "array"))
        return json_is_array(v);
    if (!strcmp(type, "object"))
        return json_is_object(v);
    return true;
}

static int apply_default(ctx *c, json_t *s, const char *type, const marker *m, const char *path)
{
    json_t *def = NULL;
    kiln_schema_errors verrs = {0};
    int rc = 0;
    if (m->quoted || (type && !strcmp(type, "string"))) {
        def = json_string(m->value);
        if (!def)
            return fail(c, KILN_EINVAL, path, "marker \"default\": value is not valid UTF-8");
    } else {
        def = json_loads(m->value, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!def)
            return fail(c, KILN_EINVAL, path, "marker \"default\": \"%.64s\" is not a valid %s",
                        m->value, type ? type : "value");
    }
    if (!default_type_ok(type, def)) {
        char *shown = show(def);
        rc = fail(c, KILN_EINVAL, path, "marker \"default\": %.64s is not of type %s", shown, type);
        kiln_xfree(shown);
        goto out;
    }
    /* The API server rejects a CRD whose defaults do not validate; say so here,
     * where the author can see which marker is wrong. */
    json_object_del(s, "default");
    if (kiln_schema_validate(def, s, "default", &verrs) != 0) {
        char *first = kiln_schema_error_string(&verrs.items[0]);
        rc = fail(c, KILN_EINVAL, path, "marker \"default\": %s", first);
        kiln_xfree(first);
        goto out;
    }
    json_object_set(s, "default", def);
out:
    kiln_schema_errors_free(&verrs);
    json_decref(def);
    return rc;
}

static bool type_is(const char *type, const char *a, const char *b)
{
    return type && (!strcmp(type, a) || (b && !strcmp(type, b)));
}

static int wrong_type(ctx *c, const char *path, const char *key, const char *what, const char *type)
{
    return fail(c, KILN_EINVAL, path, "marker \"%s\" is only supported on %s fields, not %s", key,
                what, type ? type : "untyped");
}

/* Bounds must leave room for a value: minimum <= maximum, and so on. */
static int check_order(ctx *c, const json_t *s, const char *lo, const char *hi, const char *path)
{
    const json_t *a = json_object_get(s, lo), *b = json_object_get(s, hi);
    if (!json_is_number(a) || !json_is_number(b) || json_number_value(a) <= json_number_value(b))
        return 0;
    char *x = show(a), *y = show(b);
    int rc = fail(c, KILN_EINVAL, path, "%s %s is greater than %s %s", lo, x, hi, y);
    kiln_xfree(x);
    kiln_xfree(y);
    return rc;
}

static int apply_markers(ctx *c, json_t *s, const char *text, const char *path, bool *required)
{
    markers ms = {0};
    int rc = parse_markers(c, &ms, text, path);
    const char *type = json_string_value(json_object_get(s, "type"));
    const marker *dflt = NULL;
    const char *list_type = NULL;
    bool unique = false;
    json_t *map_keys = NULL;
    if (rc)
        goto out;

    for (size_t i = 0; i < ms.len; i++) {
        const marker *m = &ms.items[i];
        bool known = false;
        for (size_t k = 0; k < sizeof(known_markers) / sizeof(*known_markers); k++)
            known = known || !strcmp(m->key, known_markers[k]);
        if (!known) {
            rc = fail(c, KILN_EINVAL, path, "unknown marker \"%.64s\"", m->key);
            continue;
        }
        for (size_t j = 0; j < i && !repeatable(m->key); j++)
            if (!strcmp(ms.items[j].key, m->key)) {
                rc = fail(c, KILN_EINVAL, path, "marker \"%s\" given more than once", m->key);
                break;
            }
    }
    if (rc)
        goto out;

    for (size_t i = 0; i < ms.len && !rc; i++) {
        const marker *m = &ms.items[i];
        const char *k = m->key;
        bool b = false;
        json_int_t n = 0;
        if (!strcmp(k, "required")) {
            rc = parse_bool(c, m, path, &b);
            *required = b;
        } else if (!strcmp(k, "default")) {
            dflt = m;
        } else if (!strcmp(k, "description")) {
            json_t *d = json_string(m->value);
            if (!d)
                rc = fail(c, KILN_EINVAL, path, "marker \"description\": not valid UTF-8");
            else
                json_object_set_new(s, "description", d);
        } else if (!strcmp(k, "enum")) {
            rc = apply_enum(c, s, type, m, path);
        } else if (!strcmp(k, "minimum") || !strcmp(k, "maximum")) {
            if (!type_is(type, "integer", "number")) {
                rc = wrong_type(c, path, k, "integer and float", type);
                break;
            }
            json_t *v = parse_number(m->value);
            if (!v)
                rc = fail(c, KILN_EINVAL, path, "marker \"%s\" expects a number, got \"%.64s\"", k,
                          m->value);
            else
                json_object_set_new(s, k, v);
        } else if (!strcmp(k, "pattern")) {
            regex_t re;
            if (!type_is(type, "string", NULL)) {
                rc = wrong_type(c, path, k, "string", type);
                break;
            }
            char why[128];
            if (kiln_schema_regcomp(&re, m->value, why, sizeof(why)) != 0) {
                rc = fail(c, KILN_EINVAL, path,
                          "marker \"pattern\": invalid regular expression "
                          "\"%.64s\": %s",
                          m->value, why);
                break;
            }
            regfree(&re);
            json_t *p = json_string(m->value);
            if (!p)
                rc = fail(c, KILN_EINVAL, path, "marker \"pattern\": not valid UTF-8");
            else
                json_object_set_new(s, "pattern", p);
        } else if (!strcmp(k, "minLength") || !strcmp(k, "maxLength")) {
            if (!type_is(type, "string", NULL)) {
                rc = wrong_type(c, path, k, "string", type);
                break;
            }
            if (!(rc = parse_count(c, m, path, &n)))
                json_object_set_new(s, k, json_integer(n));
        } else if (!strcmp(k, "minItems") || !strcmp(k, "maxItems")) {
            if (!type_is(type, "array", NULL)) {
                rc = wrong_type(c, path, k, "array", type);
                break;
            }
            if (!(rc = parse_count(c, m, path, &n)))
                json_object_set_new(s, k, json_integer(n));
        } else if (!strcmp(k, "uniqueItems")) {
            if (!type_is(type, "array", NULL)) {
                rc = wrong_type(c, path, k, "array", type);
                break;
            }
            rc = parse_bool(c, m, path, &unique);
        } else if (!strcmp(k, "immutable")) {
            if (!(rc = parse_bool(c, m, path, &b)) && b)
                add_rule(s, "self == oldSelf", "field is immutable");
        } else if (!strcmp(k, "listType")) {
            if (!type_is(type, "array", NULL)) {
                rc = wrong_type(c, path, k, "array", type);
                break;
            }
            if (strcmp(m->value, "atomic") && strcmp(m->value, "set") && strcmp(m->value, "map"))
                rc =
                    fail(c, KILN_EINVAL, path,
                         "marker \"listType\" must be atomic, set or map, got \"%.64s\"", m->value);
            else
                list_type = m->value;
        } else if (!strcmp(k, "listMapKey")) {
            if (!type_is(type, "array", NULL)) {
                rc = wrong_type(c, path, k, "array", type);
                break;
            }
            if (!map_keys)
                map_keys = json_array();
            json_array_append_new(map_keys, json_string(m->value));
        } else if (!strcmp(k, "validation")) {
            add_rule(s, m->value, "validation failed");
        }
    }
    if (rc)
        goto out;

    if (unique && list_type && strcmp(list_type, "set")) {
        rc = fail(c, KILN_EINVAL, path, "marker \"uniqueItems=true\" conflicts with listType=%s",
                  list_type);
        goto out;
    }
    if (unique && !list_type)
        list_type = "set";
    if (map_keys && (!list_type || strcmp(list_type, "map"))) {
        rc = fail(c, KILN_EINVAL, path, "marker \"listMapKey\" requires listType=map");
        goto out;
    }
    if (list_type && !strcmp(list_type, "set")) {
        /* The API server accepts sets of scalars only (objects would need
         * x-kubernetes-map-type: atomic, which SimpleSchema cannot say). */
        const char *it = json_string_value(json_object_get(json_object_get(s, "items"), "type"));
        if (!it || !strcmp(it, "object") || !strcmp(it, "array")) {
            rc = fail(c, KILN_EINVAL, path, "listType=set requires list items of a scalar type");
            goto out;
        }
    }
    if (list_type && !strcmp(list_type, "map")) {
        const json_t *items = json_object_get(s, "items");
        const json_t *props = json_object_get(items, "properties");
        const json_t *req = json_object_get(items, "required");
        size_t i;
        json_t *key;
        if (!map_keys) {
            rc = fail(c, KILN_EINVAL, path, "listType=map requires at least one listMapKey");
            goto out;
        }
        if (!type_is(json_string_value(json_object_get(items, "type")), "object", NULL)) {
            rc = fail(c, KILN_EINVAL, path, "listType=map requires list items of type object");
            goto out;
        }
        json_array_foreach(map_keys, i, key)
        {
            const char *name = json_string_value(key);
            const json_t *prop = name ? json_object_get(props, name) : NULL;
            bool is_required = false;
            size_t j;
            json_t *r;
            json_array_foreach(req, j, r) is_required = is_required || json_equal(r, key);
            if (!prop) {
                rc = fail(c, KILN_EINVAL, path,
                          "listMapKey \"%.64s\" is not a property of the list items",
                          name ? name : "");
                goto out;
            }
            /* The API server requires every key to be present on every item. */
            if (!is_required && !json_object_get(prop, "default")) {
                rc = fail(c, KILN_EINVAL, path,
                          "listMapKey \"%.64s\" must be required or have a default in the list "
                          "items",
                          name);
                goto out;
            }
        }
    }
    if (list_type)
        json_object_set_new(s, "x-kubernetes-list-type", json_string(list_type));
    if (map_keys)
        json_object_set(s, "x-kubernetes-list-map-keys", map_keys);
    if ((rc = check_order(c, s, "minimum", "maximum", path)) ||
        (rc = check_order(c, s, "minLength", "maxLength", path)) ||
        (rc = check_order(c, s, "minItems", "maxItems", path)))
        goto out;
    if (dflt)
        rc = apply_default(c, s, type, dflt, path);
out:
    json_decref(map_keys);
    markers_free(&ms);
    return rc;
}

/* --- declarations and maps ----------------------------------------------- */

static json_t *build_decl(ctx *c, const char *decl, const char *path, bool *required, int *depth)
{
    const char *bar = strchr(decl, '|');
    size_t tn = bar ? (size_t)(bar - decl) : strlen(decl);
    bool type_required = false;
    json_t *s = build_type(c, decl, tn, path, 0, depth, &type_required);
    if (!s)
        return NULL;
    *required = type_required;
    if (bar && apply_markers(c, s, bar + 1, path, required) != 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

static json_t *build_value(ctx *c, const json_t *v, const char *path, int level, bool *required,
                           int *depth)
{
    *required = false;
    if (json_is_string(v))
        return build_decl(c, json_string_value(v), path, required, depth);
    if (json_is_object(v))
        return build_map(c, v, path, level + 1, depth);
    fail(c, KILN_EINVAL, path, "expected a type declaration string or a map of fields, got %s",
         type_name(v));
    return NULL;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *build_map(ctx *c, const json_t *map, const char *path, int level, int *depth)
{
    if (too_deep(c, level + 1, path))
        return NULL;
    size_t n = json_object_size(map);
    const char **keys = kiln_xcalloc(n ? n : 1, sizeof(*keys));
    const char *k;
    json_t *v;
    size_t nk = 0;
    json_object_foreach((json_t *)map, k, v) keys[nk++] = k;
    qsort(keys, nk, sizeof(*keys), str_cmp);

    json_t *s = new_object(c);
    json_t *props = new_object(c);
    json_t *req = json_array();
    bool failed = false, any_default = false;
    int maxd = 0;
    for (size_t i = 0; i < nk; i++) {
        char *cpath = join(path, keys[i]);
        bool r = false;
        int d = 0;
        json_t *cs = NULL;
        if (!keys[i][0])
            fail(c, KILN_EINVAL, cpath, "empty field name");
        else
            cs = build_value(c, json_object_get(map, keys[i]), cpath, level, &r, &d);
        kiln_xfree(cpath);
        if (!cs) {
            failed = true;
            if (c->code == KILN_ELIMIT)
                break;
            continue;
        }
        if (r)
            json_array_append_new(req, json_string(keys[i]));
        any_default = any_default || json_object_get(cs, "default");
        maxd = d > maxd ? d : maxd;
        json_object_set_new(props, keys[i], cs);
    }
    kiln_xfree(keys);
    json_object_set_new(s, "type", json_string("object"));
    if (json_object_size(props))
        json_object_set(s, "properties", props);
    /* kro's propagation: an object defaults to {} only when that cannot
     * hide a missing required field and some field inside has a default, so
     * defaults cascade into objects the user left out. */
    if (json_array_size(req))
        json_object_set(s, "required", req);
    else if (any_default)
        json_object_set_new(s, "default", json_object());
    json_decref(props);
    json_decref(req);
    *depth = maxd + 1;
    if (failed || too_deep(c, *depth, path)) {
        json_decref(s);
        return NULL;
    }
    return s;
}

/* --- entry points -------------------------------------------------------- */

static int type_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ctype *)a)->name, ((const ctype *)b)->name);
}

static bool valid_type_name(const char *name)
{
    if (!isalpha((unsigned char)name[0]) && name[0] != '_')
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* report: say what is wrong with the types map itself (to_openapi does; field
 * is called once per status field and would repeat it). */
static void ctx_init(ctx *c, const json_t *types, const char *path, kiln_errs *errs, bool report)
{
    memset(c, 0, sizeof(*c));
    c->errs = errs;
    c->types_path = path && !strncmp(path, "spec.schema.", 12) ? "spec.schema.types" : "types";
    if (!types || json_is_null(types))
        return;
    if (!json_is_object(types)) {
        if (report)
            fail(c, KILN_EINVAL, c->types_path, "expected a map of type names, got %s",
                 type_name(types));
        return;
    }
    c->types = kiln_xcalloc(json_object_size(types) + 1, sizeof(*c->types));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)types, k, v)
    {
        static const char *const reserved[] = {"string", "integer", "boolean",
                                               "float",  "object",  "map"};
        bool bad = !valid_type_name(k);
        for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved) && !bad; i++)
            bad = !strcmp(k, reserved[i]);
        if (bad && !report)
            continue;
        if (bad) {
            char *p = join(c->types_path, k);
            fail(c, KILN_EINVAL, p,
                 "invalid type name \"%.64s\": use letters, digits and _, not a built-in type", k);
            kiln_xfree(p);
            continue;
        }
        c->types[c->ntypes].name = k;
        c->types[c->ntypes].body = v;
        c->ntypes++;
    }
    qsort(c->types, c->ntypes, sizeof(*c->types), type_entry_cmp);
}

static void ctx_free(ctx *c)
{
    for (size_t i = 0; i < c->ntypes; i++)
        json_decref(c->types[i].schema);
    kiln_xfree(c->types);
}

int kiln_simpleschema_to_openapi(json_t **out, const json_t *spec, const json_t *types,
                                 const char *path, kiln_errs *errs)
{
    ctx c;
    json_t *s = NULL;
    int depth = 0;
    *out = NULL;
    ctx_init(&c, types, path, errs, true);
    /* Every type is checked, used or not, so a typo in an unused one shows. */
    for (size_t i = 0; i < c.ntypes && c.code != KILN_ELIMIT; i++)
        resolve_type(&c, &c.types[i]);
    if (!spec || json_is_null(spec)) {
        s = json_pack("{s:s}", "type", "object");
    } else if (!json_is_object(spec)) {
        fail(&c, KILN_EINVAL, path, "expected a map of fields, got %s", type_name(spec));
    } else if (c.code != KILN_ELIMIT) {
        s = build_map(&c, spec, path, 0, &depth);
    }
    if (!s && !c.code)
        c.code = KILN_EINVAL;
    if (c.code) {
        json_decref(s);
        s = NULL;
    }
    *out = s;
    ctx_free(&c);
    return c.code;
}

int kiln_simpleschema_field(json_t **out, bool *required, const char *decl, const json_t *types,
                            const char *path, kiln_errs *errs)
{
    ctx c;
    bool r = false;
    int depth = 0;
    json_t *s = NULL;
    *out = NULL;
    if (required)
        *required = false;
    ctx_init(&c, types, path, errs, false);
    if (!decl)
        fail(&c, KILN_EINVAL, path, "missing type");
    else
        s = build_decl(&c, decl, path, &r, &depth);
    if (!s && !c.code)
        c.code = KILN_EINVAL;
    if (c.code) {
        json_decref(s);
        s = NULL;
    } else if (required) {
        *required = r;
    }
    *out = s;
    ctx_free(&c);
    return c.code;
}
