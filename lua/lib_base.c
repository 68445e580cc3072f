/* lua/lib_base.c: the global helpers range(), array() and object().
 *
 * Also creates the two marker metatables that pin the JSON shape of empty
 * tables. Their __metatable field hides them from scripts, so nobody can add
 * an __index to every empty array of the state.
 */
#include <lauxlib.h>
#include <lua.h>

#include "lua/internal.h"

#define RANGE_MAX 1000000

/* range(a, b [, step]) -> {a, a+step, ..., <= b}; like a numeric for. */
static int l_range(lua_State *L)
{
    lua_Integer a = luaL_checkinteger(L, 1);
    lua_Integer b = luaL_checkinteger(L, 2);
    lua_Integer step = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, step != 0, 3, "step must not be zero");
    lua_Integer n = 0;
    if (step > 0 && a <= b)
        n = (lua_Integer)(((lua_Unsigned)b - (lua_Unsigned)a) / (lua_Unsigned)step) + 1;
    else if (step < 0 && a >= b)
        n = (lua_Integer)(((lua_Unsigned)a - (lua_Unsigned)b) /
                          ((lua_Unsigned)0 - (lua_Unsigned)step)) +
            1;
    if (n < 0 || n > RANGE_MAX)
        return luaL_error(L, "range: at most %d elements (asked for %s)", RANGE_MAX,
                          n < 0 ? "too many" : lua_pushfstring(L, "%I", n));
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)((lua_Unsigned)a + (lua_Unsigned)i * (lua_Unsigned)step));
        lua_rawseti(L, -2, i + 1);
    }
    if (n == 0)
        kiln_lua__mark(L, -1, true);
    return 1;
}

static int mark(lua_State *L, bool array)
{
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    kiln_lua__mark(L, -1, array);
    return 1;
}

/* array([t]) -> t (or a new table) marked to become a JSON array. */
static int l_array(lua_State *L)
{
    return mark(L, true);
}

/* object([t]) -> t (or a new table) marked to become a JSON object. */
static int l_object(lua_State *L)
{
    return mark(L, false);
}

static void new_marker(lua_State *L, void *key, const char *name)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void kiln_lua__open_base(lua_State *L)
{
    new_marker(L, &kiln_lua__array_mt_key, "array");
    new_marker(L, &kiln_lua__object_mt_key, "object");
    lua_pushcfunction(L, l_range);
    lua_setfield(L, -2, "range");
    lua_pushcfunction(L, l_array);
    lua_setfield(L, -2, "array");
    lua_pushcfunction(L, l_object);
    lua_setfield(L, -2, "object");
}
