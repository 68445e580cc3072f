/* lua/names.h: which names a Lua expression or script refers to.
 *
 * Dependency inference needs the root identifiers a chunk reads: `deployment`
 * in `deployment.spec.replicas`, but not `spec` (a field position after . or :),
 * not `name` in `{name = 1}` (a table-constructor key), and nothing inside
 * string literals or comments. The scanner is a Lua lexer, not a parser: it also
 * collects names the chunk declares (local, function parameters, for-loop
 * variables), without scoping, so callers can tell "unknown identifier" apart
 * from a local.
 */
#ifndef KILN_LUA_NAMES_H
#define KILN_LUA_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

typedef struct kiln_lua_names {
    char **free_names; /* root identifiers read, in order of first use, no duplicates */
    size_t nfree;
    char **declared; /* names bound by local / function / for, no duplicates */
    size_t ndeclared;
} kiln_lua_names;

/* Scans src. Unterminated strings or long brackets are KILN_ESCRIPT with the
 * line and column. On success the caller frees *out with kiln_lua_names_free. */
int kiln_lua_scan_names(kiln_lua_names *out, const char *src, kiln_err *err);
void kiln_lua_names_free(kiln_lua_names *names);

bool kiln_lua_names_has_free(const kiln_lua_names *names, const char *name);

/* True for Lua's reserved words (and, break, do, ... while). */
bool kiln_lua_is_keyword(const char *name);

#endif
