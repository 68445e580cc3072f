/* lua/sandbox.c: the sandboxed Lua state, environments, compile and eval.
 *
 * Layout inside one lua_State:
 *   B    the shared library table: safe base functions, read-only proxies of
 *        string/table/math/utf8 and of kiln's helper tables. Never handed to a
 *        script; reached only through the __index chain of an environment.
 *   env  a registry record {E, H, V}: E is the (always empty) table a chunk
 *        sees as _ENV; E's metatable indexes H (the RGD's helper globals), H's
 *        indexes V (render variables), V's indexes B. E refuses new globals.
 *   fn   a registry reference to a compiled chunk; its _ENV upvalue is pointed
 *        at the env's E right before each call, so no per-call setup is needed.
 *
 * Limits: a count hook charges instructions and raises once the budget is gone
 * (and on every later firing, at a step of one instruction, so a pcall loop
 * cannot get anywhere); pcall/xpcall are wrappers that re-raise while the limit
 * flag is set; the allocator refuses to grow past the memory cap.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/mem.h"
#include "lua/internal.h"

/* Registry key of B, and the key that marks a metatable as kiln's (tables
 * carrying it are read-only even for rawset). */
static char lib_key;
static char protect_key;
static char names_key; /* registry table: fn handle -> full chunk name */

kiln_lua *kiln_lua__from(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

void kiln_lua_limits_default(kiln_lua_limits *limits)
{
    limits->instructions = 10000000;
    limits->memory = (size_t)64 << 20;
    limits->pattern_subject = (size_t)1 << 20;
    limits->max_depth = 64;
    limits->max_items = 100000;
}

/* ---- limits ---- */

static void count_hook(lua_State *L, lua_Debug *ar);

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    kiln_lua *K = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        K->mem_used -= old;
        return NULL;
    }
    /* A refusal is not yet a limit: Lua runs a full collection and asks again,
     * and only a second refusal raises LUA_ERRMEM (which pcall re-raises). */
    if (nsize > old && K->mem_used - old + nsize > K->limits.memory)
        return NULL;
    if (K->in_call && nsize > old) {
        K->c_steps += (nsize - old) / KILN_LUA_BYTES_PER_STEP;
        /* Over budget: make the hook fire after the very next instruction
         * (lua_sethook is safe at any time, even from a signal handler). */
        if (!K->limit_hit &&
            K->hook_calls * KILN_LUA_HOOK_STEP + K->c_steps > K->limits.instructions)
            lua_sethook(K->L, count_hook, LUA_MASKCOUNT, 1);
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL) {
        /* Lua assumes shrinking never fails: keep the old block. */
        return nsize <= old ? ptr : NULL;
    }
    K->mem_used = K->mem_used - old + nsize;
    if (K->mem_used > K->mem_peak)
        K->mem_peak = K->mem_used;
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Appends " (at chunk:line)" for the first Lua function from `level` up, so
 * a limit names where the script was when it ran out. */
static void append_where(lua_State *L, kiln_lua *K, int level)
{
    lua_Debug ar;
    for (; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
            continue;
        size_t n = strlen(K->limit_msg);
        snprintf(K->limit_msg + n, sizeof K->limit_msg - n, " (at %s:%d)", ar.short_src,
                 ar.currentline);
        return;
    }
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    kiln_lua *K = kiln_lua__from(L);
    if (!K->in_call)
        return;
    K->hook_calls++;
    if (!K->limit_hit && K->hook_calls * KILN_LUA_HOOK_STEP + K->c_steps > K->limits.instructions) {
        K->limit_hit = true;
        snprintf(K->limit_msg, sizeof K->limit_msg, "instruction limit of %llu exceeded",
                 (unsigned long long)K->limits.instructions);
        append_where(L, K, 0);
    }
    /* The backstop for C work the budget cannot see (comparing two long
     * strings is one instruction); a monotonic clock read costs ~20 ns. */
    if (!K->limit_hit && K->deadline_ns && now_ns() > K->deadline_ns) {
        K->limit_hit = true;
        snprintf(K->limit_msg, sizeof K->limit_msg, "time limit of %llu ms exceeded",
                 (unsigned long long)(K->time_limit_ns / 1000000u));
        append_where(L, K, 0);
    }
    if (K->limit_hit) {
        /* From now on fire after every instruction, so whatever catches this
         * error cannot run even one more loop iteration. */
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        lua_pushstring(L, K->limit_msg);
        lua_error(L);
    }
}

int kiln_lua__limit_error(lua_State *L, const char *fmt, ...)
{
    kiln_lua *K = kiln_lua__from(L);
    if (!K->limit_hit) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(K->limit_msg, sizeof K->limit_msg, fmt, ap);
        va_end(ap);
        K->limit_hit = true;
        append_where(L, K, 1);
    }
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    lua_pushstring(L, K->limit_msg);
    return lua_error(L);
}

void kiln_lua__charge(lua_State *L, uint64_t n)
{
    kiln_lua *K = kiln_lua__from(L);
    K->c_steps += n;
    if (K->in_call && K->hook_calls * KILN_LUA_HOOK_STEP + K->c_steps > K->limits.instructions)
        kiln_lua__limit_error(L, "instruction limit of %llu exceeded (in a library function)",
                              (unsigned long long)K->limits.instructions);
}

void kiln_lua__check_alloc(lua_State *L, size_t n, const char *what)
{
    kiln_lua *K = kiln_lua__from(L);
    if (n <= K->limits.memory && K->mem_used > K->limits.memory - n)
        lua_gc(L, LUA_GCCOLLECT); /* garbage is not a reason to refuse */
    if (n > K->limits.memory || K->mem_used > K->limits.memory - n)
        kiln_lua__limit_error(L, "memory limit of %zu bytes exceeded (%s of %zu bytes)",
                              K->limits.memory, what, n);
}

static void arm(kiln_lua *K)
{
    K->limit_hit = false;
    K->limit_msg[0] = '\0';
    K->hook_calls = 0;
    K->c_steps = 0;
    K->deadline_ns = K->time_limit_ns ? now_ns() + K->time_limit_ns : 0;
    K->traceback[0] = '\0';
    K->mem_peak = K->mem_used;
    K->in_call = true;
    lua_sethook(K->L, count_hook, LUA_MASKCOUNT, KILN_LUA_HOOK_STEP);
}

static void disarm(kiln_lua *K)
{
    K->in_call = false;
    K->last_instructions = K->hook_calls * KILN_LUA_HOOK_STEP + K->c_steps;
    lua_sethook(K->L, NULL, 0, 0);
}

/* Message handler: turns the error object into a string and records a traceback. */
static int msgh(lua_State *L)
{
    kiln_lua *K = kiln_lua__from(L);
    const char *msg = NULL;
    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
        msg = lua_tostring(L, 1);
    } else if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
        msg = lua_tostring(L, -1);
    } else {
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    snprintf(K->traceback, sizeof K->traceback, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, msg);
    return 1;
}

/* Lua shortens chunk names to LUA_IDSIZE - 1 bytes in messages: returns the
 * text after "<chunk or its prefix>:" or NULL when msg does not start so. */
static const char *after_chunk(const char *msg, const char *chunk)
{
    size_t clen = strlen(chunk);
    if (clen > LUA_IDSIZE - 1)
        clen = LUA_IDSIZE - 1;
    for (size_t k = clen; k > 0 && k + 20 > clen; k--)
        if (strncmp(msg, chunk, k) == 0 && msg[k] == ':' && msg[k + 1] >= '0' && msg[k + 1] <= '9')
            return msg + k + 1;
    return NULL;
}

/* Fills err after a failed (or limit-tainted) protected call; the error
 * message, if any, is at the top of the stack. */
static int classify(kiln_lua *K, int status, const char *chunk, kiln_err *err)
{
    lua_State *L = K->L;
    if (K->limit_hit)
        return kiln_err_set(err, KILN_ELIMIT, "%s: %s", chunk, K->limit_msg);
    if (status == LUA_ERRMEM)
        return kiln_err_set(err, KILN_ELIMIT, "%s: memory limit of %zu bytes exceeded", chunk,
                            K->limits.memory);
    if (status == LUA_ERRERR)
        return kiln_err_set(err, KILN_ELIMIT, "%s: stack overflow (error while handling an error)",
                            chunk);
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "unknown error";
    int code = strstr(msg, "stack overflow") ? KILN_ELIMIT : KILN_ESCRIPT;
    const char *rest = after_chunk(msg, chunk);
    if (rest)
        return kiln_err_set(err, code, "%s:%s", chunk, rest);
    return kiln_err_set(err, code, "%s: %s", chunk, msg);
}

int kiln_lua__protect(kiln_lua *K, lua_CFunction f, void *ud, const char *chunk, kiln_err *err)
{
    lua_State *L = K->L;
    int base = lua_gettop(L);
    lua_pushcfunction(L, msgh);
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, ud);
    arm(K);
    int status = lua_pcall(L, 1, 0, base + 1);
    disarm(K);
    int rc = 0;
    if (status != LUA_OK || K->limit_hit)
        rc = classify(K, status, chunk, err);
    lua_settop(L, base);
    if (rc != 0 && K->limit_hit)
        lua_gc(L, LUA_GCCOLLECT);
    return rc;
}

/* The full chunk name of fn (Lua's own is cut at LUA_IDSIZE). */
static const char *chunk_name(lua_State *L, int fn, char *buf, size_t n)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key);
    if (lua_rawgeti(L, -1, fn) == LUA_TSTRING)
        snprintf(buf, n, "%s", lua_tostring(L, -1));
    else
        snprintf(buf, n, "?");
    lua_pop(L, 2);
    return buf;
}

int kiln_lua__call(kiln_lua *K, int env, int fn, kiln_err *err)
{
    lua_State *L = K->L;
    int base = lua_gettop(L);
    lua_pushcfunction(L, msgh);
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, fn) != LUA_TFUNCTION) {
        lua_settop(L, base);
        return kiln_err_set(err, KILN_EINVAL, "lua: %d is not a compiled function handle", fn);
    }
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, env) != LUA_TTABLE ||
        lua_rawgeti(L, -1, 1) != LUA_TTABLE) {
        lua_settop(L, base);
        return kiln_err_set(err, KILN_EINVAL, "lua: %d is not an environment handle", env);
    }
    lua_remove(L, -2);
    if (lua_setupvalue(L, -2, 1) == NULL)
        lua_pop(L, 1); /* a chunk without _ENV: nothing global to see */
    arm(K);
    int status = lua_pcall(L, 0, 1, base + 1);
    disarm(K);
    if (status != LUA_OK || K->limit_hit) {
        char name[256];
        chunk_name(L, fn, name, sizeof name);
        int rc = classify(K, status, name, err);
        bool collect = K->limit_hit || status == LUA_ERRMEM;
        lua_settop(L, base);
        if (collect)
            lua_gc(L, LUA_GCCOLLECT);
        return rc;
    }
    lua_remove(L, base + 1);
    return 0;
}

/* ---- base-function wrappers ---- */

static bool is_protected(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return false;
    bool p = lua_rawgetp(L, -1, &protect_key) != LUA_TNIL;
    lua_pop(L, 2);
    return p;
}

/* A stack overflow caught by pcall would let a script recurse again and
 * again; treat it as the limit it is. */
static void check_overflow(lua_State *L, int status)
{
    kiln_lua *K = kiln_lua__from(L);
    if (K->limit_hit || status == LUA_OK)
        return;
    if (status == LUA_ERRERR ||
        (lua_type(L, -1) == LUA_TSTRING && strstr(lua_tostring(L, -1), "stack overflow"))) {
        K->limit_hit = true;
        snprintf(K->limit_msg, sizeof K->limit_msg, "stack overflow (recursion too deep)");
    }
}

static int raise_limit(lua_State *L)
{
    kiln_lua *K = kiln_lua__from(L);
    if (!K->limit_hit) { /* LUA_ERRMEM: the allocator refused twice */
        K->limit_hit = true;
        snprintf(K->limit_msg, sizeof K->limit_msg, "memory limit of %zu bytes exceeded",
                 K->limits.memory);
        append_where(L, K, 1);
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    }
    lua_pushstring(L, K->limit_msg);
    return lua_error(L);
}

/* pcall(f, ...): like Lua's, but a hit limit is re-raised, never returned. */
static int sb_pcall(lua_State *L)
{
    kiln_lua *K = kiln_lua__from(L);
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    check_overflow(L, status);
    if (K->limit_hit || status == LUA_ERRMEM)
        return raise_limit(L);
    lua_pushboolean(L, status == LUA_OK);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/* xpcall(f, msgh, ...): as pcall. */
static int sb_xpcall(lua_State *L)
{
    kiln_lua *K = kiln_lua__from(L);
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_copy(L, 2, 1);
    lua_replace(L, 2);
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
    check_overflow(L, status);
    if (K->limit_hit || status == LUA_ERRMEM)
        return raise_limit(L);
    lua_pushboolean(L, status == LUA_OK);
    lua_replace(L, 1);
    return lua_gettop(L);
}

/* rawset(t, k, v) that leaves kiln's read-only tables alone. */
static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (is_protected(L, 1))
        return luaL_error(L, "rawset: table is read-only");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* setmetatable(t, mt) without __gc: a finalizer would run outside any
 * evaluation's budget, at a time nobody chose. */
static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "setmetatable: __gc metamethods are not allowed");
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* Lua seeds its string hash per state, so next() visits string keys in an order
 * that changes from run to run. Renders must be deterministic, so pairs()
 * visits keys in a fixed order instead: numbers ascending, then strings in
 * byte order, then booleans (false first), then anything else as next() found
 * it. */
typedef struct pkey {
    int cls;
    bool isint;
    lua_Integer i;
    double d;
    const char *s;
    size_t len;
    int pos;
} pkey;

static int pkey_cmp(const void *pa, const void *pb)
{
    const pkey *a = pa, *b = pb;
    if (a->cls != b->cls)
        return a->cls < b->cls ? -1 : 1;
    int c = 0;
    switch (a->cls) {
    case 0:
        if (a->isint && b->isint)
            c = a->i < b->i ? -1 : a->i > b->i;
        else
            c = a->d < b->d ? -1 : a->d > b->d;
        break;
    case 1: {
        size_t n = a->len < b->len ? a->len : b->len;
        c = memcmp(a->s, b->s, n);
        if (c == 0)
            c = a->len < b->len ? -1 : a->len > b->len;
        break;
    }
    case 2:
        c = (int)a->i - (int)b->i;
        break;
    }
    if (c == 0)
        c = a->pos - b->pos;
    return c;
}

/* Iterator of sb_pairs; upvalues: the table, the ordered keys, the position. */
static int pairs_next(lua_State *L)
{
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(3));
    for (;;) {
        i++;
        if (lua_rawgeti(L, lua_upvalueindex(2), i) == LUA_TNIL)
            return 0;
        lua_pushvalue(L, -1);
        if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
            break;
        lua_pop(L, 2); /* removed during the traversal */
    }
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(3));
    return 2;
}

/* pairs(t): like Lua's (honours __pairs), in the order described above. */
static int sb_pairs(lua_State *L)
{
    luaL_checkany(L, 1);
    if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 3);
        return 3;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L); /* 2: keys in traversal order */
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if ((n & 255) == 0)
            kiln_lua__charge(L, 256 * 8); /* collecting and sorting the keys */
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 2, ++n);
    }
    pkey *keys = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *keys, 0); /* 3 */
    for (int k = 0; k < n; k++) {
        pkey *e = &keys[k];
        memset(e, 0, sizeof *e);
        e->pos = k + 1;
        switch (lua_rawgeti(L, 2, k + 1)) {
        case LUA_TNUMBER:
            e->cls = 0;
            e->isint = lua_isinteger(L, -1);
            e->i = lua_tointeger(L, -1);
            e->d = lua_tonumber(L, -1);
            break;
        case LUA_TSTRING:
            e->cls = 1;
            e->s = lua_tolstring(L, -1, &e->len); /* kept alive by table 2 */
            break;
        case LUA_TBOOLEAN:
            e->cls = 2;
            e->i = lua_toboolean(L, -1);
            break;
        default:
            e->cls = 3;
        }
        lua_pop(L, 1);
    }
    qsort(keys, (size_t)n, sizeof *keys, pkey_cmp);
    lua_pushvalue(L, 1);
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
        lua_rawgeti(L, 2, keys[k].pos);
        lua_rawseti(L, -2, k + 1);
    }
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, pairs_next, 3);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* tostring(v) without addresses: "table: 0x55..." would make a render differ
 * from run to run, so tables and functions print as their type name. */
static int sb_tostring(lua_State *L)
{
    luaL_checkany(L, 1);
    int t = lua_type(L, 1);
    if ((t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD ||
         t == LUA_TLIGHTUSERDATA) &&
        luaL_getmetafield(L, 1, "__tostring") == LUA_TNIL) {
        if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, 1) == KILN_LUA_NULL)
            lua_pushliteral(L, "null");
        else
            lua_pushstring(L, luaL_typename(L, 1));
        return 1;
    }
    lua_settop(L, 1);
    luaL_tolstring(L, 1, NULL);
    return 1;
}

static int readonly_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify read-only table (field '%s')",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

static int global_newindex(lua_State *L)
{
    return luaL_error(L, "assignment to undeclared global '%s' (use local)",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

/* Replaces the table at the top with a read-only proxy of it. */
static void make_readonly(lua_State *L)
{
    lua_newtable(L);          /* t proxy */
    lua_createtable(L, 0, 4); /* t proxy mt */
    lua_rotate(L, -3, -1);    /* proxy mt t */
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, readonly_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &protect_key);
    lua_setmetatable(L, -2);
}

void kiln_lua__add_lib(lua_State *L, const char *name, const luaL_Reg *l)
{
    lua_newtable(L);
    luaL_setfuncs(L, l, 0);
    lua_setfield(L, -2, name);
}

static void copy_fields(lua_State *L, int from, int to, const char *const *names)
{
    for (; *names; names++) {
        lua_getfield(L, from, *names);
        lua_setfield(L, to, *names);
    }
}

static int sb_rep(lua_State *L)
{
    size_t l = 0, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0) {
        size_t total = 0;
        if ((l + lsep > 0 && (size_t)n > ((size_t)-1 / 2) / (l + lsep)))
            kiln_lua__check_alloc(L, (size_t)-1 / 2, "string.rep");
        total = (l + lsep) * (size_t)n;
        kiln_lua__check_alloc(L, total, "string.rep");
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Library functions that loop in C (table.insert shifting a long list,
 * utf8.len over a long string) are wrapped to charge their work first:
 * upvalue 1 is the function, upvalue 2 how to size the work. */
enum { CHARGE_ARG1, CHARGE_MOVE, CHARGE_SORT, CHARGE_SHIFT };

static uint64_t arg_size(lua_State *L, int arg)
{
    switch (lua_type(L, arg)) {
    case LUA_TTABLE:
        return lua_rawlen(L, arg);
    case LUA_TSTRING:
        return lua_rawlen(L, arg) / KILN_LUA_BYTES_PER_STEP;
    default:
        return 0;
    }
}

static int charged(lua_State *L)
{
    uint64_t n = arg_size(L, 1);
    switch (lua_tointeger(L, lua_upvalueindex(2))) {
    case CHARGE_MOVE: /* table.move(a1, f, e, t [, a2]) */
        if (lua_type(L, 2) == LUA_TNUMBER && lua_type(L, 3) == LUA_TNUMBER) {
            int okf = 0, oke = 0;
            lua_Integer f = lua_tointegerx(L, 2, &okf), e = lua_tointegerx(L, 3, &oke);
            if (okf && oke)
                n = e >= f ? (uint64_t)e - (uint64_t)f + 1 : 0;
        }
        break;
    case CHARGE_SHIFT: /* insert(t, pos, v) / remove(t, pos): elements after pos move */
        if (lua_gettop(L) == (lua_tointeger(L, lua_upvalueindex(3)))) {
            int okp = 0;
            lua_Integer pos = lua_tointegerx(L, 2, &okp);
            if (!okp)
                pos = 1;
            n = pos >= 1 && (uint64_t)pos <= n ? n - (uint64_t)pos : 0;
        } else {
            n = 0;
        }
        break;
    case CHARGE_SORT:
        for (uint64_t m = n; m > 1; m >>= 1)
            n += lua_rawlen(L, 1);
        break;
    }
    kiln_lua__charge(L, n);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Wraps t[name] (t at idx) with charged(); nargs is the argument count at
 * which CHARGE_SHIFT applies. */
static void wrap_charged(lua_State *L, int idx, const char *name, int mode, int nargs)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, name);
    lua_pushinteger(L, mode);
    lua_pushinteger(L, nargs);
    lua_pushcclosure(L, charged, 3);
    lua_setfield(L, idx, name);
}

/* Builds B (see the top of the file) and the string metatable. */
static int open_sandbox(lua_State *L)
{
    static const char *const base_names[] = {
        "assert", "error",  "getmetatable", "ipairs", "next",     "rawequal", "rawget",
        "rawlen", "select", "tonumber",     "type",   "_VERSION", NULL};
    static const char *const string_names[] = {"byte",  "char",   "format",   "len",
                                               "lower", "pack",   "packsize", "reverse",
                                               "sub",   "unpack", "upper",    NULL};
    static const char *const table_names[] = {"concat", "insert", "move",   "pack",
                                              "remove", "sort",   "unpack", NULL};
    static const char *const math_names[] = {
        "abs", "ceil",       "cos",  "deg",        "exp",  "floor", "fmod", "huge", "log",
        "max", "maxinteger", "min",  "mininteger", "modf", "pi",    "rad",  "sin",  "sqrt",
        "tan", "tointeger",  "type", "ult",        "asin", "acos",  "atan", NULL};
    static const char *const utf8_names[] = {"char", "charpattern", "codes", "codepoint",
                                             "len",  "offset",      NULL};

    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    int g = lua_absindex(L, -5), str = g + 1, tab = g + 2, math = g + 3, utf = g + 4;

    lua_newtable(L); /* B */
    int b = lua_gettop(L);
    copy_fields(L, g, b, base_names);
    lua_pushcfunction(L, sb_pairs);
    lua_setfield(L, b, "pairs");
    lua_pushcfunction(L, sb_tostring);
    lua_setfield(L, b, "tostring");
    wrap_charged(L, b, "tonumber", CHARGE_ARG1, 0);
    lua_pushcfunction(L, sb_pcall);
    lua_setfield(L, b, "pcall");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, b, "xpcall");
    lua_pushcfunction(L, sb_rawset);
    lua_setfield(L, b, "rawset");
    lua_pushcfunction(L, sb_setmetatable);
    lua_setfield(L, b, "setmetatable");

    /* string: a fresh table, so the original (with dump) stays unreachable. */
    lua_newtable(L);
    copy_fields(L, str, lua_gettop(L), string_names);
    lua_getfield(L, str, "rep");
    lua_pushcclosure(L, sb_rep, 1);
    lua_setfield(L, -2, "rep");
    kiln_lua__open_pattern(L);
    /* The shared string metatable: methods come from our table, and
     * getmetatable("") returns false so nobody can reach either. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    make_readonly(L);
    lua_setfield(L, b, "string");

    lua_newtable(L);
    copy_fields(L, tab, lua_gettop(L), table_names);
    wrap_charged(L, -1, "concat", CHARGE_ARG1, 0);
    wrap_charged(L, -1, "insert", CHARGE_SHIFT, 3);
    wrap_charged(L, -1, "remove", CHARGE_SHIFT, 2);
    wrap_charged(L, -1, "unpack", CHARGE_ARG1, 0);
    wrap_charged(L, -1, "move", CHARGE_MOVE, 0);
    wrap_charged(L, -1, "sort", CHARGE_SORT, 0);
    make_readonly(L);
    lua_setfield(L, b, "table");
    lua_newtable(L);
    copy_fields(L, math, lua_gettop(L), math_names);
    make_readonly(L);
    lua_setfield(L, b, "math");
    lua_newtable(L);
    copy_fields(L, utf, lua_gettop(L), utf8_names);
    wrap_charged(L, -1, "len", CHARGE_ARG1, 0);
    wrap_charged(L, -1, "offset", CHARGE_ARG1, 0);
    wrap_charged(L, -1, "codepoint", CHARGE_ARG1, 0);
    make_readonly(L);
    lua_setfield(L, b, "utf8");

    /* kiln's helper library: each opener adds its table (or functions) to B. */
    lua_pushvalue(L, b);
    kiln_lua__open_base(L);
    kiln_lua__open_k8s(L);
    kiln_lua__open_json(L);
    kiln_lua__open_str(L);
    kiln_lua__open_list(L);
    kiln_lua__open_hash(L);
    kiln_lua__open_b64(L);
    kiln_lua__open_semver(L);
    kiln_lua__open_quantity(L);
    kiln_lua__open_recipe(L);
    lua_pop(L, 1);
    /* Library tables become read-only proxies. */
    static const char *const libs[] = {"k8s", "json",   "str",      "list",   "hash",
                                       "b64", "semver", "quantity", "recipe", NULL};
    for (const char *const *n = libs; *n; n++) {
        if (lua_getfield(L, b, *n) == LUA_TTABLE) {
            make_readonly(L);
            lua_setfield(L, b, *n);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, b);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lib_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &names_key);
    return 0;
}

static int init_protected(lua_State *L)
{
    lua_settop(L, 0);
    return open_sandbox(L);
}

static int sb_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "kiln: unprotected Lua error: %s\n", msg ? msg : "?");
    abort();
}

kiln_lua *kiln_lua_new(const kiln_lua_limits *limits)
{
    kiln_lua *K = kiln_xcalloc(1, sizeof *K);
    if (limits)
        K->limits = *limits;
    else
        kiln_lua_limits_default(&K->limits);
    /* The library itself must fit whatever the caller chose. */
    kiln_lua_limits lim = K->limits;
    K->limits.memory = (size_t)-1;
    K->time_limit_ns = (uint64_t)KILN_LUA_DEFAULT_TIME_LIMIT_MS * 1000000u;
    K->L = lua_newstate(sb_alloc, K);
    if (K->L == NULL)
        abort();
    lua_atpanic(K->L, sb_panic);
    kiln_err err;
    if (kiln_lua__protect(K, init_protected, NULL, "lua", &err) != 0) {
        fprintf(stderr, "kiln: cannot set up the Lua sandbox: %s\n", err.msg);
        abort();
    }
    lua_gc(K->L, LUA_GCCOLLECT);
    K->limits = lim;
    return K;
}

void kiln_lua_free(kiln_lua *K)
{
    if (K == NULL)
        return;
    lua_close(K->L);
    kiln_xfree(K);
}

/* ---- environments ---- */

typedef struct env_args {
    kiln_lua *K;
    const char *src;
    const char *chunkname;
    int ref;
} env_args;

static int env_new_protected(lua_State *L)
{
    env_args *a = lua_touserdata(L, 1);
    lua_createtable(L, 3, 0); /* record */
    int rec = lua_gettop(L);

    lua_newtable(L); /* V */
    lua_createtable(L, 0, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lib_key);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    int v = lua_gettop(L);

    lua_newtable(L); /* H */
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, v);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    int h = lua_gettop(L);

    lua_newtable(L); /* E */
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, h);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, h); /* while the helpers run, their globals land in H */
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &protect_key);
    lua_pushvalue(L, -1);
    lua_setmetatable(L, -3);
    int emt = lua_gettop(L);
    int e = emt - 1;

    if (a->src != NULL) {
        char name[160];
        snprintf(name, sizeof name, "=%s", a->chunkname ? a->chunkname : "lua");
        if (luaL_loadbufferx(L, a->src, strlen(a->src), name, "t") != LUA_OK)
            return lua_error(L);
        lua_pushvalue(L, e);
        lua_setupvalue(L, -2, 1);
        lua_call(L, 0, 0);
    }
    lua_pushcfunction(L, global_newindex);
    lua_setfield(L, emt, "__newindex");

    lua_pushvalue(L, e);
    lua_rawseti(L, rec, 1);
    lua_pushvalue(L, h);
    lua_rawseti(L, rec, 2);
    lua_pushvalue(L, v);
    lua_rawseti(L, rec, 3);
    lua_pushvalue(L, rec);
    a->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int kiln_lua_env_new(kiln_lua *K, int *out_env, const char *helpers_src, const char *chunkname,
                     kiln_err *err)
{
    env_args a = {K, helpers_src, chunkname, LUA_NOREF};
    int rc = kiln_lua__protect(K, env_new_protected, &a, chunkname ? chunkname : "lua", err);
    if (rc != 0)
        return rc;
    *out_env = a.ref;
    return 0;
}

void kiln_lua_env_free(kiln_lua *K, int env)
{
    if (K == NULL || env <= 0)
        return;
    luaL_unref(K->L, LUA_REGISTRYINDEX, env);
}

typedef struct set_args {
    int env;
    const char *name;
    const json_t *value;
} set_args;

static int env_set_protected(lua_State *L)
{
    set_args *a = lua_touserdata(L, 1);
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, a->env) != LUA_TTABLE ||
        lua_rawgeti(L, -1, 3) != LUA_TTABLE)
        return luaL_error(L, "%d is not an environment handle", a->env);
    lua_pushstring(L, a->name);
    if (a->value)
        kiln_lua__push_json(L, a->value);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    return 0;
}

int kiln_lua_env_set(kiln_lua *K, int env, const char *name, const json_t *value, kiln_err *err)
{
    set_args a = {env, name, value};
    int rc = kiln_lua__protect(K, env_set_protected, &a, name, err);
    return rc;
}

void kiln_lua_env_clear(kiln_lua *K, int env)
{
    lua_State *L = K->L;
    int base = lua_gettop(L);
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, env) == LUA_TTABLE &&
        lua_rawgeti(L, -1, 3) == LUA_TTABLE) {
        /* Assigning nil to existing fields during traversal is allowed and
         * never allocates. */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, -4);
        }
    }
    lua_settop(L, base);
}

/* ---- compile ---- */

/* Lua's message without its "chunk:line:" prefix. */
static const char *strip_position(const char *msg)
{
    const char *p = strstr(msg, ":");
    while (p) {
        const char *q = p + 1;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q > p + 1 && *q == ':')
            return q + 1;
        p = strstr(p + 1, ":");
    }
    return msg;
}

/* Column of a syntax error. Lua names the line and the token it stopped at;
 * that token may occur more than once on the line, so each occurrence is tried:
 * the right one is the first whose prefix (up to and including it) fails with
 * the same message, since everything before the real culprit parses. */
static size_t error_column(lua_State *L, const char *src, const char *prefix, long line,
                           const char *token, const char *msg)
{
    const char *p = src;
    for (long l = 1; l < line && *p; p++)
        if (*p == '\n')
            l++;
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (token == NULL || strcmp(token, "<eof>") == 0)
        return len + 1;
    size_t tl = strlen(token), first = 0;
    int tries = 0;
    /* At most 32 reparses, so a long line of repeated tokens stays cheap. */
    for (size_t i = 0; tl > 0 && i + tl <= len && tries < 32; i++) {
        if (memcmp(p + i, token, tl) != 0)
            continue;
        tries++;
        if (first == 0)
            first = i + 1;
        kiln_buf b;
        kiln_buf_init(&b, KILN_BUF_DEFAULT_LIMIT);
        kiln_buf_printf(&b, NULL, "%s%.*s", prefix, (int)(p + i + tl - src), src);
        bool same = false;
        if (b.data && luaL_loadbufferx(L, b.data, b.len, "=x", "t") != LUA_OK) {
            const char *m = lua_tostring(L, -1);
            same = m && strcmp(strip_position(m), msg) == 0;
        }
        lua_pop(L, 1);
        kiln_buf_free(&b);
        if (same)
            return i + 1;
    }
    /* Not in the text: the closing parenthesis kiln added. */
    return first ? first : len + 1;
}

static long count_lines(const char *s)
{
    long n = 1;
    for (; *s; s++)
        if (*s == '\n')
            n++;
    return n;
}

/* Rewrites Lua's "chunk:LINE: msg near 'tok'" into "chunk:LINE:COL: msg near 'tok'". */
static int syntax_error(lua_State *L, kiln_err *err, const char *luamsg, const char *chunk,
                        const char *src, const char *prefix)
{
    const char *p = after_chunk(luamsg, chunk);
    if (p == NULL)
        p = luamsg;
    char *end = NULL;
    long line = strtol(p, &end, 10);
    if (end == p || *end != ':')
        return kiln_err_set(err, KILN_ESCRIPT, "%s: %s", chunk, luamsg);
    const char *msg = end + 1;
    while (*msg == ' ')
        msg++;
    char token[64] = "";
    const char *near = strstr(msg, " near ");
    if (near) {
        const char *t = near + 6;
        if (*t == '\'') {
            t++;
            const char *q = strrchr(t, '\'');
            size_t n = q && q > t ? (size_t)(q - t) : strlen(t);
            if (n >= sizeof token)
                n = sizeof token - 1;
            memcpy(token, t, n);
            token[n] = '\0';
        } else {
            snprintf(token, sizeof token, "%s", t);
        }
    }
    long lines = count_lines(src);
    if (line > lines) { /* past the end: our closing parenthesis */
        line = lines;
        snprintf(token, sizeof token, "<eof>");
    }
    char *msgcopy = kiln_xstrdup(end + 1);
    size_t col = error_column(L, src, prefix, line, near ? token : NULL, msgcopy);
    kiln_xfree(msgcopy);
    return kiln_err_set(err, KILN_ESCRIPT, "%s:%ld:%zu: syntax error: %s", chunk, line, col, msg);
}

typedef struct compile_args {
    const char *code;
    size_t len;
    const char *chunkname;
    int ref;
    bool syntax;
} compile_args;

static int compile_protected(lua_State *L)
{
    compile_args *a = lua_touserdata(L, 1);
    char name[160];
    snprintf(name, sizeof name, "=%s", a->chunkname);
    int st = luaL_loadbufferx(L, a->code, a->len, name, "t");
    if (st != LUA_OK) {
        a->syntax = st == LUA_ERRSYNTAX;
        return lua_error(L);
    }
    /* Until its first call a chunk must not see the real globals. */
    lua_newtable(L);
    lua_setupvalue(L, -2, 1);
    a->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key);
    lua_pushstring(L, a->chunkname);
    lua_rawseti(L, -2, a->ref);
    return 0;
}

static int compile(kiln_lua *K, int *out_fn, const char *code, size_t len, const char *src,
                   const char *chunkname, bool expr, kiln_err *err)
{
    compile_args a = {code, len, chunkname, LUA_NOREF, false};
    lua_State *L = K->L;
    int base = lua_gettop(L);
    lua_pushcfunction(L, msgh);
    lua_pushcfunction(L, compile_protected);
    lua_pushlightuserdata(L, &a);
    arm(K);
    int st = lua_pcall(L, 1, 0, base + 1);
    disarm(K);
    int rc = 0;
    if (st != LUA_OK || K->limit_hit) {
        if (a.syntax && !K->limit_hit && lua_type(L, -1) == LUA_TSTRING)
            rc = syntax_error(L, err, lua_tostring(L, -1), chunkname, src, expr ? "return (" : "");
        else
            rc = classify(K, st, chunkname, err);
    }
    lua_settop(L, base);
    if (rc == 0)
        *out_fn = a.ref;
    return rc;
}

int kiln_lua_compile_expr(kiln_lua *K, int *out_fn, const char *expr, const char *chunkname,
                          kiln_err *err)
{
    if (expr == NULL || strspn(expr, " \t\r\n") == strlen(expr))
        return kiln_err_set(err, KILN_ESCRIPT, "%s: empty expression", chunkname);
    /* The closing parenthesis goes on the same line, so runtime errors name
     * the expression's own line; only when that fails (a trailing comment
     * swallowed it) is it retried on a line of its own. */
    kiln_buf b;
    kiln_buf_init(&b, KILN_BUF_DEFAULT_LIMIT);
    int rc = kiln_buf_printf(&b, err, "return (%s)", expr);
    if (rc == 0)
        rc = compile(K, out_fn, b.data, b.len, expr, chunkname, true, err);
    if (rc == KILN_ESCRIPT && strstr(expr, "--") != NULL) {
        kiln_buf_reset(&b);
        kiln_err again;
        if (kiln_buf_printf(&b, &again, "return (%s\n)", expr) == 0 &&
            compile(K, out_fn, b.data, b.len, expr, chunkname, true, &again) == 0) {
            kiln_err_clear(err);
            rc = 0;
        }
    }
    /* The parentheses must be the expression's own: "a) or (b" compiles
     * inside "return (...)" but is not an expression. */
    if (rc == 0) {
        lua_State *L = K->L;
        kiln_buf_reset(&b);
        char name[160];
        snprintf(name, sizeof name, "=%s", chunkname);
        if (kiln_buf_printf(&b, err, "return %s\n", expr) == 0 &&
            luaL_loadbufferx(L, b.data, b.len, name, "t") == LUA_ERRSYNTAX) {
            rc = syntax_error(L, err, lua_tostring(L, -1), chunkname, expr, "return ");
            kiln_lua_release(K, *out_fn);
            *out_fn = 0;
        }
        lua_pop(L, 1);
    }
    kiln_buf_free(&b);
    return rc;
}

int kiln_lua_compile_script(kiln_lua *K, int *out_fn, const char *src, const char *chunkname,
                            kiln_err *err)
{
    return compile(K, out_fn, src, strlen(src), src, chunkname, false, err);
}

void kiln_lua_release(kiln_lua *K, int fn)
{
    if (K == NULL || fn <= 0)
        return;
    lua_State *L = K->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key);
    lua_pushnil(L);
    lua_rawseti(L, -2, fn);
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, fn);
}

/* ---- eval ---- */

int kiln_lua_eval(kiln_lua *K, json_t **out, int env, int fn, kiln_err *err)
{
    *out = NULL;
    int rc = kiln_lua__call(K, env, fn, err);
    if (rc != 0)
        return rc;
    rc = kiln_lua__to_json(K, out, -1, err);
    lua_pop(K->L, 1);
    return rc;
}

uint64_t kiln_lua_last_instructions(const kiln_lua *K)
{
    return K->last_instructions;
}

size_t kiln_lua_memory_in_use(const kiln_lua *K)
{
    return K->mem_peak;
}

void kiln_lua_set_time_limit(kiln_lua *K, uint64_t ms)
{
    K->time_limit_ns = ms * 1000000u;
}

const char *kiln_lua_last_traceback(const kiln_lua *K)
{
    return K->traceback;
}
