/* lua/lib_str.c: the str helper table: plain (pattern-free) string functions.
 *
 * Everything here treats its arguments as plain text, so "." or "%" in a
 * separator means itself. Each function is linear in its input, and results
 * are bounded by the memory cap.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "lua/internal.h"

/* Checks string argument arg and charges scanning it to the budget. */
static const char *check_text(lua_State *L, int arg, size_t *len)
{
    const char *s = luaL_checklstring(L, arg, len);
    kiln_lua__charge(L, *len / KILN_LUA_BYTES_PER_STEP);
    return s;
}

static const char *find_plain(const char *s, size_t len, const char *pat, size_t plen)
{
    if (plen == 0)
        return s;
    while (len >= plen) {
        const char *p = memchr(s, pat[0], len - plen + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p, pat, plen) == 0)
            return p;
        len -= (size_t)(p + 1 - s);
        s = p + 1;
    }
    return NULL;
}

/* str.split(s, sep) -> list of the pieces between occurrences of sep. */
static int l_split(lua_State *L)
{
    size_t len, slen;
    const char *s = check_text(L, 1, &len);
    const char *sep = luaL_checklstring(L, 2, &slen);
    luaL_argcheck(L, slen > 0, 2, "separator must not be empty");
    lua_newtable(L);
    lua_Integer i = 1;
    const char *end = s + len, *p;
    while ((p = find_plain(s, (size_t)(end - s), sep, slen)) != NULL) {
        lua_pushlstring(L, s, (size_t)(p - s));
        lua_rawseti(L, -2, i++);
        s = p + slen;
    }
    lua_pushlstring(L, s, (size_t)(end - s));
    lua_rawseti(L, -2, i);
    return 1;
}

/* str.join(list, sep) -> string; items must be strings or numbers. */
static int l_join(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t slen = 0;
    const char *sep = luaL_optlstring(L, 2, "", &slen);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 1, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            return luaL_error(L, "str.join: item %d is a %s, not a string or number", (int)i,
                              lua_typename(L, t));
        luaL_addvalue(&b);
        if (i < n)
            luaL_addlstring(&b, sep, slen);
    }
    luaL_pushresult(&b);
    return 1;
}

/* str.trim(s) -> s without leading and trailing whitespace. */
static int l_trim(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, &len);
    size_t a = 0, b = len;
    while (a < b && isspace((unsigned char)s[a]))
        a++;
    while (b > a && isspace((unsigned char)s[b - 1]))
        b--;
    lua_pushlstring(L, s + a, b - a);
    return 1;
}

static int l_starts_with(lua_State *L)
{
    size_t len, plen;
    const char *s = check_text(L, 1, &len);
    const char *p = luaL_checklstring(L, 2, &plen);
    lua_pushboolean(L, plen <= len && memcmp(s, p, plen) == 0);
    return 1;
}

static int l_ends_with(lua_State *L)
{
    size_t len, plen;
    const char *s = check_text(L, 1, &len);
    const char *p = luaL_checklstring(L, 2, &plen);
    lua_pushboolean(L, plen <= len && memcmp(s + len - plen, p, plen) == 0);
    return 1;
}

static int l_contains(lua_State *L)
{
    size_t len, plen;
    const char *s = check_text(L, 1, &len);
    const char *p = luaL_checklstring(L, 2, &plen);
    lua_pushboolean(L, find_plain(s, len, p, plen) != NULL);
    return 1;
}

/* str.replace(s, old, new) -> s with every occurrence of old replaced. */
static int l_replace(lua_State *L)
{
    size_t len, olen, nlen;
    const char *s = check_text(L, 1, &len);
    const char *old = luaL_checklstring(L, 2, &olen);
    const char *rep = luaL_checklstring(L, 3, &nlen);
    luaL_argcheck(L, olen > 0, 2, "the text to replace must not be empty");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *end = s + len, *p;
    while ((p = find_plain(s, (size_t)(end - s), old, olen)) != NULL) {
        luaL_addlstring(&b, s, (size_t)(p - s));
        luaL_addlstring(&b, rep, nlen);
        s = p + olen;
    }
    luaL_addlstring(&b, s, (size_t)(end - s));
    luaL_pushresult(&b);
    return 1;
}

static int map_case(lua_State *L, int (*f)(int))
{
    size_t len;
    const char *s = check_text(L, 1, &len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, len);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)f((unsigned char)s[i]);
    luaL_pushresultsize(&b, len);
    return 1;
}

static int l_lower(lua_State *L)
{
    return map_case(L, tolower);
}

static int l_upper(lua_State *L)
{
    return map_case(L, toupper);
}

/* str.pad_left(s, n [, ch = " "]) -> s left-padded with ch to n bytes. */
static int l_pad_left(lua_State *L)
{
    size_t len, clen;
    const char *s = check_text(L, 1, &len);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *ch = luaL_optlstring(L, 3, " ", &clen);
    luaL_argcheck(L, clen == 1, 3, "pad must be one character");
    if (n <= (lua_Integer)len) {
        lua_settop(L, 1);
        return 1;
    }
    kiln_lua__check_alloc(L, (size_t)n, "str.pad_left");
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, (size_t)n);
    memset(out, ch[0], (size_t)n - len);
    memcpy(out + (size_t)n - len, s, len);
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

/* str.truncate(s, n) -> the first n bytes of s. */
static int l_truncate(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, &len);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "length must not be negative");
    lua_pushlstring(L, s, (size_t)n < len ? (size_t)n : len);
    return 1;
}

/* str.lines(s) -> list of lines ("\n" or "\r\n"); a final newline ends the
 * last line rather than starting an empty one. */
static int l_lines(lua_State *L)
{
    size_t len;
    const char *s = check_text(L, 1, &len);
    const char *end = s + len;
    lua_newtable(L);
    lua_Integer i = 1;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        size_t l = (size_t)(e - s);
        if (l > 0 && s[l - 1] == '\r')
            l--;
        lua_pushlstring(L, s, l);
        lua_rawseti(L, -2, i++);
        s = nl ? nl + 1 : end;
    }
    if (i == 1)
        kiln_lua__mark(L, -1, true);
    return 1;
}

void kiln_lua__open_str(lua_State *L)
{
    static const luaL_Reg fns[] = {{"split", l_split},
                                   {"join", l_join},
                                   {"trim", l_trim},
                                   {"starts_with", l_starts_with},
                                   {"ends_with", l_ends_with},
                                   {"contains", l_contains},
                                   {"replace", l_replace},
                                   {"lower", l_lower},
                                   {"upper", l_upper},
                                   {"pad_left", l_pad_left},
                                   {"truncate", l_truncate},
                                   {"lines", l_lines},
                                   {NULL, NULL}};
    kiln_lua__add_lib(L, "str", fns);
    /* str.format is string.format. */
    lua_getfield(L, -1, "str");
    lua_getfield(L, -2, "string");
    lua_getfield(L, -1, "format");
    lua_setfield(L, -3, "format");
    lua_pop(L, 2);
}
