/* lua/lib_semver.c: semantic versions (semver 2.0.0) and npm-style ranges.
 *
 * parse and compare follow semver.org: numeric MAJOR.MINOR.PATCH without
 * leading zeros, an optional -prerelease and +build; precedence ignores build
 * metadata. A leading "v" is accepted, because chart and image tags carry one.
 * Ranges: comparators (>=, >, <=, <, =, bare), partial versions (1.2, 1.x, *),
 * caret (^) and tilde (~), joined by spaces (and) and "||" (or). Unlike npm,
 * a prerelease is compared by precedence only.
 */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "lua/internal.h"

typedef struct ver {
    long long part[3];
    int nparts; /* how many of major/minor/patch were given (not wildcards) */
    char pre[128];
    char build[128];
} ver;

/* Parses a numeric identifier without leading zeros; returns the end or NULL. */
static const char *parse_num(const char *p, long long *out)
{
    if (!isdigit((unsigned char)*p))
        return NULL;
    if (*p == '0' && isdigit((unsigned char)p[1]))
        return NULL;
    long long v = 0;
    while (isdigit((unsigned char)*p)) {
        if (v > 100000000000000LL)
            return NULL;
        v = v * 10 + (*p++ - '0');
    }
    *out = v;
    return p;
}

/* Dot-separated identifiers of [0-9A-Za-z-]; numeric ones without leading
 * zeros when strict_num. Copies into out; returns the end or NULL. */
static const char *parse_idents(const char *p, char *out, size_t n, bool strict_num)
{
    const char *start = p;
    for (;;) {
        const char *id = p;
        bool numeric = true;
        while (isalnum((unsigned char)*p) || *p == '-') {
            if (!isdigit((unsigned char)*p))
                numeric = false;
            p++;
        }
        if (p == id)
            return NULL;
        if (strict_num && numeric && *id == '0' && p - id > 1)
            return NULL;
        if (*p != '.')
            break;
        p++;
    }
    if ((size_t)(p - start) >= n)
        return NULL;
    memcpy(out, start, (size_t)(p - start));
    out[p - start] = '\0';
    return p;
}

/* Parses a version; with partial, missing or wildcard (x, X, *) parts are
 * allowed and counted in nparts. Returns the end of the version or NULL. */
static const char *parse_ver(const char *p, ver *v, bool partial)
{
    memset(v, 0, sizeof *v);
    if (*p == 'v' || *p == 'V')
        p++;
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != '.') {
                if (partial)
                    return p;
                return NULL;
            }
            p++;
        }
        if (partial && (*p == 'x' || *p == 'X' || *p == '*')) {
            p++;
            /* Everything after a wildcard is a wildcard too. */
            while (*p == '.' && (p[1] == 'x' || p[1] == 'X' || p[1] == '*'))
                p += 2;
            return p;
        }
        p = parse_num(p, &v->part[i]);
        if (p == NULL)
            return NULL;
        v->nparts = i + 1;
    }
    if (*p == '-') {
        p = parse_idents(p + 1, v->pre, sizeof v->pre, true);
        if (p == NULL)
            return NULL;
    }
    if (*p == '+') {
        p = parse_idents(p + 1, v->build, sizeof v->build, false);
        if (p == NULL)
            return NULL;
    }
    return p;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

static int cmp_pre(const char *a, const char *b)
{
    if (!*a || !*b)
        return !*a && !*b ? 0 : (!*a ? 1 : -1); /* no prerelease ranks higher */
    for (;;) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        bool na = all_digits(a, la), nb = all_digits(b, lb);
        int c;
        if (na && nb) {
            c = la != lb ? (la < lb ? -1 : 1) : memcmp(a, b, la);
        } else if (na != nb) {
            c = na ? -1 : 1;
        } else {
            c = memcmp(a, b, la < lb ? la : lb);
            if (c == 0 && la != lb)
                c = la < lb ? -1 : 1;
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += la;
        b += lb;
        if (!*a || !*b)
            return !*a && !*b ? 0 : (!*a ? -1 : 1);
        a++;
        b++;
    }
}

static int cmp_ver(const ver *a, const ver *b)
{
    for (int i = 0; i < 3; i++)
        if (a->part[i] != b->part[i])
            return a->part[i] < b->part[i] ? -1 : 1;
    return cmp_pre(a->pre, b->pre);
}

static void check_ver(lua_State *L, int arg, ver *v)
{
    const char *s = luaL_checkstring(L, arg);
    const char *end = parse_ver(s, v, false);
    if (end == NULL || *end != '\0')
        luaL_error(L, "invalid semantic version \"%s\"", s);
}

/* semver.parse(s) -> {major, minor, patch, pre, build} ("" when absent). */
static int l_parse(lua_State *L)
{
    ver v;
    check_ver(L, 1, &v);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, v.part[0]);
    lua_setfield(L, -2, "major");
    lua_pushinteger(L, v.part[1]);
    lua_setfield(L, -2, "minor");
    lua_pushinteger(L, v.part[2]);
    lua_setfield(L, -2, "patch");
    lua_pushstring(L, v.pre);
    lua_setfield(L, -2, "pre");
    lua_pushstring(L, v.build);
    lua_setfield(L, -2, "build");
    return 1;
}

/* semver.compare(a, b) -> -1, 0 or 1 by semver precedence. */
static int l_compare(lua_State *L)
{
    ver a, b;
    check_ver(L, 1, &a);
    check_ver(L, 2, &b);
    lua_pushinteger(L, cmp_ver(&a, &b));
    return 1;
}

/* The bound just above a partial version: 1.2 -> 1.3.0, 1 -> 2.0.0. */
static ver bump(const ver *v, int at)
{
    ver u = {0};
    for (int i = 0; i < at; i++)
        u.part[i] = v->part[i];
    u.part[at] = v->part[at] + 1;
    u.pre[0] = '\0';
    return u;
}

/* Whether v satisfies one comparator starting at *pp; advances *pp. Sets
 * *bad on a syntax error. */
static bool comparator(const char **pp, const ver *v, bool *bad)
{
    const char *p = *pp;
    char op[3] = "";
    if (*p == '^' || *p == '~' || *p == '=') {
        op[0] = *p++;
    } else if (*p == '>' || *p == '<') {
        op[0] = *p++;
        if (*p == '=')
            op[1] = *p++;
    }
    while (*p == ' ')
        p++;
    ver c;
    const char *end = parse_ver(p, &c, true);
    if (end == NULL || (*end && *end != ' ' && *end != '|')) {
        *bad = true;
        return false;
    }
    *pp = end;
    int n = c.nparts;
    if (op[0] == '\0' || (op[0] == '=' && op[1] == '\0')) {
        if (n == 0)
            return true;
        if (n == 3)
            return cmp_ver(v, &c) == 0;
        ver hi = bump(&c, n - 1);
        return cmp_ver(v, &c) >= 0 && cmp_ver(v, &hi) < 0;
    }
    if (op[0] == '^') {
        /* The leftmost non-zero part of the given ones may not change. */
        int at = 0;
        while (at < n - 1 && c.part[at] == 0)
            at++;
        if (n == 0)
            return true;
        ver hi = bump(&c, at);
        return cmp_ver(v, &c) >= 0 && cmp_ver(v, &hi) < 0;
    }
    if (op[0] == '~') {
        if (n == 0)
            return true;
        ver hi = bump(&c, n >= 2 ? 1 : 0);
        return cmp_ver(v, &c) >= 0 && cmp_ver(v, &hi) < 0;
    }
    if (n == 0) /* >=*, <* ... */
        return op[0] == '>' || op[1] == '=';
    if (op[0] == '>') {
        if (op[1] == '=')
            return cmp_ver(v, &c) >= 0;
        if (n < 3) {
            ver hi = bump(&c, n - 1);
            return cmp_ver(v, &hi) >= 0;
        }
        return cmp_ver(v, &c) > 0;
    }
    /* < and <= */
    if (op[1] == '=') {
        if (n < 3) {
            ver hi = bump(&c, n - 1);
            return cmp_ver(v, &hi) < 0;
        }
        return cmp_ver(v, &c) <= 0;
    }
    return cmp_ver(v, &c) < 0;
}

/* semver.satisfies(v, range) -> boolean. */
static int l_satisfies(lua_State *L)
{
    ver v;
    check_ver(L, 1, &v);
    const char *range = luaL_checkstring(L, 2);
    const char *p = range;
    bool any = false, bad = false;
    for (;;) {
        /* One alternative: comparators separated by spaces, all must hold. */
        bool all = true;
        int count = 0;
        for (;;) {
            while (*p == ' ')
                p++;
            if (*p == '\0' || *p == '|')
                break;
            if (!comparator(&p, &v, &bad))
                all = false;
            if (bad)
                return luaL_error(L, "invalid version range \"%s\"", range);
            count++;
        }
        if (count == 0)
            return luaL_error(L, "invalid version range \"%s\" (empty alternative)", range);
        if (all)
            any = true;
        if (*p == '\0')
            break;
        if (p[1] != '|')
            return luaL_error(L, "invalid version range \"%s\"", range);
        p += 2;
    }
    lua_pushboolean(L, any);
    return 1;
}

void kiln_lua__open_semver(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"parse", l_parse}, {"compare", l_compare}, {"satisfies", l_satisfies}, {NULL, NULL}};
    kiln_lua__add_lib(L, "semver", fns);
}
