/* lua/lib_json.c: json.encode, json.decode and json.null.
 *
 * encode is canonical (keys sorted, compact), the same text kiln hashes, so a
 * script can compute a stable checksum of a config it renders. decode turns
 * JSON null inside containers into json.null, like every value kiln hands in.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "lua/internal.h"

/* json.encode(v) -> string. */
static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    kiln_lua__push_canonical(L, 1);
    return 1;
}

typedef struct doc_box {
    json_t *doc;
} doc_box;

static int box_gc(lua_State *L)
{
    doc_box *b = lua_touserdata(L, 1);
    json_decref(b->doc);
    b->doc = NULL;
    return 0;
}

/* json.decode(s) -> value. The parsed document sits in a userdata with a
 * finalizer while it is converted, so a memory error cannot leak it. */
static int l_decode(lua_State *L)
{
    size_t len = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    doc_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->doc = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)box_gc);
    lua_setmetatable(L, -2);
    json_error_t jerr;
    b->doc = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (b->doc == NULL)
        return luaL_error(L, "json.decode: %s at line %d column %d", jerr.text, jerr.line,
                          jerr.column);
    kiln_lua__push_json(L, b->doc);
    json_decref(b->doc);
    b->doc = NULL;
    return 1;
}

void kiln_lua__open_json(lua_State *L)
{
    static const luaL_Reg fns[] = {{"encode", l_encode}, {"decode", l_decode}, {NULL, NULL}};
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)box_gc);
    kiln_lua__add_lib(L, "json", fns);
    lua_getfield(L, -1, "json");
    lua_pushlightuserdata(L, KILN_LUA_NULL);
    lua_setfield(L, -2, "null");
    lua_pop(L, 1);
}
