/* lua/value.c: JSON (jansson) <-> Lua values.
 *
 * JSON integers become Lua integers and floats stay floats, so 2 and 2.0 make
 * the round trip unchanged. Empty arrays and objects carry a marker metatable
 * (the same ones array() and object() set), because an empty Lua table alone
 * cannot say which it was. JSON null inside a container becomes json.null, a
 * light userdata, so arrays never have holes; at the top it is nil.
 *
 * Lua -> JSON never raises: it only uses raw, non-allocating API calls, so it
 * may hold malloc'd memory while it walks the tables.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "lua/internal.h"

char kiln_lua__null_key;
char kiln_lua__array_mt_key;
char kiln_lua__object_mt_key;

int kiln_lua__marker(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    int m = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kiln_lua__array_mt_key);
    if (lua_rawequal(L, -1, -2)) {
        m = 1;
    } else {
        lua_pop(L, 1);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &kiln_lua__object_mt_key);
        if (lua_rawequal(L, -1, -2))
            m = 2;
    }
    lua_pop(L, 2);
    return m;
}

void kiln_lua__mark(lua_State *L, int idx, bool array)
{
    idx = lua_absindex(L, idx);
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        if (kiln_lua__marker(L, idx) == 0)
            luaL_error(L, "%s(): the table already has a metatable", array ? "array" : "object");
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, array ? &kiln_lua__array_mt_key : &kiln_lua__object_mt_key);
    lua_setmetatable(L, idx);
}

/* ---- JSON -> Lua ---- */

static void push_value(lua_State *L, kiln_lua *K, const json_t *v, size_t depth, size_t *items,
                       bool nested)
{
    if (depth > K->limits.max_depth)
        kiln_lua__limit_error(L, "value nested deeper than %zu levels", K->limits.max_depth);
    luaL_checkstack(L, 4, "value too deep");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        *items += n;
        if (*items > K->limits.max_items)
            kiln_lua__limit_error(L, "value has more than %zu items", K->limits.max_items);
        lua_createtable(L, 0, (int)n);
        const char *key;
        size_t klen;
        json_t *child;
        json_object_keylen_foreach((json_t *)v, key, klen, child)
        {
            lua_pushlstring(L, key, klen);
            push_value(L, K, child, depth + 1, items, true);
            lua_rawset(L, -3);
        }
        if (n == 0)
            kiln_lua__mark(L, -1, false);
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        *items += n;
        if (*items > K->limits.max_items)
            kiln_lua__limit_error(L, "value has more than %zu items", K->limits.max_items);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_value(L, K, json_array_get(v, i), depth + 1, items, true);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        if (n == 0)
            kiln_lua__mark(L, -1, true);
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    case JSON_NULL:
        if (nested)
            lua_pushlightuserdata(L, KILN_LUA_NULL);
        else
            lua_pushnil(L);
        break;
    }
}

void kiln_lua__push_json(lua_State *L, const json_t *v)
{
    size_t items = 0;
    if (v == NULL)
        lua_pushnil(L);
    else
        push_value(L, kiln_lua__from(L), v, 1, &items, false);
}

/* ---- Lua -> JSON ---- */

/* The error path is only formatted when an error is reported: keys are
 * remembered as frames on the way down, which costs nothing per field. */
#define PATH_FRAMES 128

typedef struct frame {
    const char *key; /* NULL for an array index */
    size_t klen;
    lua_Integer index;
} frame;

typedef struct conv {
    kiln_lua *K;
    size_t items;
    size_t depth; /* frames in use */
    frame frames[PATH_FRAMES];
    char path[200];
    kiln_err *err;
} conv;

typedef struct entry {
    const char *key;
    size_t klen;
    json_t *value;
} entry;

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* ".spec.ports[0]" for the current position (cut when long). */
static const char *path_of(conv *c)
{
    size_t len = 0;
    c->path[0] = '\0';
    size_t n = c->depth < PATH_FRAMES ? c->depth : PATH_FRAMES;
    for (size_t i = 0; i < n && len < sizeof c->path - 1; i++) {
        const frame *f = &c->frames[i];
        int w = f->key ? snprintf(c->path + len, sizeof c->path - len, ".%.*s",
                                  (int)(f->klen > 64 ? 64 : f->klen), f->key)
                       : snprintf(c->path + len, sizeof c->path - len, "[%lld]",
                                  (long long)f->index - 1);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return c->path;
}

static void path_push(conv *c, const char *key, size_t klen, lua_Integer index)
{
    if (c->depth < PATH_FRAMES)
        c->frames[c->depth] = (frame){key, klen, index};
    c->depth++;
}

static void path_pop(conv *c)
{
    c->depth--;
}

static int convert(conv *c, json_t **out, int idx, size_t depth);

static int convert_table(conv *c, json_t **out, int idx, size_t depth)
{
    lua_State *L = c->K->L;
    entry *ents = NULL;
    size_t n = 0, nents = 0;
    json_t *res = NULL;
    int rc = 0;
    bool ints = true, strs = true;
    lua_Integer maxk = 0;

    if (depth > c->K->limits.max_depth) {
        rc = kiln_err_set(c->err, KILN_ELIMIT, "value%s: nested deeper than %zu levels", path_of(c),
                          c->K->limits.max_depth);
        goto done;
    }
    if (!lua_checkstack(L, 4)) {
        rc = kiln_err_set(c->err, KILN_ELIMIT, "value%s: too deep", path_of(c));
        goto done;
    }
    int marker = kiln_lua__marker(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            ints = false;
        } else if (lua_isinteger(L, -1)) {
            strs = false;
            lua_Integer k = lua_tointeger(L, -1);
            if (k < 1)
                ints = false;
            else if (k > maxk)
                maxk = k;
        } else {
            const char *tn = luaL_typename(L, -1);
            lua_pop(L, 1);
            rc = kiln_err_set(c->err, KILN_EINVAL,
                              "value%s: a table key of type %s cannot become JSON "
                              "(keys must be strings, or 1..n for an array)",
                              path_of(c), tn);
            goto done;
        }
    }
    c->items += n;
    if (c->items > c->K->limits.max_items) {
        rc = kiln_err_set(c->err, KILN_ELIMIT, "value%s: more than %zu items", path_of(c),
                          c->K->limits.max_items);
        goto done;
    }
    if (n == 0) {
        res = marker == 1 ? json_array() : json_object();
        goto done;
    }
    if (ints && (lua_Integer)n == maxk && marker != 2) {
        res = json_array();
        for (lua_Integer i = 1; i <= maxk; i++) {
            json_t *child = NULL;
            lua_rawgeti(L, idx, i);
            path_push(c, NULL, 0, i);
            rc = convert(c, &child, lua_gettop(L), depth + 1);
            path_pop(c);
            lua_pop(L, 1);
            if (rc != 0)
                goto done;
            json_array_append_new(res, child);
        }
        goto done;
    }
    if (!strs || marker == 1) {
        rc = kiln_err_set(c->err, KILN_EINVAL,
                          "value%s: %s cannot become JSON (use string keys for an object, or "
                          "keys 1..n without holes for an array)",
                          path_of(c),
                          marker == 1           ? "an array() with non-sequence keys"
                          : marker == 2 && ints ? "an object() with integer keys"
                          : ints                ? "an array with holes"
                                                : "a table with both string and integer keys");
        goto done;
    }
    ents = kiln_xcalloc(n, sizeof *ents);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        entry *e = &ents[nents];
        e->key = lua_tolstring(L, -2, &e->klen); /* a string key: no conversion */
        path_push(c, e->key, e->klen, 0);
        rc = convert(c, &e->value, lua_gettop(L), depth + 1);
        path_pop(c);
        lua_pop(L, 1);
        if (rc != 0) {
            lua_pop(L, 1);
            goto done;
        }
        nents++;
    }
    /* Sorted keys: Lua's traversal order depends on the per-state hash seed,
     * and renders must be byte-for-byte deterministic. */
    qsort(ents, nents, sizeof *ents, entry_cmp);
    res = json_object();
    for (size_t i = 0; i < nents; i++) {
        json_t *v = ents[i].value;
        ents[i].value = NULL;
        if (json_object_setn_new(res, ents[i].key, ents[i].klen, v) != 0) {
            rc =
                kiln_err_set(c->err, KILN_EINVAL, "value%s: key \"%.*s\" is not valid UTF-8",
                             path_of(c), (int)(ents[i].klen > 40 ? 40 : ents[i].klen), ents[i].key);
            goto done;
        }
    }
done:
    if (ents) {
        for (size_t i = 0; i < nents; i++)
            json_decref(ents[i].value);
        kiln_xfree(ents);
    }
    if (rc != 0) {
        json_decref(res);
        res = NULL;
    }
    *out = res;
    return rc;
}

static int convert(conv *c, json_t **out, int idx, size_t depth)
{
    lua_State *L = c->K->L;
    *out = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return 0;
    case LUA_TBOOLEAN:
        *out = json_boolean(lua_toboolean(L, idx));
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            *out = json_integer((json_int_t)lua_tointeger(L, idx));
        } else {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d))
                return kiln_err_set(c->err, KILN_EINVAL, "value%s: %s cannot become JSON",
                                    path_of(c), isnan(d) ? "NaN" : "an infinite number");
            *out = json_real(d);
        }
        return 0;
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, idx, &len);
        *out = json_stringn(s, len);
        if (*out == NULL)
            return kiln_err_set(c->err, KILN_EINVAL, "value%s: string is not valid UTF-8",
                                path_of(c));
        return 0;
    }
    case LUA_TTABLE:
        return convert_table(c, out, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == KILN_LUA_NULL) {
            *out = json_null();
            return 0;
        }
        /* fall through */
    default:
        return kiln_err_set(c->err, KILN_EINVAL, "value%s: a %s cannot become JSON", path_of(c),
                            luaL_typename(L, idx));
    }
}

int kiln_lua__to_json(kiln_lua *K, json_t **out, int idx, kiln_err *err)
{
    conv c = {.K = K, .err = err};
    return convert(&c, out, lua_absindex(K->L, idx), 1);
}

void kiln_lua__push_canonical(lua_State *L, int idx)
{
    kiln_lua *K = kiln_lua__from(L);
    json_t *v = NULL;
    kiln_err err;
    if (kiln_lua__to_json(K, &v, idx, &err) != 0) {
        if (err.code == KILN_ELIMIT)
            kiln_lua__limit_error(L, "%s", err.msg);
        luaL_error(L, "%s", err.msg);
    }
    if (v == NULL) {
        lua_pushliteral(L, "null");
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(v);
    if (text == NULL)
        luaL_error(L, "json.encode: cannot encode the value");
    size_t len = strlen(text);
    if (len + 256 > K->limits.memory || K->mem_used > K->limits.memory - len - 256) {
        free(text);
        kiln_lua__check_alloc(L, len + 256, "json.encode");
    }
    lua_pushlstring(L, text, len);
    free(text);
}
