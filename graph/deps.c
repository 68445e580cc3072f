/* graph/deps.c: expressions, template trees and dependency inference.
 *
 * Every ${...} of a template, externalRef or validation map (string values
 * anywhere in the tree; map keys are never evaluated), every script, forEach,
 * includeWhen, readyWhen and status projection is parsed once here and its
 * free names scanned. A free name that is a resource id becomes an edge;
 * `schema`, the node's iterators, the helpers' globals, the library and the
 * chunk's own locals are known; anything else is an unknown identifier, so a
 * typo fails at compile time rather than at the first render.
 */
#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "graph/impl.h"
#include "graph/simpleschema.h"

typedef enum { CTX_TEMPLATE, CTX_SCRIPT, CTX_INCLUDE, CTX_READY, CTX_FOREACH, CTX_STATUS } ctx;

static const char *const ctx_names[] = {"template",  "script",  "includeWhen",
                                        "readyWhen", "forEach", "status"};

/* What one chunk or expression read, accumulated over its parts. */
typedef struct reads {
    size_t *deps;
    size_t ndeps;
    bool schema;
    unsigned iters; /* bit k: iterator k of the node */
} reads;

static void add_sorted_unique(size_t **v, size_t *n, size_t x)
{
    size_t i = *n;
    for (size_t k = 0; k < *n; k++)
        if ((*v)[k] == x)
            return;
    *v = kiln_xrealloc(*v, (*n + 1) * sizeof **v);
    while (i > 0 && (*v)[i - 1] > x) {
        (*v)[i] = (*v)[i - 1];
        i--;
    }
    (*v)[i] = x;
    (*n)++;
}

static bool names_declares(const kiln_lua_names *names, const char *name)
{
    for (size_t i = 0; i < names->ndeclared; i++)
        if (strcmp(names->declared[i], name) == 0)
            return true;
    return false;
}

static long find_node(const kiln_graph *g, const char *id)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i].id && strcmp(g->nodes[i].id, id) == 0)
            return (long)i;
    return -1;
}

static bool is_helper_global(const kiln_graph *g, const char *name)
{
    return names_declares(&g->helper_names, name) ||
           kiln_lua_names_has_free(&g->helper_names, name);
}

/* Classifies every free name of one scanned chunk; returns false when an
 * error was reported. */
static bool check_names(const kiln_graph *g, const gnode *n, ctx c, const char *path,
                        const kiln_lua_names *names, reads *r, kiln_errs *errs)
{
    bool ok = true;
    for (size_t i = 0; i < names->nfree; i++) {
        const char *f = names->free_names[i];
        long j;
        size_t k;
        if (names_declares(names, f))
            continue;
        if (strcmp(f, "schema") == 0) {
            if (c == CTX_READY) {
                kiln_errs_add(errs, KILN_EINVAL,
                              "%s: readyWhen may reference only \"%s\", not \"schema\"", path,
                              n->id);
                ok = false;
            }
            r->schema = true;
            continue;
        }
        if ((j = find_node(g, f)) >= 0) {
            if (c == CTX_READY) {
                if ((size_t)j != n->index) {
                    kiln_errs_add(errs, KILN_EINVAL,
                                  "%s: readyWhen may reference only \"%s\", not \"%s\"", path,
                                  n->id, f);
                    ok = false;
                }
            } else if (n && (size_t)j == n->index) {
                kiln_errs_add(errs, KILN_EINVAL, "%s: resource \"%s\" may not reference itself",
                              path, f);
                ok = false;
            } else {
                add_sorted_unique(&r->deps, &r->ndeps, (size_t)j);
            }
            continue;
        }
        for (k = 0; n && k < n->niters; k++)
            if (strcmp(n->iters[k].name, f) == 0)
                break;
        if (n && k < n->niters) {
            if (c == CTX_TEMPLATE || c == CTX_SCRIPT) {
                r->iters |= 1u << k;
            } else if (c == CTX_FOREACH) {
                kiln_errs_add(errs, KILN_EINVAL,
                              "%s: forEach iterators may not reference each other (\"%s\")", path,
                              f);
                ok = false;
            } else {
                kiln_errs_add(errs, KILN_EINVAL, "%s: %s may not reference iterator \"%s\"", path,
                              ctx_names[c], f);
                ok = false;
            }
            continue;
        }
        if (is_helper_global(g, f) || kiln_rgd_is_library_global(f))
            continue;
        kiln_errs_add(errs, KILN_EINVAL, "%s: unknown identifier \"%s\"", path, f);
        ok = false;
    }
    return ok;
}

static size_t new_chunk(kiln_graph *g, bool script, const char *src, const char *name)
{
    if (g->nchunks == g->capchunks) {
        g->capchunks = g->capchunks ? g->capchunks * 2 : 64;
        g->chunks = kiln_xrealloc(g->chunks, g->capchunks * sizeof *g->chunks);
    }
    memset(&g->chunks[g->nchunks], 0, sizeof g->chunks[g->nchunks]);
    g->chunks[g->nchunks].script = script;
    g->chunks[g->nchunks].src = kiln_xstrdup(src);
    g->chunks[g->nchunks].name = kiln_xstrdup(name);
    return g->nchunks++;
}

static void intern_insert(kiln_graph *g, size_t chunk)
{
    const char *src = g->chunks[chunk].src;
    size_t mask = g->ninterncap - 1;
    size_t h = (size_t)kiln_fnv1a64(src, strlen(src)) & mask;
    while (g->intern[h])
        h = (h + 1) & mask;
    g->intern[h] = chunk + 1;
}

/* The chunk of an expression text, shared with every identical text. */
static size_t expr_chunk(kiln_graph *g, const char *src, const char *name)
{
    size_t h, mask, chunk;
    if (2 * (g->nchunks + 1) > g->ninterncap) {
        size_t *old = g->intern, oldcap = g->ninterncap;
        g->ninterncap = oldcap ? oldcap * 2 : 256;
        g->intern = kiln_xcalloc(g->ninterncap, sizeof *g->intern);
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                intern_insert(g, old[i] - 1);
        kiln_xfree(old);
    }
    mask = g->ninterncap - 1;
    h = (size_t)kiln_fnv1a64(src, strlen(src)) & mask;
    for (; g->intern[h]; h = (h + 1) & mask) {
        const gchunk *c = &g->chunks[g->intern[h] - 1];
        if (!c->script && strcmp(c->src, src) == 0)
            return g->intern[h] - 1;
    }
    chunk = new_chunk(g, false, src, name);
    g->intern[h] = chunk + 1;
    return chunk;
}

static void add_part(kiln_graph *g, size_t chunk)
{
    if (g->nparts == g->capparts) {
        g->capparts = g->capparts ? g->capparts * 2 : 128;
        g->parts = kiln_xrealloc(g->parts, g->capparts * sizeof *g->parts);
    }
    g->parts[g->nparts++] = chunk;
}

void kiln_deps_expr_free(gexpr *e)
{
    if (!e)
        return;
    kiln_xfree(e->path);
    kiln_tmpl_free(&e->tmpl);
    kiln_xfree(e->deps);
    json_decref(e->schema);
}

/* Parses text as a template string at path and scans its parts. Returns the
 * expression's index, or (size_t)-1 after reporting an error. */
static size_t add_expr(kiln_graph *g, const gnode *n, ctx c, const char *path, const char *text,
                       bool want_whole, unsigned *iters, kiln_errs *errs)
{
    gexpr e;
    reads r = {0};
    kiln_err err = {0};
    bool ok = true;

    memset(&e, 0, sizeof e);
    if (kiln_tmpl_parse(&e.tmpl, text, &err) < 0) {
        kiln_errs_add(errs, err.code, "%s: %s", path, err.msg);
        return (size_t)-1;
    }
    if (want_whole && !e.tmpl.whole) {
        kiln_errs_add(errs, KILN_EINVAL, "%s: expected a single ${...} expression, got \"%s\"",
                      path, text);
        kiln_tmpl_free(&e.tmpl);
        return (size_t)-1;
    }
    e.part0 = g->nparts;
    for (size_t i = 0; i < e.tmpl.nparts; i++) {
        kiln_lua_names names;
        if (!e.tmpl.parts[i].is_expr)
            continue;
        size_t ci = expr_chunk(g, e.tmpl.parts[i].text, path);
        gchunk *ch = &g->chunks[ci];
        add_part(g, ci);
        /* Scanned once per distinct text; what the names mean depends on
         * the node, so the check runs per use. */
        if (!ch->scanned) {
            if (kiln_lua_scan_names(&names, ch->src, &err) < 0) {
                kiln_errs_add(errs, err.code, "%s: %s", path, err.msg);
                ok = false;
                continue;
            }
            ch->names = names;
            ch->scanned = true;
        }
        ok = check_names(g, n, c, path, &ch->names, &r, errs) && ok;
    }
    if (!ok) {
        kiln_xfree(r.deps);
        kiln_tmpl_free(&e.tmpl);
        return (size_t)-1;
    }
    e.path = kiln_xstrdup(path);
    e.deps = r.deps;
    e.ndeps = r.ndeps;
    e.reads_schema = r.schema;
    if (iters)
        *iters |= r.iters;
    if (g->nexprs == g->capexprs) {
        g->capexprs = g->capexprs ? g->capexprs * 2 : 64;
        g->exprs = kiln_xrealloc(g->exprs, g->capexprs * sizeof *g->exprs);
    }
    g->exprs[g->nexprs] = e;
    return g->nexprs++;
}

void kiln_deps_tnode_free(tnode *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        kiln_deps_tnode_free(&t->kids[i]);
    kiln_xfree(t->keys);
    kiln_xfree(t->kids);
    memset(t, 0, sizeof *t);
}

typedef struct build_ctx {
    kiln_graph *g;
    gnode *n; /* NULL for the status */
    ctx c;
    const char *name_path; /* "<prefix>.metadata.name": its iterators count for identity */
    const char *ns_path;
    unsigned identity_iters;
    unsigned used_iters;
    bool ok;
    kiln_errs *errs;
    kiln_buf path; /* the field path of the value being built */
} build_ctx;

/* Status leaves may carry a type: `integer | ${...}`. Splits it off. */
static bool split_type_prefix(const char *s, char **decl, const char **rest)
{
    const char *bar = strchr(s, '|');
    const char *expr = strstr(s, "${");
    if (!bar || !expr || bar > expr)
        return false;
    *decl = kiln_xstrndup(s, (size_t)(bar - s));
    /* trim the declaration; the template starts after the bar's spaces */
    size_t n = strlen(*decl);
    while (n > 0 && ((*decl)[n - 1] == ' ' || (*decl)[n - 1] == '\t'))
        (*decl)[--n] = '\0';
    bar++;
    while (*bar == ' ' || *bar == '\t')
        bar++;
    *rest = bar;
    return true;
}

static void build_tree(build_ctx *b, tnode *t, json_t *v)
{
    const char *path = b->path.data;
    memset(t, 0, sizeof *t);
    t->t = T_LIT;
    t->lit = v;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (b->c == CTX_STATUS) {
            char *decl = NULL;
            const char *text = s;
            json_t *schema = NULL;
            if (split_type_prefix(s, &decl, &text)) {
                if (kiln_simpleschema_field(&schema, NULL, decl, NULL, path, b->errs) < 0)
                    b->ok = false;
                kiln_xfree(decl);
            }
            if (!kiln_tmpl_has_expr(text)) {
                kiln_errs_add(b->errs, KILN_EINVAL,
                              "%s: status fields must be ${...} expressions, got \"%s\"", path, s);
                b->ok = false;
                json_decref(schema);
                return;
            }
            size_t e = add_expr(b->g, NULL, CTX_STATUS, path, text, false, NULL, b->errs);
            if (e == (size_t)-1) {
                b->ok = false;
                json_decref(schema);
                return;
            }
            b->g->exprs[e].schema = schema;
            t->t = T_EXPR;
            t->expr = e;
            return;
        }
        if (kiln_tmpl_has_expr(s)) {
            unsigned iters = 0;
            size_t e = add_expr(b->g, b->n, b->c, path, s, false, &iters, b->errs);
            if (e == (size_t)-1) {
                b->ok = false;
                return;
            }
            b->used_iters |= iters;
            if ((b->name_path && strcmp(path, b->name_path) == 0) ||
                (b->ns_path && strcmp(path, b->ns_path) == 0))
                b->identity_iters |= iters;
            t->t = T_EXPR;
            t->expr = e;
        }
        return;
    }
    if (json_is_object(v) || json_is_array(v)) {
        bool all_lit = true;
        size_t n = json_is_object(v) ? json_object_size(v) : json_array_size(v);
        if (n == 0) {
            if (b->c == CTX_STATUS) {
                kiln_errs_add(b->errs, KILN_EINVAL,
                              "%s: status fields must be ${...} expressions, got an empty %s", path,
                              json_is_object(v) ? "map" : "list");
                b->ok = false;
            }
            return;
        }
        t->kids = kiln_xcalloc(n, sizeof *t->kids);
        t->n = n;
        if (json_is_object(v)) {
            const char *key;
            json_t *child;
            size_t i = 0;
            t->t = T_OBJ;
            t->keys = kiln_xcalloc(n, sizeof *t->keys);
            json_object_foreach(v, key, child)
            {
                size_t len = b->path.len;
                if (len)
                    kiln_buf_append(&b->path, ".", 1, NULL);
                kiln_buf_puts(&b->path, key, NULL);
                t->keys[i] = key;
                build_tree(b, &t->kids[i], child);
                all_lit = all_lit && t->kids[i].t == T_LIT;
                b->path.len = len;
                b->path.data[len] = '\0';
                i++;
            }
        } else {
            size_t i;
            json_t *child;
            t->t = T_ARR;
            json_array_foreach(v, i, child)
            {
                size_t len = b->path.len;
                kiln_buf_printf(&b->path, NULL, "[%zu]", i);
                build_tree(b, &t->kids[i], child);
                all_lit = all_lit && t->kids[i].t == T_LIT;
                b->path.len = len;
                b->path.data[len] = '\0';
            }
        }
        /* Status literals were rejected above; a template subtree without
         * expressions is copied whole at render time. */
        if (all_lit && b->c != CTX_STATUS) {
            kiln_deps_tnode_free(t);
            t->t = T_LIT;
            t->lit = v;
        }
        return;
    }
    if (b->c == CTX_STATUS) {
        kiln_errs_add(b->errs, KILN_EINVAL, "%s: status fields must be ${...} expressions, got %s",
                      path, kiln_json_type_name(v));
        b->ok = false;
    }
}

static void merge_deps(gnode *n, const size_t *deps, size_t ndeps)
{
    for (size_t i = 0; i < ndeps; i++)
        add_sorted_unique(&n->deps, &n->ndeps, deps[i]);
}

static void build_node(kiln_graph *g, gnode *n, kiln_errs *errs)
{
    static const char *const body_names[] = {"template", "script", "externalRef", "validation"};
    char prefix[128], name_path[160], ns_path[160], p[256];
    build_ctx b = {.g = g, .n = n, .c = CTX_TEMPLATE, .ok = true, .errs = errs};
    size_t i;
    json_t *item;

    snprintf(prefix, sizeof prefix, "spec.resources[%zu].%s", n->index, body_names[n->kind]);
    snprintf(name_path, sizeof name_path, "%s.metadata.name", prefix);
    snprintf(ns_path, sizeof ns_path, "%s.metadata.namespace", prefix);
    b.name_path = name_path;
    b.ns_path = ns_path;

    if (n->kind == KILN_GRAPH_NODE_SCRIPT) {
        kiln_lua_names names;
        kiln_err err = {0};
        reads r = {0};
        n->script_chunk = new_chunk(g, true, n->script, prefix);
        if (kiln_lua_scan_names(&names, n->script, &err) < 0) {
            kiln_errs_add(errs, err.code, "%s: %s", prefix, err.msg);
            n->valid = false;
        } else {
            if (!check_names(g, n, CTX_SCRIPT, prefix, &names, &r, errs))
                n->valid = false;
            kiln_lua_names_free(&names);
        }
        n->script_deps = r.deps;
        n->nscript_deps = r.ndeps;
        n->script_reads_schema = r.schema;
        merge_deps(n, r.deps, r.ndeps);
        for (size_t k = 0; k < n->niters; k++) {
            if (!(r.iters & (1u << k))) {
                kiln_errs_add(errs, KILN_EINVAL,
                              "spec.resources[%zu].forEach[%zu]: iterator \"%s\" is not used by "
                              "the script (each item needs its own name)",
                              n->index, k, n->iters[k].name);
                n->valid = false;
            }
        }
    } else {
        kiln_buf_init(&b.path, KILN_BUF_DEFAULT_LIMIT);
        kiln_buf_puts(&b.path, prefix, NULL);
        build_tree(&b, &n->body, n->source);
        kiln_buf_free(&b.path);
        if (!b.ok)
            n->valid = false;
        for (size_t k = 0; k < n->niters && b.ok; k++) {
            if (!(b.identity_iters & (1u << k))) {
                kiln_errs_add(errs, KILN_EINVAL,
                              "spec.resources[%zu].forEach[%zu]: iterator \"%s\" must appear in "
                              "%s.metadata.name or %s.metadata.namespace",
                              n->index, k, n->iters[k].name, prefix, prefix);
                n->valid = false;
            }
        }
    }

    if (n->include_src) {
        n->include = kiln_xcalloc(json_array_size(n->include_src) + 1, sizeof *n->include);
        json_array_foreach(n->include_src, i, item)
        {
            snprintf(p, sizeof p, "spec.resources[%zu].includeWhen[%zu]", n->index, i);
            size_t e = add_expr(g, n, CTX_INCLUDE, p, json_string_value(item), true, NULL, errs);
            if (e == (size_t)-1)
                n->valid = false;
            else
                n->include[n->ninclude++] = e;
        }
    }
    if (n->ready_src) {
        n->ready = kiln_xcalloc(json_array_size(n->ready_src) + 1, sizeof *n->ready);
        json_array_foreach(n->ready_src, i, item)
        {
            snprintf(p, sizeof p, "spec.resources[%zu].readyWhen[%zu]", n->index, i);
            size_t e = add_expr(g, n, CTX_READY, p, json_string_value(item), true, NULL, errs);
            if (e == (size_t)-1)
                n->valid = false;
            else
                n->ready[n->nready++] = e;
        }
    }
    for (size_t k = 0; k < n->niters; k++) {
        snprintf(p, sizeof p, "spec.resources[%zu].forEach[%zu].%s", n->index, k, n->iters[k].name);
        size_t e = add_expr(g, n, CTX_FOREACH, p, n->iters[k].src, true, NULL, errs);
        if (e == (size_t)-1)
            n->valid = false;
        n->iters[k].expr = e;
    }
}

/* Every expression of node n contributes its resource reads to n's edges. */
static void collect_node_deps(kiln_graph *g, gnode *n, const tnode *t)
{
    if (t->t == T_EXPR) {
        merge_deps(n, g->exprs[t->expr].deps, g->exprs[t->expr].ndeps);
        return;
    }
    for (size_t i = 0; i < t->n; i++)
        collect_node_deps(g, n, &t->kids[i]);
}

static void mark_status_needed(kiln_graph *g, const tnode *t)
{
    if (t->t == T_EXPR) {
        for (size_t i = 0; i < g->exprs[t->expr].ndeps; i++)
            g->nodes[g->exprs[t->expr].deps[i]].needed = true;
        return;
    }
    for (size_t i = 0; i < t->n; i++)
        mark_status_needed(g, &t->kids[i]);
}

int kiln_deps_build(kiln_graph *g, kiln_errs *errs)
{
    size_t before = errs->len;
    kiln_err err = {0};

    if (g->helpers) {
        if (kiln_lua_scan_names(&g->helper_names, g->helpers, &err) < 0) {
            kiln_errs_add(errs, err.code, "spec.lua: %s", err.msg);
        } else {
            /* A helper reading a resource would hide an edge from the graph. */
            for (size_t i = 0; i < g->helper_names.nfree; i++) {
                const char *f = g->helper_names.free_names[i];
                if (find_node(g, f) >= 0 && !names_declares(&g->helper_names, f))
                    kiln_errs_add(errs, KILN_EINVAL,
                                  "spec.lua: helpers may not read resource \"%s\"; pass it as "
                                  "an argument",
                                  f);
            }
        }
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        gnode *n = &g->nodes[i];
        if (!n->id || (!n->source && !n->script))
            continue;
        build_node(g, n, errs);
        collect_node_deps(g, n, &n->body);
        for (size_t k = 0; k < n->ninclude; k++)
            merge_deps(n, g->exprs[n->include[k]].deps, g->exprs[n->include[k]].ndeps);
        for (size_t k = 0; k < n->niters; k++)
            if (n->iters[k].expr != (size_t)-1)
                merge_deps(n, g->exprs[n->iters[k].expr].deps, g->exprs[n->iters[k].expr].ndeps);
    }
    for (size_t i = 0; i < g->nnodes; i++)
        for (size_t k = 0; k < g->nodes[i].ndeps; k++)
            g->nodes[g->nodes[i].deps[k]].needed = true;
    if (g->status_src && json_object_size(g->status_src) > 0) {
        build_ctx b = {.g = g, .n = NULL, .c = CTX_STATUS, .ok = true, .errs = errs};
        kiln_buf_init(&b.path, KILN_BUF_DEFAULT_LIMIT);
        kiln_buf_puts(&b.path, "spec.schema.status", NULL);
        build_tree(&b, &g->status, (json_t *)g->status_src);
        kiln_buf_free(&b.path);
        mark_status_needed(g, &g->status);
    }
    return errs->len > before ? errs->items[before].code : 0;
}
