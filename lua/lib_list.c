/* lua/lib_list.c: the list helper table.
 *
 * Lists are Lua sequences (t[1..#t]); every function returns a new table and
 * never changes its arguments. An empty result is marked as an array, so it
 * renders as [] rather than {}. Scratch space for sorting lives in Lua userdata,
 * so an error from a comparison (a Lua error can come from any __lt) leaks
 * nothing.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

#include "lua/internal.h"

/* The length of the list at arg, charged to the budget: every function
 * here walks it once in C. */
static lua_Integer check_list(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, arg);
    kiln_lua__charge(L, (uint64_t)n);
    return n;
}

/* Leaves a new result table at the top, marked as array when empty. */
static void finish(lua_State *L, lua_Integer n)
{
    if (n == 0)
        kiln_lua__mark(L, -1, true);
}

/* list.map(t, f) -> {f(t[1], 1), f(t[2], 2), ...}; a nil result is an error
 * (it would leave a hole). */
static int l_map(lua_State *L)
{
    lua_Integer n = check_list(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushvalue(L, 2);
        lua_rawgeti(L, 1, i);
        lua_pushinteger(L, i);
        lua_call(L, 2, 1);
        if (lua_isnil(L, -1))
            return luaL_error(L, "list.map: the function returned nil for item %d", (int)i);
        lua_rawseti(L, -2, i);
    }
    finish(L, n);
    return 1;
}

/* list.filter(t, f) -> the items for which f(item, i) is truthy. */
static int l_filter(lua_State *L)
{
    lua_Integer n = check_list(L, 1), o = 0;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_newtable(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushvalue(L, 2);
        lua_rawgeti(L, 1, i);
        lua_pushinteger(L, i);
        lua_call(L, 2, 1);
        bool keep = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (keep) {
            lua_rawgeti(L, 1, i);
            lua_rawseti(L, -2, ++o);
        }
    }
    finish(L, o);
    return 1;
}

static lua_Integer index_of(lua_State *L)
{
    lua_Integer n = check_list(L, 1);
    luaL_checkany(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        bool eq = lua_rawequal(L, -1, 2);
        lua_pop(L, 1);
        if (eq)
            return i;
    }
    return 0;
}

/* list.contains(t, v) -> boolean (raw equality: 1 == 1.0, tables by identity). */
static int l_contains(lua_State *L)
{
    lua_pushboolean(L, index_of(L) > 0);
    return 1;
}

/* list.index_of(t, v) -> the first index of v, or nil. */
static int l_index_of(lua_State *L)
{
    lua_Integer i = index_of(L);
    if (i > 0)
        lua_pushinteger(L, i);
    else
        lua_pushnil(L);
    return 1;
}

/* list.concat(a, b, ...) -> a new list with the items of each list in turn. */
static int l_concat(lua_State *L)
{
    int nargs = lua_gettop(L);
    lua_newtable(L);
    lua_Integer o = 0;
    for (int a = 1; a <= nargs; a++) {
        lua_Integer n = check_list(L, a);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, a, i);
            lua_rawseti(L, nargs + 1, ++o);
        }
    }
    finish(L, o);
    return 1;
}

static bool is_list(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        return false;
    if (kiln_lua__marker(L, idx) == 1)
        return true;
    return lua_rawlen(L, idx) > 0;
}

static void flatten_into(lua_State *L, int src, int dst, lua_Integer *o, int depth)
{
    luaL_checkstack(L, 3, "list.flatten: too deep");
    lua_Integer n = (lua_Integer)lua_rawlen(L, src);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, src, i);
        if (depth > 0 && is_list(L, -1)) {
            flatten_into(L, lua_gettop(L), dst, o, depth - 1);
            lua_pop(L, 1);
        } else {
            lua_rawseti(L, dst, ++*o);
        }
    }
}

/* list.flatten(t [, depth = 1]) -> nested lists spliced in, depth levels deep. */
static int l_flatten(lua_State *L)
{
    check_list(L, 1);
    lua_Integer depth = luaL_optinteger(L, 2, 1);
    luaL_argcheck(L, depth >= 0 && depth <= 64, 2, "depth must be between 0 and 64");
    lua_settop(L, 1);
    lua_newtable(L);
    lua_Integer o = 0;
    flatten_into(L, 1, 2, &o, (int)depth);
    finish(L, o);
    return 1;
}

/* list.unique(t) -> the items without repeats, first occurrence kept. */
static int l_unique(lua_State *L)
{
    lua_Integer n = check_list(L, 1), o = 0;
    lua_settop(L, 1);
    lua_newtable(L); /* 2: seen */
    lua_newtable(L); /* 3: result */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) == LUA_TNUMBER && isnan(lua_tonumber(L, -1))) {
            lua_rawseti(L, 3, ++o);
            continue;
        }
        lua_pushvalue(L, -1);
        if (lua_rawget(L, 2) != LUA_TNIL) {
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, 2);
        lua_rawseti(L, 3, ++o);
    }
    finish(L, o);
    return 1;
}

/* Orders keys for sorting: numbers before strings, each by value; other types
 * fall back to Lua's < (which may call __lt or raise). */
static bool less(lua_State *L, int a, int b)
{
    int ta = lua_type(L, a), tb = lua_type(L, b);
    if (ta == LUA_TNUMBER && tb == LUA_TSTRING)
        return true;
    if (ta == LUA_TSTRING && tb == LUA_TNUMBER)
        return false;
    return lua_compare(L, a, b, LUA_OPLT);
}

/* Stable merge sort of perm[0..n) by keys[perm[i]] (keys: a table at kidx). */
static void merge_sort(lua_State *L, int kidx, lua_Integer *perm, lua_Integer *tmp, lua_Integer n)
{
    for (lua_Integer width = 1; width < n; width *= 2) {
        for (lua_Integer lo = 0; lo < n; lo += 2 * width) {
            lua_Integer mid = lo + width < n ? lo + width : n;
            lua_Integer hi = lo + 2 * width < n ? lo + 2 * width : n;
            lua_Integer i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                lua_rawgeti(L, kidx, perm[j]);
                lua_rawgeti(L, kidx, perm[i]);
                bool take_right = less(L, -2, -1);
                lua_pop(L, 2);
                tmp[k++] = take_right ? perm[j++] : perm[i++];
            }
            while (i < mid)
                tmp[k++] = perm[i++];
            while (j < hi)
                tmp[k++] = perm[j++];
        }
        memcpy(perm, tmp, (size_t)n * sizeof *perm);
    }
}

/* list.sort(t [, keyfn]) -> a new list sorted by item (or keyfn(item)); stable. */
static int l_sort(lua_State *L)
{
    lua_Integer n = check_list(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_createtable(L, (int)n, 0); /* 3: keys */
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_isnil(L, 2)) {
            lua_rawgeti(L, 1, i);
        } else {
            lua_pushvalue(L, 2);
            lua_rawgeti(L, 1, i);
            lua_call(L, 1, 1);
        }
        lua_rawseti(L, 3, i);
    }
    kiln_lua__check_alloc(L, (size_t)n * 2 * sizeof(lua_Integer), "list.sort");
    kiln_lua__charge(L, (uint64_t)n * 8);
    lua_Integer *perm = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *perm, 0);
    lua_Integer *tmp = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *tmp, 0);
    for (lua_Integer i = 0; i < n; i++)
        perm[i] = i + 1;
    merge_sort(L, 3, perm, tmp, n);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 1, perm[i]);
        lua_rawseti(L, -2, i + 1);
    }
    finish(L, n);
    return 1;
}

/* Pushes the keys of the table at 1 as a sorted list; returns their count. */
static lua_Integer sorted_keys(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L); /* 2: keys */
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "list.keys: keys must be strings or numbers, got %s", lua_typename(L, t));
        lua_pushvalue(L, -1);
        lua_rawseti(L, 2, ++n);
    }
    kiln_lua__charge(L, (uint64_t)n * 8);
    lua_Integer *perm = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *perm, 0);
    lua_Integer *tmp = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *tmp, 0);
    for (lua_Integer i = 0; i < n; i++)
        perm[i] = i + 1;
    merge_sort(L, 2, perm, tmp, n);
    lua_createtable(L, (int)n, 0); /* 5: sorted keys */
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 2, perm[i]);
        lua_rawseti(L, 5, i + 1);
    }
    return n;
}

/* list.keys(t) -> the keys of t, sorted (numbers first, then strings). */
static int l_keys(lua_State *L)
{
    finish(L, sorted_keys(L));
    return 1;
}

/* list.values(t) -> the values of t in sorted key order. */
static int l_values(lua_State *L)
{
    lua_Integer n = sorted_keys(L);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 5, i);
        lua_rawget(L, 1);
        lua_rawseti(L, -2, i);
    }
    finish(L, n);
    return 1;
}

/* list.len(t) -> the number of entries (a list's length, an object's size). */
static int l_len(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        n++;
    }
    kiln_lua__charge(L, (uint64_t)n);
    lua_pushinteger(L, n);
    return 1;
}

/* list.sum(t) -> the sum (0 for an empty list); integers stay integers. */
static int l_sum(lua_State *L)
{
    lua_Integer n = check_list(L, 1);
    lua_pushinteger(L, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TNUMBER)
            return luaL_error(L, "list.sum: item %d is a %s, not a number", (int)i,
                              luaL_typename(L, -1));
        lua_arith(L, LUA_OPADD);
    }
    return 1;
}

static int extreme(lua_State *L, bool want_max)
{
    lua_Integer n = check_list(L, 1);
    if (n == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_rawgeti(L, 1, 1);
    for (lua_Integer i = 2; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        bool better =
            want_max ? lua_compare(L, -2, -1, LUA_OPLT) : lua_compare(L, -1, -2, LUA_OPLT);
        if (better)
            lua_replace(L, -2);
        else
            lua_pop(L, 1);
    }
    return 1;
}

/* list.min(t) / list.max(t) -> the smallest / largest item, nil when empty. */
static int l_min(lua_State *L)
{
    return extreme(L, false);
}

static int l_max(lua_State *L)
{
    return extreme(L, true);
}

/* list.reverse(t) -> the items in reverse order. */
static int l_reverse(lua_State *L)
{
    lua_Integer n = check_list(L, 1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, n - i + 1);
        lua_rawseti(L, -2, i);
    }
    finish(L, n);
    return 1;
}

/* list.slice(t, i [, j = #t]) -> items i..j inclusive; negative indices count
 * from the end, like string.sub. */
static int l_slice(lua_State *L)
{
    lua_Integer n = check_list(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    lua_Integer j = luaL_optinteger(L, 3, n);
    if (i < 0)
        i = i < -n ? 1 : n + i + 1;
    else if (i == 0)
        i = 1;
    if (j < 0)
        j = n + j + 1;
    else if (j > n)
        j = n;
    lua_newtable(L);
    lua_Integer o = 0;
    for (lua_Integer k = i; k <= j; k++) {
        lua_rawgeti(L, 1, k);
        lua_rawseti(L, -2, ++o);
    }
    finish(L, o);
    return 1;
}

void kiln_lua__open_list(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"map", l_map},           {"filter", l_filter}, {"contains", l_contains},
        {"index_of", l_index_of}, {"concat", l_concat}, {"flatten", l_flatten},
        {"unique", l_unique},     {"sort", l_sort},     {"keys", l_keys},
        {"values", l_values},     {"len", l_len},       {"sum", l_sum},
        {"min", l_min},           {"max", l_max},       {"reverse", l_reverse},
        {"slice", l_slice},       {NULL, NULL}};
    kiln_lua__add_lib(L, "list", fns);
}
