/* lua/lex.h: the pieces of Lua's lexical grammar that the ${...} scanner
 * (template.c) and the name finder (names.c) both skip over: quoted strings,
 * long brackets [==[ ]==] and comments. Internal to lua/.
 *
 * Each function takes p at the first byte of the piece (text is NUL-terminated
 * and borrowed) and returns the byte after it, or NULL when the text ends
 * before the piece is closed.
 */
#ifndef KILN_LUA_LEX_H
#define KILN_LUA_LEX_H

/* Level of a long bracket opening at p ("[", "=" * level, "["), or -1. */
int kiln_lua__long_level(const char *p);

/* p at a long bracket opening (kiln_lua__long_level(p) >= 0): skips to after
 * the "]", "=" * level, "]" that closes it. */
const char *kiln_lua__skip_long(const char *p);

/* p at "--": skips a long comment --[==[ ]==], or a line comment up to (not
 * past) its newline. Only a long comment can be unfinished. */
const char *kiln_lua__skip_comment(const char *p);

/* p at ' or ": skips the string literal and its closing quote. Backslash
 * escapes are skipped; a newline before the closing quote leaves it unfinished. */
const char *kiln_lua__skip_quoted(const char *p);

#endif
