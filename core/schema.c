/* core/schema.c: OpenAPI v3 structural schemas applied to JSON values, with
 * the API server's semantics and message shapes (see core/schema.h).
 *
 * Message shapes follow k8s.io/apimachinery/pkg/util/validation/field (the
 * "<field>: <type>: <value>: <detail>" body) and the kube-openapi details that
 * apiextensions-apiserver copies into it ("<path> in body must be of type
 * integer: \"string\""). Values print as Go's %v / %q would for JSON-decoded
 * data, except objects and arrays, which print as compact JSON (Go would print
 * its own map syntax).
 */
#include "core/schema.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/utf8.h"

void kiln_schema_errors_free(kiln_schema_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->len; i++) {
        kiln_xfree(errs->items[i].field);
        kiln_xfree(errs->items[i].message);
    }
    kiln_xfree(errs->items);
    errs->items = NULL;
    errs->len = errs->cap = 0;
}

char *kiln_schema_error_string(const kiln_schema_error *e)
{
    if (!e->field[0])
        return kiln_xstrdup(e->message);
    return kiln_xasprintf("%s: %s", e->field, e->message);
}

char *kiln_schema_errors_format(const kiln_schema_errors *errs, const char *kind, const char *name)
{
    /* field.ErrorList.ToAggregate drops repeated messages; an aggregate of
     * one prints bare, of several in brackets. */
    char **seen = kiln_xcalloc(errs->len ? errs->len : 1, sizeof(*seen));
    size_t nseen = 0;
    for (size_t i = 0; i < errs->len; i++) {
        char *s = kiln_schema_error_string(&errs->items[i]);
        bool dup = false;
        for (size_t j = 0; j < nseen && !dup; j++)
            dup = strcmp(seen[j], s) == 0;
        if (dup)
            kiln_xfree(s);
        else
            seen[nseen++] = s;
    }
    size_t total = 0;
    for (size_t i = 0; i < nseen; i++)
        total += strlen(seen[i]) + 2;
    char *joined = kiln_xmalloc(total + 3);
    char *p = joined;
    if (nseen > 1)
        *p++ = '[';
    for (size_t i = 0; i < nseen; i++) {
        if (i) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        size_t n = strlen(seen[i]);
        memcpy(p, seen[i], n);
        p += n;
        kiln_xfree(seen[i]);
    }
    if (nseen > 1)
        *p++ = ']';
    *p = '\0';
    kiln_xfree(seen);
    char *msg =
        kiln_xasprintf("%s \"%s\" is invalid: %s", kind ? kind : "", name ? name : "", joined);
    kiln_xfree(joined);
    return msg;
}

/* --- value printing ------------------------------------------------------ */

/* Go's %v of a float64: the shortest text that reads back exactly, in
 * exponent form only below 1e-4 or from 1e21 up. */
static void format_real(char *out, size_t n, double d)
{
    if (isnan(d) || isinf(d)) {
        snprintf(out, n, "%s", isnan(d) ? "NaN" : (d > 0 ? "+Inf" : "-Inf"));
        return;
    }
    if (d == floor(d) && fabs(d) < 1e21) {
        snprintf(out, n, "%.0f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
}

/* A bound from the schema (integer or real) printed as Go prints a float64. */
static void format_bound(char *out, size_t n, const json_t *v)
{
    format_real(out, n, json_number_value(v));
}

/* The value as field.Error prints a BadValue: strings quoted, numbers and
 * booleans bare, null as "null". New string. */
static char *format_value(const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        return kiln_xasprintf("%lld", (long long)json_integer_value(v));
    case JSON_REAL:
        format_real(num, sizeof(num), json_real_value(v));
        return kiln_xstrdup(num);
    case JSON_TRUE:
        return kiln_xstrdup("true");
    case JSON_FALSE:
        return kiln_xstrdup("false");
    case JSON_NULL:
        return kiln_xstrdup("\"null\"");
    default: {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
        char *r = kiln_xstrdup(s ? s : "");
        free(s);
        return r;
    }
    }
}

/* A Go-quoted string (strconv.Quote), close enough: JSON string escapes. */
static char *quote(const char *s)
{
    json_t *j = json_string(s);
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    char *r = kiln_xstrdup(d ? d : "\"\"");
    free(d);
    json_decref(j);
    return r;
}

/* --- patterns ------------------------------------------------------------ */

/* The translation of one RE2 pattern into POSIX ERE text. */
typedef struct retrans {
    char *out;
    size_t n;
    bool in_class;
    size_t class_start;                          /* first byte after "[" or "[^" */
    bool class_bracket, class_dash, class_caret; /* literals placed at the class edges */
} retrans;

static void put(retrans *t, const char *s)
{
    size_t len = strlen(s);
    memcpy(t->out + t->n, s, len);
    t->n += len;
}

/* One literal character c, wherever it stands. */
static void put_literal(retrans *t, char c)
{
    if (t->in_class) {
        /* In a POSIX bracket ] is literal only first, - only last, ^ only
         * not first; a backslash is always literal. */
        if (c == ']') {
            if (!t->class_bracket) {
                memmove(t->out + t->class_start + 1, t->out + t->class_start,
                        t->n - t->class_start);
                t->out[t->class_start] = ']';
                t->n++;
                t->class_bracket = true;
            }
        } else if (c == '-') {
            t->class_dash = true;
        } else if (c == '^') {
            t->class_caret = true;
        } else {
            t->out[t->n++] = c;
        }
        return;
    }
    if (strchr(".[]()*+?{}|^$\\", c))
        t->out[t->n++] = '\\';
    t->out[t->n++] = c;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Translates the escape at *pp (pointing at the backslash), advancing *pp to
 * its last byte. Returns the unsupported letter, or 0. */
static char translate_escape(retrans *t, const char **pp)
{
    const char *p = *pp;
    char e = p[1];
    const char *cls = NULL;
    *pp = p + 1;
    switch (e) {
    case 'd':
        cls = t->in_class ? "0-9" : "[0-9]";
        break;
    case 's':
        cls = t->in_class ? "[:space:]" : "[[:space:]]";
        break;
    case 'w':
        cls = t->in_class ? "[:alnum:]_" : "[[:alnum:]_]";
        break;
    case 'D':
        cls = t->in_class ? NULL : "[^0-9]";
        break;
    case 'S':
        cls = t->in_class ? NULL : "[^[:space:]]";
        break;
    case 'W':
        cls = t->in_class ? NULL : "[^[:alnum:]_]";
        break;
    case 'b':
    case 'B':
        /* Word boundaries mean the same in GNU regex. */
        if (t->in_class)
            return e;
        t->out[t->n++] = '\\';
        t->out[t->n++] = e;
        return 0;
    case 't':
        put_literal(t, '\t');
        return 0;
    case 'n':
        put_literal(t, '\n');
        return 0;
    case 'r':
        put_literal(t, '\r');
        return 0;
    case 'f':
        put_literal(t, '\f');
        return 0;
    case 'v':
        put_literal(t, '\v');
        return 0;
    case 'a':
        put_literal(t, '\a');
        return 0;
    case 'x': {
        int hi = hex_digit(p[2]), lo = hi >= 0 ? hex_digit(p[3]) : -1;
        if (hi < 0 || lo < 0 || hi * 16 + lo == 0 || hi * 16 + lo > 0x7f)
            return e;
        put_literal(t, (char)(hi * 16 + lo));
        *pp = p + 3;
        return 0;
    }
    default:
        /* Any other letter or digit is RE2-only (\A \z \pL \Q \1 ...). */
        if (isalnum((unsigned char)e))
            return e;
        put_literal(t, e);
        return 0;
    }
    if (!cls)
        return e; /* a negated class inside a bracket has no POSIX spelling */
    put(t, cls);
    return 0;
}

/* RE2, which Kubernetes checks patterns with, refuses nested repetition
 * ("a**") and repeat counts over 1000; glibc's regcomp takes exponential time
 * or stack on exactly those, so they are refused here first. The size bound
 * caps what counted repetitions expand to: ((a{1000}){1000}) would compile a
 * million copies. Returns 0, or KILN_EINVAL with the reason in why. */
#define PATTERN_MAX_DEPTH 64
#define PATTERN_MAX_SIZE 100000

static int pattern_check(const char *p, char *why, size_t why_len)
{
    size_t frame[PATTERN_MAX_DEPTH + 1] = {0};
    int depth = 0;
    size_t atom = 0;    /* size of the last atom, for a following {m,n} */
    int quantified = 0; /* operators since the last atom: 1 is fine, "?" may follow once */
    const char *reason = NULL;
    for (; *p && !reason; p++) {
        size_t add = 0;
        if (*p == '\\' && p[1]) {
            p++;
            add = 1;
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            for (; *q && *q != ']'; q++)
                if (q[0] == '[' && q[1] == ':') {
                    const char *end = strstr(q + 2, ":]");
                    if (end)
                        q = end + 1;
                }
            if (!*q)
                break; /* regcomp reports the unbalanced bracket */
            p = q;
            add = 1;
        } else if (*p == '(') {
            if (depth == PATTERN_MAX_DEPTH) {
                reason = "groups nested too deeply";
                break;
            }
            frame[++depth] = 0;
            quantified = 0;
            atom = 0;
            continue;
        } else if (*p == ')' && depth > 0) {
            add = frame[depth--];
            add = add ? add : 1;
        } else if (*p == '|') {
            quantified = 0;
            atom = 0;
            continue;
        } else if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
            size_t max = 0;
            if (*p == '{') {
                char *end = NULL;
                unsigned long lo = strtoul(p + 1, &end, 10), hi = lo;
                if (end == p + 1 || (*end != ',' && *end != '}')) {
                    add = 1; /* a literal brace */
                    goto atom;
                }
                if (*end == ',') {
                    const char *h = end + 1;
                    hi = *h == '}' ? lo : strtoul(h, &end, 10);
                    if (*h == '}')
                        end = (char *)h;
                }
                if (*end != '}') {
                    add = 1;
                    goto atom;
                }
                if (lo > 1000 || hi > 1000) {
                    reason = "repeat count over 1000";
                    break;
                }
                max = hi > lo ? hi : lo;
                p = end;
            }
            if (quantified && !(quantified == 1 && *p == '?')) {
                reason = "invalid nested repetition operator";
                break;
            }
            quantified++;
            if (max > 1) {
                frame[depth] += atom * (max - 1);
                if (frame[depth] > PATTERN_MAX_SIZE)
                    reason = "pattern too large once its repetitions are expanded";
            }
            continue;
        } else {
            add = 1;
        }
    atom:
        frame[depth] += add;
        if (frame[depth] > PATTERN_MAX_SIZE)
            reason = "pattern too large once its repetitions are expanded";
        atom = add;
        quantified = 0;
    }
    if (!reason)
        return 0;
    if (why && why_len)
        snprintf(why, why_len, "%s", reason);
    return KILN_EINVAL;
}

int kiln_schema_regcomp(regex_t *re, const char *pattern, char *why, size_t why_len)
{
    if (pattern_check(pattern, why, why_len) < 0)
        return KILN_EINVAL;
    int flags = REG_EXTENDED | REG_NOSUB;
    const char *p = pattern;
    if (!strncmp(p, "(?i)", 4)) {
        flags |= REG_ICASE;
        p += 4;
    }
    /* Each byte grows to at most 14 ("\W" -> "[^[:alnum:]_]"). */
    retrans t = {.out = kiln_xmalloc(strlen(p) * 14 + 1)};
    for (; *p; p++) {
        if (*p == '\\' && p[1]) {
            char bad = translate_escape(&t, &p);
            if (bad) {
                if (why && why_len)
                    snprintf(why, why_len, "unsupported escape \\%c", bad);
                kiln_xfree(t.out);
                return KILN_EINVAL;
            }
            continue;
        }
        if (!t.in_class && *p == '[') {
            t.in_class = true;
            t.class_bracket = t.class_dash = t.class_caret = false;
            t.out[t.n++] = *p;
            if (p[1] == '^')
                t.out[t.n++] = *++p;
            t.class_start = t.n;
            /* "[]..." and "[^]..." start with a literal ]. */
            if (p[1] == ']') {
                t.out[t.n++] = *++p;
                t.class_bracket = true;
            }
            continue;
        }
        if (t.in_class && *p == '[' && p[1] == ':') {
            const char *end = strstr(p + 2, ":]");
            if (end) {
                memcpy(t.out + t.n, p, (size_t)(end + 2 - p));
                t.n += (size_t)(end + 2 - p);
                p = end + 1;
                continue;
            }
        }
        if (t.in_class && *p == ']') {
            t.in_class = false;
            if (t.class_caret)
                t.out[t.n++] = '^';
            if (t.class_dash)
                t.out[t.n++] = '-';
        }
        if (!t.in_class && p[0] == '(' && p[1] == '?' && p[2] == ':') {
            t.out[t.n++] = '(';
            p += 2;
            continue;
        }
        t.out[t.n++] = *p;
    }
    t.out[t.n] = '\0';
    int rc = regcomp(re, t.out, flags);
    kiln_xfree(t.out);
    if (rc != 0) {
        if (why && why_len)
            regerror(rc, re, why, why_len);
        return KILN_EINVAL;
    }
    return 0;
}

/* --- validation ---------------------------------------------------------- */

typedef struct vctx {
    kiln_schema_errors *out;
    size_t count;
    char *path; /* growable; the current field path */
    size_t len;
    size_t cap;
} vctx;

/* Appends ".key" (just "key" at the root), or "[index]" when key is NULL. */
static void path_push(vctx *c, const char *key, size_t index)
{
    char tmp[32];
    const char *seg = key;
    size_t extra;
    if (!key) {
        snprintf(tmp, sizeof(tmp), "[%zu]", index);
        seg = tmp;
    }
    extra = strlen(seg) + 1;
    if (c->len + extra + 1 > c->cap) {
        c->cap = (c->len + extra + 1) * 2;
        c->path = kiln_xrealloc(c->path, c->cap);
    }
    if (key && c->len > 0)
        c->path[c->len++] = '.';
    memcpy(c->path + c->len, seg, strlen(seg));
    c->len += strlen(seg);
    c->path[c->len] = '\0';
}

static void add_error(vctx *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(vctx *c, const char *reason, const char *fmt, ...)
{
    c->count++;
    if (!c->out)
        return;
    kiln_schema_errors *l = c->out;
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = kiln_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = kiln_xmalloc(n > 0 ? (size_t)n + 1 : 1);
    va_start(ap, fmt);
    vsnprintf(msg, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
    va_end(ap);
    l->items[l->len].field = kiln_xstrdup(c->path);
    l->items[l->len].reason = reason;
    l->items[l->len].message = msg;
    l->len++;
}

/* "Invalid value: <value>: <path> in body <detail>" */
static void add_invalid(vctx *c, const json_t *value, const char *detail_fmt, const char *arg)
{
    char *v = format_value(value);
    int n = snprintf(NULL, 0, detail_fmt, arg);
    char *detail = kiln_xmalloc(n > 0 ? (size_t)n + 1 : 1);
    snprintf(detail, n > 0 ? (size_t)n + 1 : 1, detail_fmt, arg);
    add_error(c, KILN_SCHEMA_INVALID, "Invalid value: %s: %s in body %s", v, c->path, detail);
    kiln_xfree(detail);
    kiln_xfree(v);
}

static bool flag(const json_t *schema, const char *key)
{
    return json_is_true(json_object_get(schema, key));
}

static bool type_matches(const char *type, const json_t *v)
{
    if (!strcmp(type, "object"))
        return json_is_object(v);
    if (!strcmp(type, "array"))
        return json_is_array(v);
    if (!strcmp(type, "string"))
        return json_is_string(v);
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "integer")) {
        /* kube-openapi accepts a float that is a JSON integer (1.0). */
        if (json_is_integer(v))
            return true;
        if (json_is_real(v)) {
            double d = json_real_value(v);
            return d == floor(d) && fabs(d) < 9.007199254740992e15;
        }
        return false;
    }
    return true; /* an unknown type name: structural checks reject it elsewhere */
}

/* Canonical text of an item, for duplicate detection. New string. */
static char *canonical(const json_t *v)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    char *r = kiln_xstrdup(s ? s : "");
    free(s);
    return r;
}

typedef struct keyed {
    char *key;
    size_t index;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    if (r)
        return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Sets dup[i] for every item equal (by key) to an earlier one. Sorting keeps
 * this O(n log n) for lists sized by outside input. */
static void find_duplicates(bool *dup, keyed *keys, size_t n)
{
    qsort(keys, n, sizeof(*keys), keyed_cmp);
    for (size_t i = 1; i < n; i++)
        if (keys[i].key && keys[i - 1].key && !strcmp(keys[i].key, keys[i - 1].key))
            dup[keys[i].index] = true;
}

/* The list-map key of an item as Go prints map[string]interface{} with %#v. */
static char *map_key_text(const json_t *item, const json_t *keys)
{
    size_t total = 32;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const json_t *v = json_object_get(item, json_string_value(k) ? json_string_value(k) : "");
        char *s = v ? canonical(v) : kiln_xstrdup("");
        total += strlen(s) + strlen(json_string_value(k) ? json_string_value(k) : "") + 8;
        kiln_xfree(s);
    }
    char *out = kiln_xmalloc(total);
    size_t len = (size_t)snprintf(out, total, "map[string]interface {}{");
    bool first = true;
    json_array_foreach(keys, i, k)
    {
        const char *name = json_string_value(k);
        const json_t *v = name ? json_object_get(item, name) : NULL;
        if (!v)
            continue;
        char *s = canonical(v);
        len += (size_t)snprintf(out + len, total - len, "%s\"%s\":%s", first ? "" : ", ", name, s);
        kiln_xfree(s);
        first = false;
    }
    snprintf(out + len, total - len, "}");
    return out;
}

static void validate(vctx *c, const json_t *v, const json_t *s);

static void validate_list_type(vctx *c, const json_t *v, const json_t *s)
{
    const char *lt = json_string_value(json_object_get(s, "x-kubernetes-list-type"));
    const json_t *map_keys = json_object_get(s, "x-kubernetes-list-map-keys");
    bool is_set = lt && !strcmp(lt, "set");
    bool is_map = lt && !strcmp(lt, "map") && json_is_array(map_keys);
    bool unique = flag(s, "uniqueItems");
    size_t n = json_array_size(v);
    if ((!is_set && !is_map && !unique) || n < 2)
        return;
    keyed *keys = kiln_xcalloc(n, sizeof(*keys));
    bool *dup = kiln_xcalloc(n, sizeof(*dup));
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        keys[i].index = i;
        if (is_map) {
            /* Items that are not objects are type errors, reported by items. */
            if (json_is_object(item))
                keys[i].key = map_key_text(item, map_keys);
        } else {
            keys[i].key = canonical(item);
        }
    }
    find_duplicates(dup, keys, n);
    if (unique && !is_set && !is_map) {
        bool any = false;
        for (size_t i = 0; i < n && !any; i++)
            any = dup[i];
        if (any)
            add_error(c, KILN_SCHEMA_INVALID,
                      "Invalid value: \"\": %s in body shouldn't contain duplicates", c->path);
    } else {
        size_t saved = c->len;
        for (size_t i = 0; i < n; i++) {
            if (!dup[i])
                continue;
            path_push(c, NULL, i);
            char *text = is_map ? map_key_text(json_array_get(v, i), map_keys)
                                : format_value(json_array_get(v, i));
            add_error(c, KILN_SCHEMA_DUPLICATE, "Duplicate value: %s", text);
            kiln_xfree(text);
            c->len = saved;
            c->path[saved] = '\0';
        }
    }
    for (size_t i = 0; i < n; i++)
        kiln_xfree(keys[i].key);
    kiln_xfree(keys);
    kiln_xfree(dup);
}

static void validate_number(vctx *c, const json_t *v, const json_t *s)
{
    double d = json_number_value(v);
    char b[64];
    const json_t *min = json_object_get(s, "minimum");
    const json_t *max = json_object_get(s, "maximum");
    const json_t *mult = json_object_get(s, "multipleOf");
    if (json_is_number(min)) {
        bool excl = flag(s, "exclusiveMinimum");
        double m = json_number_value(min);
        if (excl ? d <= m : d < m) {
            format_bound(b, sizeof(b), min);
            add_invalid(
                c, v, excl ? "should be greater than %s" : "should be greater than or equal to %s",
                b);
        }
    }
    if (json_is_number(max)) {
        bool excl = flag(s, "exclusiveMaximum");
        double m = json_number_value(max);
        if (excl ? d >= m : d > m) {
            format_bound(b, sizeof(b), max);
            add_invalid(c, v,
                        excl ? "should be less than %s" : "should be less than or equal to %s", b);
        }
    }
    if (json_is_number(mult) && json_number_value(mult) > 0) {
        double q = d / json_number_value(mult);
        if (q != floor(q)) {
            format_bound(b, sizeof(b), mult);
            add_invalid(c, v, "should be a multiple of %s", b);
        }
    }
}

static void validate_string(vctx *c, const json_t *v, const json_t *s)
{
    const char *str = json_string_value(v);
    size_t runes = kiln_utf8_count(str);
    const json_t *minl = json_object_get(s, "minLength");
    const json_t *maxl = json_object_get(s, "maxLength");
    const json_t *pat = json_object_get(s, "pattern");
    char b[32];
    if (json_is_integer(maxl) && (json_int_t)runes > json_integer_value(maxl))
        add_error(c, KILN_SCHEMA_TOO_LONG, "Too long: may not be longer than %lld",
                  (long long)json_integer_value(maxl));
    if (json_is_integer(minl) && (json_int_t)runes < json_integer_value(minl)) {
        snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(minl));
        add_invalid(c, v, "should be at least %s chars long", b);
    }
    if (json_is_string(pat)) {
        regex_t re;
        /* A pattern kiln cannot compile (RE2-only syntax) is not enforced:
         * rejecting every value would be worse than checking none. */
        if (kiln_schema_regcomp(&re, json_string_value(pat), NULL, 0) == 0) {
            if (regexec(&re, str, 0, NULL, 0) != 0) {
                char *detail = kiln_xasprintf("should match '%s'", json_string_value(pat));
                add_invalid(c, v, "%s", detail);
                kiln_xfree(detail);
            }
            regfree(&re);
        }
    }
}

static void validate_enum(vctx *c, const json_t *v, const json_t *s)
{
    const json_t *en = json_object_get(s, "enum");
    if (!json_is_array(en))
        return;
    size_t i;
    const json_t *e;
    json_array_foreach(en, i, e)
    {
        if (json_equal((json_t *)v, (json_t *)e))
            return;
    }
    /* field.NotSupported quotes every supported value; non-strings as JSON. */
    size_t total = 1;
    char **parts = kiln_xcalloc(json_array_size(en) + 1, sizeof(*parts));
    json_array_foreach(en, i, e)
    {
        char *text = json_is_string(e) ? kiln_xstrdup(json_string_value(e)) : canonical(e);
        parts[i] = quote(text);
        kiln_xfree(text);
        total += strlen(parts[i]) + 2;
    }
    char *list = kiln_xmalloc(total);
    list[0] = '\0';
    size_t len = 0;
    for (i = 0; i < json_array_size(en); i++) {
        len += (size_t)snprintf(list + len, total - len, "%s%s", i ? ", " : "", parts[i]);
        kiln_xfree(parts[i]);
    }
    kiln_xfree(parts);
    char *val = format_value(v);
    add_error(c, KILN_SCHEMA_NOT_SUPPORTED, "Unsupported value: %s: supported values: %s", val,
              list);
    kiln_xfree(val);
    kiln_xfree(list);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void validate_object(vctx *c, const json_t *v, const json_t *s)
{
    const json_t *props = json_object_get(s, "properties");
    const json_t *addl = json_object_get(s, "additionalProperties");
    const json_t *req = json_object_get(s, "required");
    size_t saved = c->len;
    size_t i;
    const json_t *r;

    json_array_foreach(req, i, r)
    {
        const char *name = json_string_value(r);
        if (!name || json_object_get(v, name))
            continue;
        path_push(c, name, 0);
        add_error(c, KILN_SCHEMA_REQUIRED, "Required value");
        c->len = saved;
        c->path[saved] = '\0';
    }
    if (flag(s, "x-kubernetes-embedded-resource")) {
        static const char *const must[] = {"apiVersion", "kind"};
        for (i = 0; i < 2; i++) {
            const char *got = json_string_value(json_object_get(v, must[i]));
            if (got && got[0])
                continue;
            path_push(c, must[i], 0);
            add_error(c, KILN_SCHEMA_REQUIRED, "Required value: must not be empty");
            c->len = saved;
            c->path[saved] = '\0';
        }
    }
    size_t n = json_object_size(v);
    const json_t *minp = json_object_get(s, "minProperties");
    const json_t *maxp = json_object_get(s, "maxProperties");
    if (json_is_integer(maxp) && (json_int_t)n > json_integer_value(maxp))
        add_error(c, KILN_SCHEMA_TOO_MANY, "Too many: %zu: must have at most %lld items", n,
                  (long long)json_integer_value(maxp));
    if (json_is_integer(minp) && (json_int_t)n < json_integer_value(minp)) {
        char b[32];
        snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(minp));
        json_t *count = json_integer((json_int_t)n);
        add_invalid(c, count, "should have at least %s properties", b);
        json_decref(count);
    }

    const char **keys = kiln_xcalloc(n ? n : 1, sizeof(*keys));
    const char *k;
    json_t *child;
    size_t nk = 0;
    json_object_foreach((json_t *)v, k, child) keys[nk++] = k;
    qsort(keys, nk, sizeof(*keys), key_cmp);
    for (i = 0; i < nk; i++) {
        const json_t *cs = json_object_get(props, keys[i]);
        child = json_object_get(v, keys[i]);
        if (!cs && json_is_object(addl))
            cs = addl;
        if (!cs && json_is_false(addl) && json_is_object(props)) {
            add_error(c, KILN_SCHEMA_INVALID,
                      "Invalid value: \"\": %s%s%s in body is a forbidden property", c->path,
                      c->len ? "." : "", keys[i]);
            continue;
        }
        if (!cs)
            continue;
        path_push(c, keys[i], 0);
        validate(c, child, cs);
        c->len = saved;
        c->path[saved] = '\0';
    }
    kiln_xfree(keys);
}

static void validate_array(vctx *c, const json_t *v, const json_t *s)
{
    size_t n = json_array_size(v);
    const json_t *mini = json_object_get(s, "minItems");
    const json_t *maxi = json_object_get(s, "maxItems");
    const json_t *items = json_object_get(s, "items");
    if (json_is_integer(maxi) && (json_int_t)n > json_integer_value(maxi))
        add_error(c, KILN_SCHEMA_TOO_MANY, "Too many: %zu: must have at most %lld items", n,
                  (long long)json_integer_value(maxi));
    if (json_is_integer(mini) && (json_int_t)n < json_integer_value(mini)) {
        char b[32];
        snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(mini));
        json_t *count = json_integer((json_int_t)n);
        add_invalid(c, count, "should have at least %s items", b);
        json_decref(count);
    }
    validate_list_type(c, v, s);
    if (!json_is_object(items))
        return;
    size_t saved = c->len;
    for (size_t i = 0; i < n; i++) {
        path_push(c, NULL, i);
        validate(c, json_array_get(v, i), items);
        c->len = saved;
        c->path[saved] = '\0';
    }
}

static void validate(vctx *c, const json_t *v, const json_t *s)
{
    if (!json_is_object(s))
        return;
    if (json_is_null(v) && flag(s, "nullable"))
        return;
    const char *type = json_string_value(json_object_get(s, "type"));
    if (flag(s, "x-kubernetes-int-or-string")) {
        if (!json_is_string(v) && !type_matches("integer", v)) {
            add_error(c, KILN_SCHEMA_TYPE_INVALID,
                      "Invalid value: \"%s\": %s in body must be of type integer,string: \"%s\"",
                      kiln_json_type_name(v), c->path, kiln_json_type_name(v));
            return;
        }
    } else if (type && type[0] && !type_matches(type, v)) {
        add_error(c, KILN_SCHEMA_TYPE_INVALID,
                  "Invalid value: \"%s\": %s in body must be of type %s: \"%s\"",
                  kiln_json_type_name(v), c->path, type, kiln_json_type_name(v));
        return;
    }
    validate_enum(c, v, s);
    if (json_is_number(v))
        validate_number(c, v, s);
    else if (json_is_string(v))
        validate_string(c, v, s);
    else if (json_is_array(v))
        validate_array(c, v, s);
    else if (json_is_object(v))
        validate_object(c, v, s);
}

int kiln_schema_validate(const json_t *value, const json_t *schema, const char *root_path,
                         kiln_schema_errors *out)
{
    vctx c = {.out = out};
    const char *root = root_path ? root_path : "";
    c.len = strlen(root);
    c.cap = c.len + 64;
    c.path = kiln_xmalloc(c.cap);
    memcpy(c.path, root, c.len + 1);
    validate(&c, value, schema);
    kiln_xfree(c.path);
    return c.count ? KILN_EINVAL : 0;
}

/* --- defaulting ---------------------------------------------------------- */

static void apply_default(json_t *v, const json_t *s)
{
    if (!json_is_object(s))
        return;
    const json_t *props = json_object_get(s, "properties");
    const json_t *addl = json_object_get(s, "additionalProperties");
    if (json_is_object(v)) {
        const char *k;
        json_t *ps;
        void *tmp;
        json_object_foreach((json_t *)props, k, ps)
        {
            const json_t *def = json_object_get(ps, "default");
            json_t *cur = json_object_get(v, k);
            if (!def)
                continue;
            if (!cur || (json_is_null(cur) && !flag(ps, "nullable")))
                json_object_set_new(v, k, json_deep_copy(def));
        }
        json_t *child;
        json_object_foreach_safe(v, tmp, k, child)
        {
            const json_t *cs = json_object_get(props, k);
            if (!cs && json_is_object(addl))
                cs = addl;
            if (!cs)
                continue;
            /* PruneNonNullableNullsWithoutDefaults: a null the schema does
             * not allow and cannot default is dropped, not rejected. */
            if (json_is_null(child) && !flag(cs, "nullable")) {
                json_object_del(v, k);
                continue;
            }
            apply_default(child, cs);
        }
    } else if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items");
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) apply_default(item, items);
    }
}

void kiln_schema_default(json_t *value, const json_t *schema)
{
    apply_default(value, schema);
}

/* --- pruning ------------------------------------------------------------- */

static void prune(json_t *v, const json_t *s, bool embedded)
{
    if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items");
        size_t i;
        json_t *item;
        if (!json_is_object(items))
            return;
        json_array_foreach(v, i, item)
            prune(item, items, flag(items, "x-kubernetes-embedded-resource"));
        return;
    }
    if (!json_is_object(v) || !json_is_object(s))
        return;
    const json_t *props = json_object_get(s, "properties");
    const json_t *addl = json_object_get(s, "additionalProperties");
    bool preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    const char *k;
    json_t *child;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, child)
    {
        /* An embedded object keeps its type identity and metadata as-is. */
        if (embedded &&
            (((!strcmp(k, "apiVersion") || !strcmp(k, "kind")) && json_is_string(child)) ||
             (!strcmp(k, "metadata") && json_is_object(child))))
            continue;
        const json_t *cs = json_object_get(props, k);
        if (!cs && json_is_object(addl))
            cs = addl;
        if (cs) {
            prune(child, cs, flag(cs, "x-kubernetes-embedded-resource"));
            continue;
        }
        if (preserve || json_is_true(addl))
            continue;
        json_object_del(v, k);
    }
}

void kiln_schema_prune(json_t *value, const json_t *schema, bool resource_root)
{
    prune(value, schema, resource_root || flag(schema, "x-kubernetes-embedded-resource"));
}
