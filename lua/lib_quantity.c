/* lua/lib_quantity.c: Kubernetes resource quantities ("500m", "1Gi", "1e3").
 *
 * Grammar (k8s.io/apimachinery resource.Quantity): a signed decimal number
 * followed by a binary suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (n u m k M
 * G T P E) or a decimal exponent (e3, E-2). Values are returned as Lua numbers:
 * an integer when the quantity is a whole number that fits, else a float.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua/internal.h"

bool kiln_lua__quantity_parse(const char *s, double *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    const char *num = p;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (p == num || (p == num + 1 && *num == '.'))
        return false;
    char buf[64];
    size_t nlen = (size_t)(p - s);
    if (nlen >= sizeof buf)
        return false;
    memcpy(buf, s, nlen);
    buf[nlen] = '\0';
    double v = strtod(buf, NULL);
    static const struct {
        const char *suffix;
        double mul;
    } suffixes[] = {{"Ki", 1024.0},
                    {"Mi", 1048576.0},
                    {"Gi", 1073741824.0},
                    {"Ti", 1099511627776.0},
                    {"Pi", 1125899906842624.0},
                    {"Ei", 1152921504606846976.0},
                    {"n", 1e-9},
                    {"u", 1e-6},
                    {"m", 1e-3},
                    {"", 1},
                    {"k", 1e3},
                    {"M", 1e6},
                    {"G", 1e9},
                    {"T", 1e12},
                    {"P", 1e15},
                    {"E", 1e18}};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if (strcmp(p, suffixes[i].suffix) == 0) {
            *out = v * suffixes[i].mul;
            return true;
        }
    }
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (!isdigit((unsigned char)*q) || strlen(q) > 4)
            return false;
        const char *d = q;
        while (isdigit((unsigned char)*d))
            d++;
        if (*d != '\0')
            return false;
        *out = v * pow(10.0, (double)atoi(p + 1));
        return isfinite(*out);
    }
    return false;
}

/* Pushes d as an integer when it is a whole number that fits, else a float. */
static void push_number(lua_State *L, double d)
{
    if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18)
        lua_pushinteger(L, (lua_Integer)d);
    else
        lua_pushnumber(L, d);
}

/* A quantity argument: a string to parse or a number as is. */
static double check_quantity(lua_State *L, int arg)
{
    if (lua_type(L, arg) == LUA_TNUMBER)
        return lua_tonumber(L, arg);
    const char *s = luaL_checkstring(L, arg);
    double d = 0;
    if (!kiln_lua__quantity_parse(s, &d))
        luaL_error(L, "invalid quantity \"%s\"", s);
    return d;
}

/* quantity.parse(s) -> number. */
static int l_parse(lua_State *L)
{
    push_number(L, check_quantity(L, 1));
    return 1;
}

/* quantity.cmp(a, b) -> -1, 0 or 1. */
static int l_cmp(lua_State *L)
{
    double a = check_quantity(L, 1), b = check_quantity(L, 2);
    lua_pushinteger(L, a < b ? -1 : a > b);
    return 1;
}

/* quantity.add(a, b) -> number. */
static int l_add(lua_State *L)
{
    push_number(L, check_quantity(L, 1) + check_quantity(L, 2));
    return 1;
}

int kiln_lua__quantity_l_parse(lua_State *L)
{
    return l_parse(L);
}

void kiln_lua__open_quantity(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"parse", l_parse}, {"cmp", l_cmp}, {"add", l_add}, {NULL, NULL}};
    kiln_lua__add_lib(L, "quantity", fns);
}
