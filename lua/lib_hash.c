/* lua/lib_hash.c: hash.sha256, hash.fnv64a and hash.short.
 *
 * Hex digests for naming and checksums (a ConfigMap's checksum annotation, a
 * stable name suffix). OpenSSL does SHA-256; FNV-1a is a few lines.
 */
#include <lauxlib.h>
#include <lua.h>
#include <openssl/sha.h>
#include <stdio.h>

#include "lua/internal.h"

static void sha256_hex(const char *s, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    static const char hex[] = "0123456789abcdef";
    SHA256((const unsigned char *)s, len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

uint64_t kiln_lua__fnv64a(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* hash.sha256(s) -> 64 lowercase hex digits. */
static int l_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    kiln_lua__charge(L, len / KILN_LUA_BYTES_PER_STEP);
    char out[65];
    sha256_hex(s, len, out);
    lua_pushlstring(L, out, 64);
    return 1;
}

/* hash.fnv64a(s) -> 16 lowercase hex digits. */
static int l_fnv64a(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    kiln_lua__charge(L, len / KILN_LUA_BYTES_PER_STEP);
    char out[17];
    snprintf(out, sizeof out, "%016llx", (unsigned long long)kiln_lua__fnv64a(s, len));
    lua_pushlstring(L, out, 16);
    return 1;
}

/* hash.short(s [, n = 8]) -> the first n hex digits of sha256(s). */
static int l_short(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    kiln_lua__charge(L, len / KILN_LUA_BYTES_PER_STEP);
    lua_Integer n = luaL_optinteger(L, 2, 8);
    luaL_argcheck(L, n >= 1 && n <= 64, 2, "length must be between 1 and 64");
    char out[65];
    sha256_hex(s, len, out);
    lua_pushlstring(L, out, (size_t)n);
    return 1;
}

void kiln_lua__open_hash(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sha256", l_sha256}, {"fnv64a", l_fnv64a}, {"short", l_short}, {NULL, NULL}};
    kiln_lua__add_lib(L, "hash", fns);
}
