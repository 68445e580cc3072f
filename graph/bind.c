/* graph/bind.c: a graph's compiled chunks in one Lua state.
 *
 * Handles are per state, the graph is shared: the first render of a graph in a
 * state compiles every chunk there (a binding) and every later render reuses
 * it. The list of bindings is the only mutable part of a compiled graph; the
 * lock covers the list only, never a compilation, because a state belongs to
 * one thread and no other thread can be binding the same state.
 */
#include <string.h>

#include "core/mem.h"
#include "graph/impl.h"

static void binding_release(const kiln_graph *g, gbinding *b, size_t ncompiled)
{
    for (size_t i = 0; i < ncompiled; i++)
        if (b->fns[i] >= 0)
            kiln_lua_release(b->L, b->fns[i]);
    if (b->env >= 0)
        kiln_lua_env_free(b->L, b->env);
    (void)g;
    kiln_xfree(b->fns);
    kiln_xfree(b->pfns);
    kiln_xfree(b);
}

/* Compiles everything; each failure goes to errs when given, else the first
 * to err. Returns the binding, or NULL after a failure. */
static gbinding *binding_new(const kiln_graph *g, kiln_lua *L, kiln_errs *errs, kiln_err *err)
{
    gbinding *b = kiln_xcalloc(1, sizeof *b);
    bool failed = false;
    kiln_err e = {0};

    b->L = L;
    b->env = -1;
    b->fns = kiln_xmalloc((g->nchunks ? g->nchunks : 1) * sizeof *b->fns);
    for (size_t i = 0; i < g->nchunks; i++)
        b->fns[i] = -1;
    if (kiln_lua_env_new(L, &b->env, g->helpers, "spec.lua", &e) < 0) {
        b->env = -1;
        if (errs)
            kiln_errs_add(errs, e.code, "spec.lua: %s", e.msg);
        else
            kiln_err_set(err, e.code, "spec.lua: %s", e.msg);
        failed = true;
        if (!errs)
            goto out;
    }
    for (size_t i = 0; i < g->nchunks; i++) {
        const gchunk *c = &g->chunks[i];
        int rc = c->script ? kiln_lua_compile_script(L, &b->fns[i], c->src, c->name, &e)
                           : kiln_lua_compile_expr(L, &b->fns[i], c->src, c->name, &e);
        if (rc < 0) {
            b->fns[i] = -1;
            failed = true;
            /* The sandbox names the chunk in its message; add the path only
             * when it did not. */
            if (strstr(e.msg, c->name)) {
                if (errs)
                    kiln_errs_add(errs, e.code, "%s", e.msg);
                else
                    kiln_err_set(err, e.code, "%s", e.msg);
            } else {
                if (errs)
                    kiln_errs_add(errs, e.code, "%s: %s", c->name, e.msg);
                else
                    kiln_err_set(err, e.code, "%s: %s", c->name, e.msg);
            }
            if (!errs)
                goto out;
        }
    }
out:
    if (failed) {
        binding_release(g, b, g->nchunks);
        return NULL;
    }
    b->pfns = kiln_xmalloc((g->nparts ? g->nparts : 1) * sizeof *b->pfns);
    for (size_t i = 0; i < g->nparts; i++)
        b->pfns[i] = b->fns[g->parts[i]];
    return b;
}

static gbinding *find_binding(const kiln_graph *g, const kiln_lua *L)
{
    for (gbinding *b = g->bindings; b; b = b->next)
        if (b->L == L)
            return b;
    return NULL;
}

static void push_binding(const kiln_graph *g, gbinding *b)
{
    kiln_graph *mg = (kiln_graph *)g;
    pthread_mutex_lock(&mg->bind_lock);
    b->next = mg->bindings;
    mg->bindings = b;
    pthread_mutex_unlock(&mg->bind_lock);
}

int kiln_bind_get(const gbinding **out, const kiln_graph *g, kiln_lua *L, kiln_err *err)
{
    kiln_graph *mg = (kiln_graph *)g;
    gbinding *b;

    pthread_mutex_lock(&mg->bind_lock);
    b = find_binding(g, L);
    pthread_mutex_unlock(&mg->bind_lock);
    if (!b) {
        b = binding_new(g, L, NULL, err);
        if (!b)
            return err ? err->code : KILN_ESCRIPT;
        push_binding(g, b);
    }
    *out = b;
    return 0;
}

int kiln_bind_check(const kiln_graph *g, kiln_lua *L, kiln_errs *errs)
{
    size_t before = errs->len;
    gbinding *b;
    kiln_graph *mg = (kiln_graph *)g;

    pthread_mutex_lock(&mg->bind_lock);
    b = find_binding(g, L);
    pthread_mutex_unlock(&mg->bind_lock);
    if (b)
        return 0;
    b = binding_new(g, L, errs, NULL);
    if (b)
        push_binding(g, b);
    return errs->len > before ? errs->items[before].code : 0;
}

void kiln_graph_unbind(const kiln_graph *g, kiln_lua *L)
{
    kiln_graph *mg = (kiln_graph *)g;
    gbinding **pp, *found = NULL;

    if (!g || !L)
        return;
    pthread_mutex_lock(&mg->bind_lock);
    for (pp = &mg->bindings; *pp; pp = &(*pp)->next) {
        if ((*pp)->L == L) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&mg->bind_lock);
    if (found)
        binding_release(g, found, g->nchunks);
}

/* Frees the binding records without touching their states: the states may
 * belong to other threads or be gone (see graph.h). */
void kiln_bind_free_all(kiln_graph *g)
{
    gbinding *b = g->bindings, *next;
    for (; b; b = next) {
        next = b->next;
        kiln_xfree(b->fns);
        kiln_xfree(b->pfns);
        kiln_xfree(b);
    }
    g->bindings = NULL;
}
