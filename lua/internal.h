/* lua/internal.h: what the lua/ module's files share and nobody else sees.
 *
 * The sandbox (sandbox.c) owns the kiln_lua struct; value.c converts between
 * jansson and Lua values; lib_*.c register the helper library; template.c needs
 * the raw Lua result of a call to splice it. None of this is part of the API.
 */
#ifndef KILN_LUA_INTERNAL_H
#define KILN_LUA_INTERNAL_H

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "lua/sandbox.h"

struct kiln_lua {
    lua_State *L;
    kiln_lua_limits limits;
    size_t mem_used;
    size_t mem_peak;
    /* Set when a limit was hit during the current protected call; every later
     * hook, pcall wrapper and the caller check it, so a script cannot swallow it. */
    bool limit_hit;
    char limit_msg[160];
    uint64_t hook_calls; /* count-hook firings in this evaluation */
    uint64_t last_instructions;
    /* Work done in C on the script's behalf (pattern matching, bytes
     * allocated, loops in library functions), charged to the budget, since
     * the count hook only sees VM instructions. */
    uint64_t c_steps;
    uint64_t time_limit_ns; /* wall-clock backstop per evaluation; 0 = none */
    uint64_t deadline_ns;
    bool in_call; /* inside a protected call from C (limits armed) */
    char traceback[1024];
};

/* Instructions between two count-hook firings. */
#define KILN_LUA_HOOK_STEP 1000

/* The kiln_lua that owns L (stored in the allocator's userdata). */
kiln_lua *kiln_lua__from(lua_State *L);

/* Marks the limit as hit with a message and raises a Lua error. Never returns. */
int kiln_lua__limit_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Charges n steps of C work to the evaluation's instruction budget; raises
 * when it is exhausted (C code runs without the count hook). */
void kiln_lua__charge(lua_State *L, uint64_t n);

/* Bytes of C work that cost one instruction (scanning, copying, allocating). */
#define KILN_LUA_BYTES_PER_STEP 32

/* Fails with ELIMIT (raises) when a string of n bytes could not fit under the
 * memory cap; for functions that build strings sized by their arguments. */
void kiln_lua__check_alloc(lua_State *L, size_t n, const char *what);

/* Calls fn (a handle) in env with the limits armed; on success leaves the first
 * result on the stack (one value, nil included) and returns 0. On failure pops
 * everything it pushed and fills err. */
int kiln_lua__call(kiln_lua *K, int env, int fn, kiln_err *err);

/* Runs f(L) in protected mode with the limits armed; ud is passed as a light
 * userdata at index 1. Results are discarded. chunk names the work in errors. */
int kiln_lua__protect(kiln_lua *K, lua_CFunction f, void *ud, const char *chunk, kiln_err *err);

/* ---- value.c ---- */

/* Pushes a Lua copy of v (borrowed). Raises on memory errors and depth/item
 * caps: call inside a protected call. A NULL or JSON null v pushes nil. */
void kiln_lua__push_json(lua_State *L, const json_t *v);

/* Converts the value at idx to JSON without raising: *out is a new reference
 * (NULL for nil). EINVAL for values JSON cannot hold, ELIMIT for the caps. */
int kiln_lua__to_json(kiln_lua *K, json_t **out, int idx, kiln_err *err);

/* Light userdata that stands for JSON null inside arrays and objects. */
extern char kiln_lua__null_key;
#define KILN_LUA_NULL ((void *)&kiln_lua__null_key)

/* Registry keys of the marker metatables of empty arrays and objects. */
extern char kiln_lua__array_mt_key;
extern char kiln_lua__object_mt_key;

/* Marks the table at idx as array (or object) by setting the marker metatable
 * when it has none. Raises if it has another metatable. */
void kiln_lua__mark(lua_State *L, int idx, bool array);
/* 1 array marker, 2 object marker, 0 none. Raw, never raises. */
int kiln_lua__marker(lua_State *L, int idx);

/* Canonical JSON text of the Lua value at idx (sorted keys, compact) pushed as a
 * string; raises a Lua error when it cannot be converted. */
void kiln_lua__push_canonical(lua_State *L, int idx);

/* ---- the helper library ---- */

/* Each registers its functions into the table at the top of the stack (the
 * library table the sandbox exposes read-only). */
void kiln_lua__open_base(lua_State *L);
void kiln_lua__open_pattern(lua_State *L); /* into the string table on top */
void kiln_lua__open_k8s(lua_State *L);
void kiln_lua__open_json(lua_State *L);
void kiln_lua__open_str(lua_State *L);
void kiln_lua__open_list(lua_State *L);
void kiln_lua__open_hash(lua_State *L);
void kiln_lua__open_b64(lua_State *L);
void kiln_lua__open_semver(lua_State *L);
void kiln_lua__open_quantity(lua_State *L);
void kiln_lua__open_recipe(lua_State *L); /* lib_recipe.c, over kiln_recipes' lock data */

/* FNV-1a 64 of s, for short stable suffixes. */
uint64_t kiln_lua__fnv64a(const char *s, size_t len);

/* Parses a Kubernetes quantity; false when s is not one. */
bool kiln_lua__quantity_parse(const char *s, double *out);
/* quantity.parse as a lua_CFunction, shared with k8s.quantity. */
int kiln_lua__quantity_l_parse(lua_State *L);

/* Sets t[name] (t at top) to a new table with the functions of l. */
void kiln_lua__add_lib(lua_State *L, const char *name, const luaL_Reg *l);

#endif
