/* lua/lib_recipe.c: the `recipe` helper table.
 *
 * recipe.resolve{service=, accelerator=, os=, intent=, platform=} returns the
 * locked runtime for the criteria (recipes/recipes.h describes its shape) and
 * raises a Lua error naming the criterion when none matches; recipe.list()
 * returns the catalog and recipe.components() its component list. The data
 * is the lock data embedded in kiln_recipes, shared read-only by every state.
 */
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <string.h>

#include "lua/internal.h"
#include "recipes/recipes.h"

/* Longest criterion value copied out of a table; longer is an error. */
#define CRIT_MAX 63
/* Resolutions kept per process: a graph asks for the same criteria once per
 * component it renders, and resolving merges every overlay's values. */
#define MEMO_MAX 32

/* A box that owns a json_t while it is converted: pushing a value can raise
 * (memory cap), and the box's finalizer then frees what the C code held. */
static int box_gc(lua_State *L)
{
    json_t **slot = lua_touserdata(L, 1);
    if (slot && *slot) {
        json_decref(*slot);
        *slot = NULL;
    }
    return 0;
}

static char box_mt_key;

/* Pushes a box (slot starts NULL) and returns its slot. */
static json_t **push_box(lua_State *L)
{
    json_t **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = NULL;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &box_mt_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &box_mt_key);
    }
    lua_setmetatable(L, -2);
    return slot;
}

/* Converts the boxed value (box at the top) to Lua, frees it and replaces
 * the box with the converted value. */
static void push_boxed(lua_State *L, json_t **slot)
{
    kiln_lua__push_json(L, *slot);
    json_decref(*slot);
    *slot = NULL;
    lua_remove(L, -2);
}

static const kiln_recipes *data(lua_State *L)
{
    kiln_err err = {0};
    const kiln_recipes *r = kiln_recipes_builtin(&err);
    if (r == NULL)
        luaL_error(L, "recipe: %s", err.msg);
    return r;
}

/* The lock data never changes, so a resolution is a pure function of the
 * criteria: kept (read-only, shared by every state and thread) in a small
 * table, oldest replaced first. */
static pthread_mutex_t memo_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char key[KILN_RECIPES_NCRITERIA * (CRIT_MAX + 1)];
    json_t *value;
} memo[MEMO_MAX];
static size_t memo_next;

static void memo_key(char *key, size_t n, char values[][CRIT_MAX + 1])
{
    size_t len = 0;
    key[0] = '\0';
    for (int k = 0; k < KILN_RECIPES_NCRITERIA && len < n; k++)
        len += (size_t)snprintf(key + len, n - len, "%s\x1f", values[k]);
}

/* A new reference to the kept resolution of key, or NULL. */
static json_t *memo_get(const char *key)
{
    json_t *v = NULL;
    pthread_mutex_lock(&memo_mu);
    for (size_t i = 0; i < MEMO_MAX && !v; i++)
        if (memo[i].value && strcmp(memo[i].key, key) == 0)
            v = json_incref(memo[i].value);
    pthread_mutex_unlock(&memo_mu);
    return v;
}

static void memo_put(const char *key, json_t *value)
{
    pthread_mutex_lock(&memo_mu);
    size_t i = memo_next++ % MEMO_MAX;
    json_decref(memo[i].value);
    snprintf(memo[i].key, sizeof(memo[i].key), "%s", key);
    memo[i].value = json_incref(value);
    pthread_mutex_unlock(&memo_mu);
}

/* recipe.resolve(criteria) -> the resolved table; raises on unmatched,
 * unknown or ambiguous criteria. */
static int l_resolve(lua_State *L)
{
    char values[KILN_RECIPES_NCRITERIA][CRIT_MAX + 1] = {{0}};
    luaL_checktype(L, 1, LUA_TTABLE);
    const kiln_recipes *r = data(L);
    /* Unknown keys first, so a typo ("acclerator") is named rather than
     * reported as a missing criterion. */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        bool known = false;
        if (lua_type(L, -2) == LUA_TSTRING) {
            for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++)
                known = known || strcmp(lua_tostring(L, -2), kiln_recipes_criteria[k]) == 0;
        }
        if (!known) {
            lua_pushvalue(L, -2);
            return luaL_error(L,
                              "recipe.resolve: unknown criterion \"%s\" (known: service, "
                              "accelerator, os, intent, platform)",
                              luaL_tolstring(L, -1, NULL));
        }
        lua_pop(L, 1);
    }
    for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
        int t = lua_getfield(L, 1, kiln_recipes_criteria[k]);
        if (t != LUA_TNIL) {
            size_t n;
            const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
            if (s == NULL)
                return luaL_error(L, "recipe.resolve: criterion %s: expected a string, got %s",
                                  kiln_recipes_criteria[k], luaL_typename(L, -1));
            if (n > CRIT_MAX)
                return luaL_error(L, "recipe.resolve: criterion %s: longer than %d bytes",
                                  kiln_recipes_criteria[k], CRIT_MAX);
            memcpy(values[k], s, n + 1);
        }
        lua_pop(L, 1);
    }
    json_t **slot = push_box(L);
    char key[sizeof(memo[0].key)];
    memo_key(key, sizeof(key), values);
    *slot = memo_get(key);
    if (!*slot) {
        kiln_err err = {0};
        json_t *crit = json_object();
        for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
            if (values[k][0])
                json_object_set_new(crit, kiln_recipes_criteria[k], json_string(values[k]));
        }
        int rc = kiln_recipes_resolve(slot, r, crit, &err);
        json_decref(crit);
        if (rc < 0)
            return luaL_error(L, "recipe.resolve: %s", err.msg);
        memo_put(key, *slot);
    }
    push_boxed(L, slot);
    return 1;
}

/* recipe.list() -> {criteria, overlays, components}. */
static int l_list(lua_State *L)
{
    const kiln_recipes *r = data(L);
    json_t **slot = push_box(L);
    *slot = kiln_recipes_catalog(r);
    push_boxed(L, slot);
    return 1;
}

/* recipe.components() -> the registry's components (name, type, repository,
 * chart or path, version, namespace), in registry order. */
static int l_components(lua_State *L)
{
    const kiln_recipes *r = data(L);
    json_t **slot = push_box(L);
    json_t *cat = kiln_recipes_catalog(r);
    *slot = json_incref(json_object_get(cat, "components"));
    json_decref(cat);
    push_boxed(L, slot);
    return 1;
}

void kiln_lua__open_recipe(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"resolve", l_resolve}, {"list", l_list}, {"components", l_components}, {NULL, NULL}};
    kiln_lua__add_lib(L, "recipe", fns);
}
