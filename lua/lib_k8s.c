/* lua/lib_k8s.c: the k8s helper table.
 *
 * Object skeletons, label merging, name sanitising (DNS-1123 subdomains and
 * labels, label values) and reading status conditions. Names that come out too
 * long are cut and given a short stable hash suffix, so two long inputs that
 * share a prefix still get different names.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "lua/internal.h"

/* k8s.object(apiVersion, kind, name [, namespace]) -> {apiVersion, kind, metadata}. */
static int l_object(lua_State *L)
{
    const char *api = luaL_checkstring(L, 1);
    const char *kind = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    const char *ns = luaL_optstring(L, 4, NULL);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, api);
    lua_setfield(L, -2, "apiVersion");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    if (ns) {
        lua_pushstring(L, ns);
        lua_setfield(L, -2, "namespace");
    }
    lua_setfield(L, -2, "metadata");
    return 1;
}

/* k8s.merge_labels(...) -> a new table; later arguments win, nil is skipped. */
static int l_merge_labels(lua_State *L)
{
    int n = lua_gettop(L);
    lua_newtable(L);
    for (int i = 1; i <= n; i++) {
        if (lua_isnil(L, i))
            continue;
        luaL_checktype(L, i, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, i)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, n + 1);
        }
    }
    kiln_lua__mark(L, -1, false);
    return 1;
}

static bool is_object(lua_State *L, int idx)
{
    if (!lua_istable(L, idx) || kiln_lua__marker(L, idx) == 1)
        return false;
    lua_pushnil(L);
    if (!lua_next(L, idx))
        return true; /* {} or object() */
    bool str = lua_type(L, -2) == LUA_TSTRING;
    lua_pop(L, 2);
    return str;
}

/* Merges the table at src into the table at dst: objects merge key by key,
 * anything else (lists included) is replaced by a copy of the newer value. */
static void deep_merge_into(lua_State *L, int dst, int src, int depth)
{
    if (depth > 64)
        luaL_error(L, "k8s.deep_merge: tables nested deeper than 64 levels");
    luaL_checkstack(L, 6, "k8s.deep_merge");
    lua_pushnil(L);
    while (lua_next(L, src)) {
        int v = lua_gettop(L);
        kiln_lua__charge(L, 1);
        if (is_object(L, v)) {
            lua_pushvalue(L, v - 1);
            lua_rawget(L, dst);
            /* dst's objects are always tables made here, never an argument,
             * so merging into them modifies nothing the caller passed in. */
            if (!is_object(L, -1)) {
                lua_pop(L, 1);
                lua_newtable(L);
                kiln_lua__mark(L, -1, false);
                lua_pushvalue(L, v - 1);
                lua_pushvalue(L, -2);
                lua_rawset(L, dst);
            }
            deep_merge_into(L, lua_gettop(L), v, depth + 1);
            lua_pop(L, 1);
        } else {
            lua_pushvalue(L, v - 1);
            lua_pushvalue(L, v);
            lua_rawset(L, dst);
        }
        lua_settop(L, v - 1);
    }
}

/* k8s.deep_merge(...) -> a new table: objects merged recursively, later
 * arguments win, lists and scalars replaced whole, nil arguments skipped. The
 * arguments are never modified. */
static int l_deep_merge(lua_State *L)
{
    int n = lua_gettop(L);
    lua_newtable(L);
    kiln_lua__mark(L, -1, false);
    for (int i = 1; i <= n; i++) {
        if (lua_isnil(L, i))
            continue;
        luaL_checktype(L, i, LUA_TTABLE);
        deep_merge_into(L, n + 1, i, 1);
    }
    return 1;
}

/* Joins the arguments (strings or numbers; nil skipped) with '-' into b. */
static void join_parts(lua_State *L, int n, luaL_Buffer *b, const char *fn)
{
    bool first = true;
    for (int i = 1; i <= n; i++) {
        if (lua_isnil(L, i))
            continue;
        if (lua_type(L, i) != LUA_TSTRING && lua_type(L, i) != LUA_TNUMBER)
            luaL_error(L, "%s: argument #%d must be a string or number, got %s", fn, i,
                       luaL_typename(L, i));
        if (!first)
            luaL_addchar(b, '-');
        first = false;
        lua_pushvalue(L, i);
        luaL_addvalue(b);
    }
}

/* Sanitises s in place into a DNS-1123 name of at most max bytes (dots kept
 * when dots is true); returns the new length. hashed gets an 8-digit suffix
 * when the name had to be cut. */
static size_t sanitize(char *s, size_t len, size_t max, bool dots, bool lower)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (lower)
            c = (unsigned char)tolower(c);
        bool ok = isdigit(c) || (lower ? islower(c) : isalpha(c)) || (dots && c == '.') ||
                  (!lower && (c == '_' || c == '.'));
        if (!ok)
            c = '-';
        if (c == '-' && o > 0 && (s[o - 1] == '-' || (dots && s[o - 1] == '.')))
            continue;
        /* Each dot-separated label must start and end alphanumeric. */
        if (dots && c == '.' && o > 0 && (s[o - 1] == '.' || s[o - 1] == '-')) {
            s[o - 1] = '.';
            continue;
        }
        s[o++] = (char)c;
    }
    size_t start = 0;
    while (start < o && !isalnum((unsigned char)s[start]))
        start++;
    memmove(s, s + start, o - start);
    o -= start;
    while (o > 0 && !isalnum((unsigned char)s[o - 1]))
        o--;
    if (o > max) {
        char suffix[10];
        snprintf(suffix, sizeof suffix, "-%08llx",
                 (unsigned long long)(kiln_lua__fnv64a(s, o) & 0xffffffffULL));
        o = max - 9;
        while (o > 0 && !isalnum((unsigned char)s[o - 1]))
            o--;
        memcpy(s + o, o > 0 ? suffix : suffix + 1, o > 0 ? 9 : 8);
        o += o > 0 ? 9 : 8;
    }
    return o;
}

static int name_common(lua_State *L, size_t max, bool dots, const char *fn)
{
    int nargs = lua_gettop(L); /* before luaL_buffinit, which may push */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    join_parts(L, nargs, &b, fn);
    luaL_pushresult(&b);
    size_t len;
    const char *joined = lua_tolstring(L, -1, &len);
    char *s = lua_newuserdatauv(L, len + 1, 0);
    memcpy(s, joined, len + 1);
    size_t n = sanitize(s, len, max, dots, true);
    if (n == 0)
        return luaL_error(L, "%s: no valid characters in \"%s\"", fn, joined);
    lua_pushlstring(L, s, n);
    return 1;
}

/* k8s.name(...) -> a DNS-1123 subdomain (at most 253 bytes). */
static int l_name(lua_State *L)
{
    return name_common(L, 253, true, "k8s.name");
}

/* k8s.dns_label(...) -> a DNS-1123 label (at most 63 bytes). */
static int l_dns_label(lua_State *L)
{
    return name_common(L, 63, false, "k8s.dns_label");
}

/* k8s.label_value(s) -> a valid label value: at most 63 bytes, alphanumeric at
 * both ends, [-_.] inside; "" stays "". Case is kept. */
static int l_label_value(lua_State *L)
{
    size_t len;
    const char *in = luaL_checklstring(L, 1, &len);
    char *s = lua_newuserdatauv(L, len + 1, 0);
    memcpy(s, in, len + 1);
    size_t n = sanitize(s, len, 63, true, false);
    lua_pushlstring(L, s, n);
    return 1;
}

/* Pushes obj.status.conditions[i] with .type == type, or nothing (returns false). */
static bool find_condition(lua_State *L, int obj, const char *type)
{
    if (!lua_istable(L, obj))
        return false;
    if (lua_getfield(L, obj, "status") != LUA_TTABLE) {
        lua_pop(L, 1);
        return false;
    }
    if (lua_getfield(L, -1, "conditions") != LUA_TTABLE) {
        lua_pop(L, 2);
        return false;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) == LUA_TTABLE) {
            lua_getfield(L, -1, "type");
            bool match = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), type) == 0;
            lua_pop(L, 1);
            if (match) {
                lua_replace(L, -3);
                lua_pop(L, 1);
                return true;
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    return false;
}

/* k8s.condition(obj, type) -> the condition table or nil. */
static int l_condition(lua_State *L)
{
    const char *type = luaL_checkstring(L, 2);
    if (!find_condition(L, 1, type))
        lua_pushnil(L);
    return 1;
}

/* k8s.has_condition(obj, type [, status = "True"]) -> boolean. */
static int l_has_condition(lua_State *L)
{
    const char *type = luaL_checkstring(L, 2);
    const char *status = luaL_optstring(L, 3, "True");
    bool has = false;
    if (find_condition(L, 1, type)) {
        lua_getfield(L, -1, "status");
        has = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), status) == 0;
    }
    lua_pushboolean(L, has);
    return 1;
}

void kiln_lua__open_k8s(lua_State *L)
{
    static const luaL_Reg fns[] = {{"object", l_object},
                                   {"merge_labels", l_merge_labels},
                                   {"deep_merge", l_deep_merge},
                                   {"name", l_name},
                                   {"dns_label", l_dns_label},
                                   {"label_value", l_label_value},
                                   {"quantity", kiln_lua__quantity_l_parse},
                                   {"condition", l_condition},
                                   {"has_condition", l_has_condition},
                                   {NULL, NULL}};
    kiln_lua__add_lib(L, "k8s", fns);
}
