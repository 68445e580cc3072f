/* lua/sandbox.h: sandboxed Lua 5.4 states for templates and scripts.
 *
 * A kiln_lua is one lua_State with kiln's limits: an instruction budget per
 * evaluation that pcall cannot swallow, a memory cap through the allocator, a
 * cap on the subject length of string pattern functions, and depth/size caps on
 * values crossing into JSON. Only base (without load, loadfile, dofile,
 * collectgarbage, print), string (without dump), table, math and utf8 are
 * open, plus kiln's helper library (k8s, json, str, list, hash, b64, semver,
 * quantity, range, array, object). Chunks are text only, never bytecode.
 *
 * A state is not thread-safe: each controller worker owns one. Compiled
 * functions and environments are integer handles valid only in the state that
 * made them. Nothing crosses the boundary but data (JSON <-> Lua tables).
 *
 * Errors: KILN_ELIMIT when a limit was hit (the message says which), KILN_ESCRIPT
 * for a Lua error (syntax or runtime; the message carries the chunk name, line
 * and the Lua message), KILN_EINVAL for values that cannot become JSON.
 */
#ifndef KILN_LUA_SANDBOX_H
#define KILN_LUA_SANDBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct kiln_lua kiln_lua;

typedef struct kiln_lua_limits {
    uint64_t instructions;  /* per evaluation; default 10,000,000 */
    size_t memory;          /* bytes allocated by the state; default 64 MiB */
    size_t pattern_subject; /* longest subject string.find/match/gmatch/gsub accept; 1 MiB */
    size_t max_depth;       /* nesting of values converted to or from JSON; default 64 */
    size_t max_items;       /* elements in one converted result; default 100,000 */
} kiln_lua_limits;

void kiln_lua_limits_default(kiln_lua_limits *limits);

/* New state with limits (copied; NULL means defaults). Aborts on OOM. */
kiln_lua *kiln_lua_new(const kiln_lua_limits *limits);
void kiln_lua_free(kiln_lua *L);

/* An environment is what one evaluation sees, looked up in this order:
 *   1. the RGD's helper functions (from helpers_src, run once here),
 *   2. the variables of the current render (kiln_lua_env_set),
 *   3. the helper library and the safe base functions.
 * Assigning a global inside an expression or script is an error, so one render
 * can never leak state into the next. helpers_src may be NULL. chunkname names
 * the helpers in messages (e.g. "spec.lua"). *out_env is a new handle. */
int kiln_lua_env_new(kiln_lua *L, int *out_env, const char *helpers_src, const char *chunkname,
                     kiln_err *err);
void kiln_lua_env_free(kiln_lua *L, int env);

/* Sets variable name to a Lua copy of value (borrowed; NULL removes it). Empty
 * JSON arrays and objects keep their shape through array()/object() markers. */
int kiln_lua_env_set(kiln_lua *L, int env, const char *name, const json_t *value, kiln_err *err);
/* Removes every variable of env (helpers stay). */
void kiln_lua_env_clear(kiln_lua *L, int env);

/* Compiles one expression (the text inside ${...}) or one script chunk (a
 * block that returns a value) into *out_fn, a new handle. chunkname names it in
 * messages (e.g. "resources[2].template.spec.replicas"). A syntax error is
 * KILN_ESCRIPT with the line and column inside the expression. */
int kiln_lua_compile_expr(kiln_lua *L, int *out_fn, const char *expr, const char *chunkname,
                          kiln_err *err);
int kiln_lua_compile_script(kiln_lua *L, int *out_fn, const char *src, const char *chunkname,
                            kiln_err *err);
void kiln_lua_release(kiln_lua *L, int fn);

/* Runs fn in env under the limits and converts its (first) result to JSON:
 * *out is a new reference, or NULL when the result is nil. Integers stay
 * integers, floats stay reals. */
int kiln_lua_eval(kiln_lua *L, json_t **out, int env, int fn, kiln_err *err);

/* What the last evaluation used: instructions executed and peak bytes. */
uint64_t kiln_lua_last_instructions(const kiln_lua *L);
size_t kiln_lua_memory_in_use(const kiln_lua *L);

/* A wall-clock backstop per evaluation, in milliseconds (0: none; default
 * KILN_LUA_DEFAULT_TIME_LIMIT_MS). The instruction budget is the real, and
 * deterministic, limit; this only catches C work the budget cannot see, such
 * as comparing long strings in a loop. Exceeding it is KILN_ELIMIT. */
#define KILN_LUA_DEFAULT_TIME_LIMIT_MS 5000
void kiln_lua_set_time_limit(kiln_lua *L, uint64_t ms);

/* The Lua traceback of the last failed evaluation ("" if none). Borrowed,
 * valid until the next call into L. */
const char *kiln_lua_last_traceback(const kiln_lua *L);

#endif
