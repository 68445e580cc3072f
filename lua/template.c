/* lua/template.c: the ${...} scanner and splicing.
 *
 * Inside ${ ... } the scanner follows enough of Lua's lexical rules to find the
 * closing brace: it balances { and }, and skips string literals (quoted, with
 * escapes, and long brackets [==[ ]==]) and comments (-- and --[[ ]]), so a
 * brace inside a string never ends the expression.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "lua/internal.h"
#include "lua/lex.h"
#include "lua/template.h"

bool kiln_tmpl_has_expr(const char *s)
{
    return s != NULL && strstr(s, "${") != NULL;
}

/* Scans the expression starting after "${" at s; returns a pointer to the
 * closing brace or NULL (err set). base is the template, for columns. */
static const char *scan_expr(const char *base, const char *s, kiln_err *err)
{
    int depth = 0;
    const char *start = s - 2;
    const char *p = s;
    while (*p) {
        char c = *p;
        /* Strings and comments are skipped whole: braces inside them do not count. */
        const char *end = NULL, *what = NULL;
        if (c == '"' || c == '\'') {
            end = kiln_lua__skip_quoted(p);
            what = "string";
        } else if (c == '-' && p[1] == '-') {
            end = kiln_lua__skip_comment(p);
            what = "comment";
        } else if (c == '[' && kiln_lua__long_level(p) >= 0) {
            end = kiln_lua__skip_long(p);
            what = "long string";
        }
        if (what) {
            if (end == NULL) {
                kiln_err_set(err, KILN_EINVAL, "column %zu: unterminated %s in ${...}",
                             (size_t)(p - base) + 1, what);
                return NULL;
            }
            p = end;
            continue;
        }
        if (c == '$' && p[1] == '{') {
            kiln_err_set(err, KILN_EINVAL,
                         "column %zu: ${ inside the expression that starts at column %zu "
                         "(nesting is not allowed)",
                         (size_t)(p - base) + 1, (size_t)(start - base) + 1);
            return NULL;
        }
        if (c == '{') {
            depth++;
        } else if (c == '}') {
            if (depth == 0)
                return p;
            depth--;
        }
        p++;
    }
    kiln_err_set(err, KILN_EINVAL, "column %zu: unterminated ${ (no closing brace)",
                 (size_t)(start - base) + 1);
    return NULL;
}

static void add_part(kiln_tmpl *t, size_t *cap, bool is_expr, const char *text, size_t len,
                     size_t column)
{
    if (t->nparts == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        t->parts = kiln_xrealloc(t->parts, *cap * sizeof *t->parts);
    }
    kiln_tmpl_part *p = &t->parts[t->nparts++];
    p->is_expr = is_expr;
    p->text = kiln_xstrndup(text, len);
    p->column = column;
    if (is_expr)
        t->nexprs++;
}

int kiln_tmpl_parse(kiln_tmpl *out, const char *s, kiln_err *err)
{
    kiln_tmpl t = {0};
    size_t cap = 0;
    int rc = 0;
    const char *p = s;
    while (*p) {
        const char *open = strstr(p, "${");
        if (open == NULL) {
            add_part(&t, &cap, false, p, strlen(p), (size_t)(p - s) + 1);
            break;
        }
        if (open > p)
            add_part(&t, &cap, false, p, (size_t)(open - p), (size_t)(p - s) + 1);
        const char *close = scan_expr(s, open + 2, err);
        if (close == NULL) {
            rc = KILN_EINVAL;
            goto done;
        }
        size_t len = (size_t)(close - open - 2);
        if (strspn(open + 2, " \t\r\n") >= len) {
            rc = kiln_err_set(err, KILN_EINVAL, "column %zu: empty ${}", (size_t)(open - s) + 1);
            goto done;
        }
        add_part(&t, &cap, true, open + 2, len, (size_t)(open - s) + 1);
        p = close + 1;
    }
    t.whole = t.nparts == 1 && t.parts[0].is_expr;
done:
    if (rc != 0) {
        kiln_tmpl_free(&t);
        return rc;
    }
    *out = t;
    return 0;
}

void kiln_tmpl_free(kiln_tmpl *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nparts; i++)
        kiln_xfree(t->parts[i].text);
    kiln_xfree(t->parts);
    memset(t, 0, sizeof *t);
}

/* Appends the Lua value at the top (a string or a number) to b. */
static int splice_value(kiln_lua *K, kiln_buf *b, const kiln_tmpl_part *part, kiln_err *err)
{
    lua_State *L = K->L;
    char num[64];
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, -1, &len);
        return kiln_buf_append(b, s, len, err);
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, -1)) {
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -1));
        } else {
            /* Lua's tostring: %.14g, and ".0" when that looks like an integer. */
            double d = lua_tonumber(L, -1);
            snprintf(num, sizeof num, "%.14g", d);
            if (num[strspn(num, "-0123456789")] == '\0')
                strcat(num, ".0");
        }
        return kiln_buf_puts(b, num, err);
    default:
        return kiln_err_set(
            err, KILN_ESCRIPT, "expected a string or number for ${...} at column %zu, got %s",
            part->column,
            lua_isnil(L, -1) ? "nil"
            : lua_type(L, -1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == KILN_LUA_NULL
                ? "json.null"
                : luaL_typename(L, -1));
    }
}

int kiln_lua_eval_template(kiln_lua *K, json_t **out, int env, const kiln_tmpl *t, const int *fns,
                           kiln_err *err)
{
    *out = NULL;
    if (t->whole)
        return kiln_lua_eval(K, out, env, fns[0], err);
    kiln_buf b;
    kiln_buf_init(&b, K->limits.memory);
    int rc = kiln_buf_append(&b, "", 0, err);
    size_t fi = 0;
    for (size_t i = 0; rc == 0 && i < t->nparts; i++) {
        const kiln_tmpl_part *part = &t->parts[i];
        if (!part->is_expr) {
            rc = kiln_buf_puts(&b, part->text, err);
            continue;
        }
        rc = kiln_lua__call(K, env, fns[fi++], err);
        if (rc != 0)
            break;
        rc = splice_value(K, &b, part, err);
        lua_pop(K->L, 1);
    }
    if (rc == 0) {
        *out = json_stringn(b.data, b.len);
        if (*out == NULL)
            rc = kiln_err_set(err, KILN_EINVAL, "the spliced string is not valid UTF-8");
    }
    kiln_buf_free(&b);
    return rc;
}
