/* lua/names.c: free and declared names of a Lua chunk, from its tokens.
 *
 * A small Lua lexer (strings with escapes, long brackets [==[ ]==], comments,
 * numbers including hex floats) turns the chunk into tokens; a pass over the
 * tokens then classifies each identifier by its neighbours. This is not a
 * parser: scoping is ignored, which is what dependency inference needs (an id
 * that is read anywhere is an edge).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "lua/lex.h"
#include "lua/names.h"

typedef enum tok_kind { T_NAME, T_KEYWORD, T_SYMBOL, T_STRING, T_NUMBER } tok_kind;

typedef struct tok {
    tok_kind kind;
    const char *s;
    size_t len;
} tok;

typedef struct toks {
    tok *v;
    size_t n, cap;
} toks;

static const char *const keywords[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                       "false", "for",   "function", "goto",  "if",     "in",
                                       "local", "nil",   "not",      "or",    "repeat", "return",
                                       "then",  "true",  "until",    "while", NULL};

static bool is_keyword_n(const char *s, size_t len)
{
    for (const char *const *k = keywords; *k; k++)
        if (strlen(*k) == len && memcmp(*k, s, len) == 0)
            return true;
    return false;
}

bool kiln_lua_is_keyword(const char *name)
{
    return name != NULL && is_keyword_n(name, strlen(name));
}

static void push_tok(toks *t, tok_kind kind, const char *s, size_t len)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->v = kiln_xrealloc(t->v, t->cap * sizeof *t->v);
    }
    t->v[t->n++] = (tok){kind, s, len};
}

/* Line and column (1-based) of p in src. */
static void position(const char *src, const char *p, size_t *line, size_t *col)
{
    *line = 1;
    const char *ls = src;
    for (const char *q = src; q < p; q++)
        if (*q == '\n') {
            (*line)++;
            ls = q + 1;
        }
    *col = (size_t)(p - ls) + 1;
}

static int fail(kiln_err *err, const char *src, const char *p, const char *what)
{
    size_t line, col;
    position(src, p, &line, &col);
    return kiln_err_set(err, KILN_ESCRIPT, "%zu:%zu: %s", line, col, what);
}

static int lex(toks *t, const char *src, kiln_err *err)
{
    static const char *const syms3[] = {"...", NULL};
    static const char *const syms2[] = {"==", "~=", "<=", ">=", "//", "::", "<<", ">>", "..", NULL};
    const char *p = src;
    while (*p) {
        unsigned char c = (unsigned char)*p;
        if (isspace(c)) {
            p++;
            continue;
        }
        /* Comments are dropped; strings become one token each. */
        const char *end = NULL, *unfinished = NULL;
        bool comment = false;
        if (c == '-' && p[1] == '-') {
            end = kiln_lua__skip_comment(p);
            unfinished = "unfinished long comment";
            comment = true;
        } else if (c == '[' && kiln_lua__long_level(p) >= 0) {
            end = kiln_lua__skip_long(p);
            unfinished = "unfinished long string";
        } else if (c == '"' || c == '\'') {
            end = kiln_lua__skip_quoted(p);
            unfinished = "unfinished string";
        }
        if (unfinished) {
            if (end == NULL)
                return fail(err, src, p, unfinished);
            if (!comment)
                push_tok(t, T_STRING, p, (size_t)(end - p));
            p = end;
            continue;
        }
        if (isdigit(c) || (c == '.' && isdigit((unsigned char)p[1]))) {
            const char *q = p;
            const char *expo = "Ee";
            if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
                expo = "Pp";
                q += 2;
            }
            for (;;) {
                if (*q && strchr(expo, *q) && (q[1] == '+' || q[1] == '-'))
                    q += 2;
                else if (isxdigit((unsigned char)*q) || *q == '.' || *q == '_' ||
                         isalpha((unsigned char)*q))
                    q++;
                else
                    break;
            }
            push_tok(t, T_NUMBER, p, (size_t)(q - p));
            p = q;
            continue;
        }
        if (isalpha(c) || c == '_') {
            const char *q = p;
            while (isalnum((unsigned char)*q) || *q == '_')
                q++;
            size_t len = (size_t)(q - p);
            push_tok(t, is_keyword_n(p, len) ? T_KEYWORD : T_NAME, p, len);
            p = q;
            continue;
        }
        size_t len = 1;
        for (const char *const *s = syms3; *s; s++)
            if (strncmp(p, *s, 3) == 0)
                len = 3;
        if (len == 1)
            for (const char *const *s = syms2; *s; s++)
                if (strncmp(p, *s, 2) == 0)
                    len = 2;
        push_tok(t, T_SYMBOL, p, len);
        p += len;
    }
    return 0;
}

static bool is_sym(const toks *t, size_t i, const char *s)
{
    return i < t->n && t->v[i].kind == T_SYMBOL && t->v[i].len == strlen(s) &&
           memcmp(t->v[i].s, s, t->v[i].len) == 0;
}

static bool is_kw(const toks *t, size_t i, const char *s)
{
    return i < t->n && t->v[i].kind == T_KEYWORD && t->v[i].len == strlen(s) &&
           memcmp(t->v[i].s, s, t->v[i].len) == 0;
}

static bool is_name(const toks *t, size_t i)
{
    return i < t->n && t->v[i].kind == T_NAME;
}

/* A list of distinct names with a hash index, so a chunk with many
 * identifiers (an RGD can be megabytes) is scanned in linear time. */
typedef struct nameset {
    char ***list;
    size_t *n;
    size_t *slots; /* index + 1, 0 = empty */
    size_t cap;    /* power of two */
} nameset;

static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static void set_insert_slot(nameset *set, size_t idx)
{
    const char *name = (*set->list)[idx];
    size_t i = (size_t)name_hash(name, strlen(name)) & (set->cap - 1);
    while (set->slots[i])
        i = (i + 1) & (set->cap - 1);
    set->slots[i] = idx + 1;
}

static void add_name(nameset *set, const char *s, size_t len)
{
    if (set->cap == 0 || (*set->n + 1) * 2 > set->cap) {
        kiln_xfree(set->slots);
        set->cap = set->cap ? set->cap * 2 : 16;
        set->slots = kiln_xcalloc(set->cap, sizeof *set->slots);
        for (size_t k = 0; k < *set->n; k++)
            set_insert_slot(set, k);
    }
    size_t i = (size_t)name_hash(s, len) & (set->cap - 1);
    for (; set->slots[i]; i = (i + 1) & (set->cap - 1)) {
        const char *have = (*set->list)[set->slots[i] - 1];
        if (strlen(have) == len && memcmp(have, s, len) == 0)
            return;
    }
    *set->list = kiln_xrealloc(*set->list, (*set->n + 1) * sizeof **set->list);
    (*set->list)[*set->n] = kiln_xstrndup(s, len);
    set->slots[i] = ++*set->n;
}

/* Marks the names of a parameter list starting at the '(' at i as declared;
 * returns the index after ')'. */
static size_t params(const toks *t, size_t i, bool *decl)
{
    if (!is_sym(t, i, "("))
        return i;
    for (i++; i < t->n && !is_sym(t, i, ")"); i++)
        if (is_name(t, i))
            decl[i] = true;
    return i;
}

int kiln_lua_scan_names(kiln_lua_names *out, const char *src, kiln_err *err)
{
    toks t = {0};
    bool *decl = NULL, *skip = NULL;
    kiln_lua_names res = {0};
    nameset freeset = {&res.free_names, &res.nfree, NULL, 0};
    nameset declset = {&res.declared, &res.ndeclared, NULL, 0};
    int rc = lex(&t, src, err);
    if (rc != 0)
        goto done;
    decl = kiln_xcalloc(t.n + 1, sizeof *decl);
    skip = kiln_xcalloc(t.n + 1, sizeof *skip);
    for (size_t i = 0; i < t.n; i++) {
        if (is_kw(&t, i, "local")) {
            if (is_kw(&t, i + 1, "function")) {
                if (is_name(&t, i + 2))
                    decl[i + 2] = true;
                continue;
            }
            /* local a <const>, b <close> = ... */
            size_t j = i + 1;
            while (is_name(&t, j)) {
                decl[j] = true;
                j++;
                if (is_sym(&t, j, "<") && is_name(&t, j + 1) && is_sym(&t, j + 2, ">")) {
                    skip[j + 1] = true;
                    j += 3;
                }
                if (!is_sym(&t, j, ","))
                    break;
                j++;
            }
        } else if (is_kw(&t, i, "function")) {
            size_t j = i + 1;
            if (is_name(&t, j)) {
                bool dotted = is_sym(&t, j + 1, ".") || is_sym(&t, j + 1, ":");
                if (!dotted)
                    decl[j] = true;
                j++;
                while ((is_sym(&t, j, ".") || is_sym(&t, j, ":")) && is_name(&t, j + 1)) {
                    j += 2;
                }
                if (is_sym(&t, j - 2, ":"))
                    add_name(&declset, "self", 4);
            }
            params(&t, j, decl);
        } else if (is_kw(&t, i, "for")) {
            size_t j = i + 1;
            while (is_name(&t, j)) {
                decl[j] = true;
                if (!is_sym(&t, j + 1, ","))
                    break;
                j += 2;
            }
        } else if (is_kw(&t, i, "goto") && is_name(&t, i + 1)) {
            skip[i + 1] = true;
        } else if (is_sym(&t, i, "::") && is_name(&t, i + 1) && is_sym(&t, i + 2, "::")) {
            skip[i + 1] = true;
        }
    }
    for (size_t i = 0; i < t.n; i++) {
        if (!is_name(&t, i))
            continue;
        if (decl[i]) {
            add_name(&declset, t.v[i].s, t.v[i].len);
            continue;
        }
        if (skip[i])
            continue;
        if (i > 0 && (is_sym(&t, i - 1, ".") || is_sym(&t, i - 1, ":")))
            continue;
        /* { name = v } / , name = v / ; name = v: a table key, not a read.
         * (A bare `a, b = ...` is a global assignment, an error anyway.) */
        if (i > 0 && is_sym(&t, i + 1, "=") &&
            (is_sym(&t, i - 1, "{") || is_sym(&t, i - 1, ",") || is_sym(&t, i - 1, ";")))
            continue;
        add_name(&freeset, t.v[i].s, t.v[i].len);
    }
done:
    kiln_xfree(freeset.slots);
    kiln_xfree(declset.slots);
    free(t.v);
    kiln_xfree(decl);
    kiln_xfree(skip);
    if (rc != 0) {
        kiln_lua_names_free(&res);
        return rc;
    }
    *out = res;
    return 0;
}

void kiln_lua_names_free(kiln_lua_names *names)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < names->nfree; i++)
        kiln_xfree(names->free_names[i]);
    for (size_t i = 0; i < names->ndeclared; i++)
        kiln_xfree(names->declared[i]);
    kiln_xfree(names->free_names);
    kiln_xfree(names->declared);
    memset(names, 0, sizeof *names);
}

bool kiln_lua_names_has_free(const kiln_lua_names *names, const char *name)
{
    for (size_t i = 0; i < names->nfree; i++)
        if (strcmp(names->free_names[i], name) == 0)
            return true;
    return false;
}
