/* lua/template.h: the ${...} scanner and string splicing.
 *
 * A template string is literal text with ${<Lua expression>} parts. When the
 * whole string is exactly one ${...}, the field takes the expression's value
 * with its type ("whole"); otherwise every part is evaluated and spliced into the
 * string, and each must yield a string or a number. The scanner balances braces
 * and skips Lua string literals and comments inside an expression, so
 * "${ {a = '}'} }" is one expression. Scanning is pure (no Lua state): a graph
 * scans once at compile time and keeps the result.
 */
#ifndef KILN_LUA_TEMPLATE_H
#define KILN_LUA_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "lua/sandbox.h"

typedef struct kiln_tmpl_part {
    bool is_expr;
    char *text;    /* literal text, or the expression's source (owned) */
    size_t column; /* 1-based column of the part's first byte in the template string */
} kiln_tmpl_part;

typedef struct kiln_tmpl {
    kiln_tmpl_part *parts; /* owned */
    size_t nparts;
    size_t nexprs;
    bool whole; /* exactly one ${...} and nothing else */
} kiln_tmpl;

/* True when s contains "${". */
bool kiln_tmpl_has_expr(const char *s);

/* Scans s into *out (caller frees with kiln_tmpl_free). An unterminated ${, an
 * empty ${} or a stray nesting is KILN_EINVAL naming the column. */
int kiln_tmpl_parse(kiln_tmpl *out, const char *s, kiln_err *err);
void kiln_tmpl_free(kiln_tmpl *t);

/* Evaluates a parsed template in env. fns[i] is the compiled function of the
 * i-th expression part (in order). Whole: *out is the value (NULL for nil).
 * Splice: *out is the joined string; a part that is not a string or number is
 * KILN_ESCRIPT ("expected a string or number for ${...} at column 7, got table").
 * A nil part is KILN_EPENDING-free: it is reported as KILN_ESCRIPT too; callers
 * decide whether missing data means pending. */
int kiln_lua_eval_template(kiln_lua *L, json_t **out, int env, const kiln_tmpl *t, const int *fns,
                           kiln_err *err);

#endif
