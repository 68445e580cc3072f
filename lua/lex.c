/* lua/lex.c: skipping Lua strings, long brackets and comments (see lua/lex.h). */
#include "lua/lex.h"

#include <stddef.h>

int kiln_lua__long_level(const char *p)
{
    if (*p != '[')
        return -1;
    int n = 0;
    for (p++; *p == '='; p++)
        n++;
    return *p == '[' ? n : -1;
}

const char *kiln_lua__skip_long(const char *p)
{
    int level = kiln_lua__long_level(p);
    for (p += level + 2; *p; p++) {
        if (*p != ']')
            continue;
        const char *q = p + 1;
        int n = 0;
        while (*q == '=') {
            n++;
            q++;
        }
        if (n == level && *q == ']')
            return q + 1;
    }
    return NULL;
}

const char *kiln_lua__skip_comment(const char *p)
{
    p += 2;
    if (kiln_lua__long_level(p) >= 0)
        return kiln_lua__skip_long(p);
    while (*p && *p != '\n')
        p++;
    return p;
}

const char *kiln_lua__skip_quoted(const char *p)
{
    char quote = *p;
    const char *q = p + 1;
    while (*q && *q != quote && *q != '\n') {
        if (*q == '\\' && q[1])
            q++;
        q++;
    }
    return *q == quote ? q + 1 : NULL;
}
