/* lua/lib_b64.c: b64.encode and b64.decode (standard alphabet, RFC 4648).
 *
 * Secrets' data is base64; decode is strict so a typo fails the render
 * instead of producing garbage bytes.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "lua/internal.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64.encode(s) -> padded base64. */
static int l_encode(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    kiln_lua__charge(L, len / KILN_LUA_BYTES_PER_STEP);
    kiln_lua__check_alloc(L, len / 3 * 4 + 4, "b64.encode");
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, (len + 2) / 3 * 4);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < len)
            v |= s[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    luaL_pushresultsize(&b, o);
    return 1;
}

static int value_of(unsigned char c)
{
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

/* b64.decode(s) -> bytes; padding may be omitted; anything else invalid is an error. */
static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    kiln_lua__charge(L, len / KILN_LUA_BYTES_PER_STEP);
    size_t n = len;
    while (n > 0 && s[n - 1] == '=' && len - n < 2)
        n--;
    if (n % 4 == 1 || (len != n && len % 4 != 0))
        return luaL_error(L, "b64.decode: invalid length %d", (int)len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n / 4 * 3 + 3);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = value_of((unsigned char)s[i]);
        if (v < 0)
            return luaL_error(L, "b64.decode: invalid character at position %d", (int)i + 1);
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    luaL_pushresultsize(&b, o);
    return 1;
}

void kiln_lua__open_b64(lua_State *L)
{
    static const luaL_Reg fns[] = {{"encode", l_encode}, {"decode", l_decode}, {NULL, NULL}};
    kiln_lua__add_lib(L, "b64", fns);
}
