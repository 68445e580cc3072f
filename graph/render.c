/* graph/render.c: one instance through a compiled graph.
 *
 * A render walks the nodes in topological order. Each node first looks at its
 * dependencies (an excluded one excludes it, one not ready makes it wait),
 * then evaluates includeWhen, then fills its precomputed template slots (or
 * runs its script) once per forEach item, then judges readiness from the
 * observed object. Each node that another node or the status reads is set as
 * a Lua variable once it has something to show: its observed object, or, in
 * offline mode, its desired one.
 *
 * Failures stay local: a script error or a limit hit fails that node only;
 * its dependents wait and independent nodes go on. The rule for a failed or
 * nil expression: when it reads another resource, the data may still arrive,
 * so the node is PENDING; with only `schema` and literals in reach nothing
 * will change by waiting, so it is a configuration ERROR naming the field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/schema.h"
#include "graph/impl.h"

typedef struct rctx {
    const kiln_graph *g;
    kiln_lua *L;
    const gbinding *b;
    const json_t *observed;
    bool offline;
    kiln_graph_scope_fn scope;
    void *scope_userdata;
    const char *inst_ns; /* NULL for a cluster-scoped instance */
    kiln_render_result *r;
    kiln_render_node **by_index; /* graph index -> result entry */
    const json_t **avail;        /* graph index -> what dependents see (borrowed) */
    size_t cap_pending;
} rctx;

/* A node's outcome while it is being rendered. */
typedef struct nres {
    kiln_node_state state;
    int code;
    char *msg; /* owned */
    bool note; /* also a pending note */
} nres;

static void add_note(rctx *c, char *note)
{
    kiln_render_result *r = c->r;
    if (r->npending == c->cap_pending) {
        c->cap_pending = c->cap_pending ? c->cap_pending * 2 : 8;
        r->pending = kiln_xrealloc(r->pending, c->cap_pending * sizeof *r->pending);
    }
    r->pending[r->npending++] = note;
}

/* The Lua message already starts with the chunk name (the field path) when the
 * failure happened inside the chunk; add the path when it did not. An
 * expression is one line, so its ":1:" goes; a script keeps its line. */
static char *with_path(const char *path, const char *msg)
{
    size_t n = strlen(path);
    if (strncmp(msg, path, n) != 0)
        return kiln_xasprintf("%s: %s", path, msg);
    if (msg[n] == ':' && msg[n + 1] >= '0' && msg[n + 1] <= '9' &&
        !(n >= 7 && strcmp(path + n - 7, ".script") == 0)) {
        const char *p = msg + n + 1;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == ':')
            return kiln_xasprintf("%s%s", path, p);
    }
    return kiln_xstrdup(msg);
}

static void set_res(nres *o, kiln_node_state state, int code, char *msg)
{
    kiln_xfree(o->msg);
    o->state = state;
    o->code = code;
    o->msg = msg;
}

/* Classifies a failed or nil evaluation of something that reads ndeps
 * resources. rc < 0: failed with err; rc == 0: the value was nil. */
static void classify(nres *o, int rc, const kiln_err *err, const char *path, size_t ndeps,
                     bool nil_ok)
{
    if (rc == 0) {
        if (ndeps == 0 && nil_ok)
            return;
        if (ndeps > 0)
            set_res(
                o, KILN_NODE_PENDING, 0,
                kiln_xasprintf("%s: no value yet (waiting for data from another resource)", path));
        else
            set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                    kiln_xasprintf("%s: expression yielded nil", path));
        o->note = ndeps > 0;
        return;
    }
    if (rc == KILN_ELIMIT || ndeps == 0) {
        set_res(o, KILN_NODE_ERROR, rc, with_path(path, err->msg));
        return;
    }
    set_res(o, KILN_NODE_PENDING, 0, with_path(path, err->msg));
    o->note = true;
}

static int eval_expr(rctx *c, const gexpr *e, json_t **out, kiln_err *err)
{
    int rc = kiln_lua_eval_template(c->L, out, c->b->env, &e->tmpl, &c->b->pfns[e->part0], err);
    if (rc < 0 && err) {
        /* A shared chunk is named after its first use: name this field. */
        for (size_t k = 0; k < e->tmpl.nexprs; k++) {
            const char *name = c->g->chunks[c->g->parts[e->part0 + k]].name;
            size_t n = strlen(name);
            if (strcmp(name, e->path) != 0 && strncmp(err->msg, name, n) == 0 &&
                err->msg[n] == ':') {
                char *m = kiln_xasprintf("%s%s", e->path, err->msg + n);
                snprintf(err->msg, sizeof err->msg, "%s", m);
                kiln_xfree(m);
                break;
            }
        }
    }
    return rc;
}

/* Fills template tree t into *out (new, or NULL when nil removed it). Returns
 * false when the node failed (o says how). */
static bool fill(rctx *c, const tnode *t, json_t **out, nres *o)
{
    *out = NULL;
    switch (t->t) {
    case T_LIT:
        *out = json_deep_copy(t->lit);
        return true;
    case T_EXPR: {
        const gexpr *e = &c->g->exprs[t->expr];
        kiln_err err = {0};
        json_t *v = NULL;
        int rc = eval_expr(c, e, &v, &err);
        if (rc < 0 || !v) {
            classify(o, rc < 0 ? rc : 0, &err, e->path, e->ndeps, true);
            return o->state != KILN_NODE_PENDING && o->state != KILN_NODE_ERROR;
        }
        *out = v;
        return true;
    }
    case T_OBJ: {
        json_t *obj = json_object();
        for (size_t i = 0; i < t->n; i++) {
            json_t *v;
            if (!fill(c, &t->kids[i], &v, o)) {
                json_decref(obj);
                return false;
            }
            if (v)
                json_object_set_new(obj, t->keys[i], v);
        }
        *out = obj;
        return true;
    }
    case T_ARR: {
        json_t *arr = json_array();
        for (size_t i = 0; i < t->n; i++) {
            json_t *v;
            if (!fill(c, &t->kids[i], &v, o)) {
                json_decref(arr);
                return false;
            }
            if (v)
                json_array_append_new(arr, v);
        }
        *out = arr;
        return true;
    }
    }
    return false;
}

static bool kind_cluster_scoped(rctx *c, const char *api_version, const char *kind)
{
    int s = -1;
    if (c->scope)
        s = c->scope(c->scope_userdata, api_version, kind);
    if (s < 0 && c->g->scope && c->g->scope != c->scope)
        s = c->g->scope(c->g->scope_userdata, api_version, kind);
    if (s < 0)
        s = kiln_graph_kind_is_cluster_scoped(api_version, kind) ? 1 : 0;
    return s == 1;
}

/* Checks one rendered object and gives a namespaced one the instance's
 * namespace. */
static bool finish_object(rctx *c, const gnode *n, json_t *obj, nres *o)
{
    const char *what = kiln_graph_node_kind_name(n->kind);
    json_t *md = json_object_get(obj, "metadata");
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *name = json_string_value(json_object_get(md, "name"));
    json_t *ns;

    if (!json_is_object(obj)) {
        set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                kiln_xasprintf("spec.resources[%zu].%s: expected an object, got %s", n->index, what,
                               kiln_json_type_name(obj)));
        return false;
    }
    if (!av || !kind || !json_is_object(md) || !name || !*name) {
        const char *field = !av                   ? "apiVersion"
                            : !kind               ? "kind"
                            : !json_is_object(md) ? "metadata"
                                                  : "metadata.name";
        const json_t *got = !av                   ? json_object_get(obj, "apiVersion")
                            : !kind               ? json_object_get(obj, "kind")
                            : !json_is_object(md) ? md
                                                  : json_object_get(md, "name");
        set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                kiln_xasprintf(
                    "spec.resources[%zu].%s.%s: expected a non-empty %s, got %s", n->index, what,
                    field, json_is_object(md) || !av || !kind ? "string" : "object",
                    got ? (json_is_string(got) ? "\"\"" : kiln_json_type_name(got)) : "nothing"));
        return false;
    }
    ns = json_object_get(md, "namespace");
    if (kind_cluster_scoped(c, av, kind)) {
        if (ns && json_string_length(ns) > 0) {
            set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                    kiln_xasprintf("spec.resources[%zu].%s.metadata.namespace: %s is "
                                   "cluster-scoped and takes no namespace",
                                   n->index, what, kind));
            return false;
        }
        return true;
    }
    if (!ns || json_string_length(ns) == 0) {
        if (!c->inst_ns) {
            set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                    kiln_xasprintf("spec.resources[%zu].%s.metadata.namespace: %s \"%s\" is "
                                   "namespaced and the instance is cluster-scoped: set a "
                                   "namespace",
                                   n->index, what, kind, name));
            return false;
        }
        json_object_set_new(md, "namespace", json_string(c->inst_ns));
    } else if (!json_is_string(ns)) {
        set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                kiln_xasprintf("spec.resources[%zu].%s.metadata.namespace: expected string, got "
                               "%s",
                               n->index, what, kiln_json_type_name(ns)));
        return false;
    }
    return true;
}

typedef struct ident {
    char *key;
    size_t item;
} ident;

static int ident_cmp(const void *a, const void *b)
{
    const ident *x = a, *y = b;
    int d = strcmp(x->key, y->key);
    return d ? d : (x->item < y->item ? -1 : x->item > y->item);
}

/* Two items with the same identity would be one object applied twice. At
 * most 1,000 items: sorting their keys is cheap. */
static bool check_identities(const gnode *n, const json_t *items, nres *o)
{
    size_t count = json_array_size(items);
    ident *ids = kiln_xcalloc(count ? count : 1, sizeof *ids);
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        const json_t *obj = json_array_get(items, i);
        const json_t *md = json_object_get(obj, "metadata");
        const char *av = json_string_value(json_object_get(obj, "apiVersion"));
        const char *slash = av ? strchr(av, '/') : NULL;
        ids[i].key = kiln_xasprintf("%.*s|%s|%s|%s", slash ? (int)(slash - av) : 0, av ? av : "",
                                    json_string_value(json_object_get(obj, "kind")),
                                    json_string_value(json_object_get(md, "namespace"))
                                        ? json_string_value(json_object_get(md, "namespace"))
                                        : "",
                                    json_string_value(json_object_get(md, "name")));
        ids[i].item = i;
    }
    qsort(ids, count, sizeof *ids, ident_cmp);
    for (size_t i = 1; i < count && ok; i++) {
        if (strcmp(ids[i - 1].key, ids[i].key) == 0) {
            const json_t *obj = json_array_get(items, ids[i].item);
            const json_t *md = json_object_get(obj, "metadata");
            const char *ns = json_string_value(json_object_get(md, "namespace"));
            set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                    kiln_xasprintf("spec.resources[%zu]: items %zu and %zu have the same identity "
                                   "(%s %s%s%s)",
                                   n->index, ids[i - 1].item, ids[i].item,
                                   json_string_value(json_object_get(obj, "kind")), ns ? ns : "",
                                   ns ? "/" : "", json_string_value(json_object_get(md, "name"))));
            ok = false;
        }
    }
    for (size_t i = 0; i < count; i++)
        kiln_xfree(ids[i].key);
    kiln_xfree(ids);
    return ok;
}

/* One object of the node (one forEach item, or the only one): *out new. */
static bool render_one(rctx *c, const gnode *n, json_t **out, bool *excluded, nres *o)
{
    *out = NULL;
    if (n->kind == KILN_GRAPH_NODE_SCRIPT) {
        kiln_err err = {0};
        json_t *v = NULL;
        char path[64];
        int rc = kiln_lua_eval(c->L, &v, c->b->env, c->b->fns[n->script_chunk], &err);
        snprintf(path, sizeof path, "spec.resources[%zu].script", n->index);
        if (rc < 0) {
            classify(o, rc, &err, path, n->nscript_deps, false);
            return false;
        }
        if (!v) {
            *excluded = true;
            return true;
        }
        *out = v;
        return true;
    }
    if (!fill(c, &n->body, out, o))
        return false;
    return true;
}

/* Finishes what render_one produced: objects checked and namespaced; a
 * script's list becomes a collection. */
static bool finish(rctx *c, const gnode *n, json_t *v, nres *o)
{
    if (n->kind == KILN_GRAPH_NODE_VALIDATION)
        return true;
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) if (!finish_object(c, n, item, o)) return false;
        return true;
    }
    return finish_object(c, n, v, o);
}

static json_t *render_collection(rctx *c, const gnode *n, nres *o)
{
    json_t *lists[KILN_GRAPH_MAX_COLLECTION_DIMS * 4] = {0};
    size_t sizes[KILN_GRAPH_MAX_COLLECTION_DIMS * 4] = {0}, idx[KILN_GRAPH_MAX_COLLECTION_DIMS * 4];
    size_t total = 1, dims = n->niters;
    json_t *items = NULL;
    kiln_err err = {0};
    bool ok = false;

    for (size_t k = 0; k < dims; k++) {
        const gexpr *e = &c->g->exprs[n->iters[k].expr];
        int rc = eval_expr(c, e, &lists[k], &err);
        if (rc < 0 || !lists[k]) {
            classify(o, rc < 0 ? rc : 0, &err, e->path, e->ndeps, false);
            goto out;
        }
        if (!json_is_array(lists[k])) {
            /* An empty Lua table reads as an object unless pinned with array(). */
            if (json_is_object(lists[k]) && json_object_size(lists[k]) == 0) {
                json_decref(lists[k]);
                lists[k] = json_array();
            } else {
                set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                        kiln_xasprintf("%s: expected a list, got %s", e->path,
                                       kiln_json_type_name(lists[k])));
                goto out;
            }
        }
        sizes[k] = json_array_size(lists[k]);
        if (sizes[k] == 0)
            total = 0;
        else if (total > c->g->max_items / sizes[k] + 1)
            total = c->g->max_items + 1;
        else
            total *= sizes[k];
    }
    if (total > c->g->max_items) {
        set_res(o, KILN_NODE_ERROR, KILN_ELIMIT,
                kiln_xasprintf("spec.resources[%zu].forEach: more than %zu items (the product "
                               "of the iterator lists)",
                               n->index, c->g->max_items));
        goto out;
    }
    items = json_array();
    memset(idx, 0, sizeof idx);
    for (size_t item = 0, from = 0; item < total; item++) {
        json_t *v = NULL;
        bool excluded = false;
        /* Only the iterators that moved since the last item are set again. */
        for (size_t k = from; k < dims; k++) {
            if (kiln_lua_env_set(c->L, c->b->env, n->iters[k].name,
                                 json_array_get(lists[k], idx[k]), &err) < 0) {
                set_res(o, KILN_NODE_ERROR, err.code,
                        with_path(c->g->exprs[n->iters[k].expr].path, err.msg));
                goto out;
            }
        }
        if (!render_one(c, n, &v, &excluded, o))
            goto out;
        if (v && json_is_array(v)) {
            set_res(o, KILN_NODE_ERROR, KILN_EINVAL,
                    kiln_xasprintf("spec.resources[%zu].script: a forEach script returns one "
                                   "object per item, got a list",
                                   n->index));
            json_decref(v);
            goto out;
        }
        if (v) {
            if (!finish(c, n, v, o)) {
                json_decref(v);
                goto out;
            }
            json_array_append_new(items, v);
        }
        /* Odometer, last iterator fastest: the first iterator is outermost. */
        for (size_t k = dims; k-- > 0;) {
            if (++idx[k] < sizes[k]) {
                from = k;
                break;
            }
            idx[k] = 0;
        }
    }
    ok = check_identities(n, items, o);
out:
    if (!ok) {
        json_decref(items);
        items = NULL;
    }
    for (size_t k = 0; k < dims; k++) {
        kiln_lua_env_set(c->L, c->b->env, n->iters[k].name, NULL, NULL);
        json_decref(lists[k]);
    }
    return items;
}

/* includeWhen: every entry must be true. Returns false when the node is
 * settled (excluded, pending or failed). */
static bool eval_include(rctx *c, const gnode *n, nres *o)
{
    for (size_t k = 0; k < n->ninclude; k++) {
        const gexpr *e = &c->g->exprs[n->include[k]];
        kiln_err err = {0};
        json_t *v = NULL;
        int rc = eval_expr(c, e, &v, &err);
        if (rc < 0 || !v) {
            classify(o, rc < 0 ? rc : 0, &err, e->path, e->ndeps, false);
            return false;
        }
        if (!json_is_boolean(v)) {
            set_res(
                o, KILN_NODE_ERROR, KILN_EINVAL,
                kiln_xasprintf("%s: expected boolean, got %s", e->path, kiln_json_type_name(v)));
            json_decref(v);
            return false;
        }
        if (json_is_false(v)) {
            set_res(o, KILN_NODE_EXCLUDED, 0, kiln_xasprintf("%s is false", e->path));
            json_decref(v);
            return false;
        }
        json_decref(v);
    }
    return true;
}

/* readyWhen on the observed object (already set as the node's variable). */
static void eval_ready(rctx *c, const gnode *n, nres *o)
{
    for (size_t k = 0; k < n->nready; k++) {
        const gexpr *e = &c->g->exprs[n->ready[k]];
        kiln_err err = {0};
        json_t *v = NULL;
        int rc = eval_expr(c, e, &v, &err);
        if (rc == KILN_ELIMIT) {
            set_res(o, KILN_NODE_ERROR, rc, with_path(e->path, err.msg));
            return;
        }
        /* Missing fields of an observed object are data not there yet: say
         * so, with Lua's words after, rather than show them as an error. */
        if (rc < 0) {
            size_t plen = strlen(e->path);
            const char *why = err.msg;
            /* Lua says "<path>:<line>: ..." (the chunk's name is the path). */
            if (strncmp(why, e->path, plen) == 0 && why[plen] == ':') {
                const char *q = why + plen + 1;
                while (*q >= '0' && *q <= '9')
                    q++;
                if (*q == ':')
                    q++;
                while (*q == ' ')
                    q++;
                why = q;
            }
            set_res(o, KILN_NODE_PENDING, 0,
                    kiln_xasprintf("%s: not observed yet (%s)", e->path, why));
            return;
        }
        if (v && !json_is_boolean(v)) {
            set_res(
                o, KILN_NODE_ERROR, KILN_EINVAL,
                kiln_xasprintf("%s: expected boolean, got %s", e->path, kiln_json_type_name(v)));
            json_decref(v);
            return;
        }
        if (!json_is_true(v)) {
            set_res(o, KILN_NODE_PENDING, 0,
                    kiln_xasprintf("%s is %s", e->path, v ? "false" : "nil"));
            json_decref(v);
            return;
        }
        json_decref(v);
    }
    set_res(o, KILN_NODE_READY, 0, NULL);
}

static void judge_ready(rctx *c, const gnode *n, const json_t *obs, const json_t *desired, nres *o)
{
    if (n->kind == KILN_GRAPH_NODE_VALIDATION) {
        if (!obs) {
            if (c->offline)
                set_res(o, KILN_NODE_READY, 0, NULL);
            else
                set_res(o, KILN_NODE_PENDING, 0,
                        kiln_xstrdup("waiting for GPU validation results"));
        } else if (json_is_true(json_object_get(obs, "passed"))) {
            set_res(o, KILN_NODE_READY, 0, NULL);
        } else {
            const char *m = json_string_value(json_object_get(obs, "message"));
            set_res(o, KILN_NODE_PENDING, 0,
                    kiln_xasprintf("GPU validation has not passed%s%s", m ? ": " : "", m ? m : ""));
        }
        return;
    }
    /* An empty collection has nothing to wait for. */
    if (!obs && json_is_array(desired) && json_array_size(desired) == 0) {
        set_res(o, KILN_NODE_READY, 0, NULL);
        return;
    }
    if (!obs) {
        if (n->kind == KILN_GRAPH_NODE_EXTERNAL_REF) {
            const json_t *md = json_object_get(desired, "metadata");
            const char *ns = json_string_value(json_object_get(md, "namespace"));
            set_res(o, KILN_NODE_PENDING, 0,
                    kiln_xasprintf("waiting for %s %s%s%s to exist",
                                   json_string_value(json_object_get(desired, "kind")),
                                   ns ? ns : "", ns ? "/" : "",
                                   json_string_value(json_object_get(md, "name"))));
            o->note = c->offline;
        } else if (c->offline) {
            set_res(o, KILN_NODE_READY, 0, NULL);
        } else {
            set_res(o, KILN_NODE_PENDING, 0, kiln_xstrdup("not observed yet"));
        }
        return;
    }
    if (json_is_array(desired)) {
        size_t want = json_array_size(desired);
        size_t have = json_is_array(obs) ? json_array_size(obs) : 0;
        if (have < want) {
            set_res(o, KILN_NODE_PENDING, 0,
                    kiln_xasprintf("%zu of %zu items observed", have, want));
            return;
        }
    }
    if (n->nready > 0) {
        kiln_err err = {0};
        if (kiln_lua_env_set(c->L, c->b->env, n->id, obs, &err) < 0) {
            set_res(o, KILN_NODE_ERROR, err.code,
                    kiln_xasprintf("spec.resources[%zu]: observed object: %s", n->index, err.msg));
            return;
        }
        eval_ready(c, n, o);
        return;
    }
    set_res(o, KILN_NODE_READY, 0, NULL);
}

static bool dep_ready(rctx *c, size_t d)
{
    const kiln_render_node *rn = c->by_index[d];
    if (c->offline)
        return c->avail[d] != NULL && rn->state != KILN_NODE_ERROR &&
               rn->state != KILN_NODE_WAITING && rn->state != KILN_NODE_EXCLUDED &&
               !(rn->state == KILN_NODE_PENDING && !rn->desired && !rn->observed);
    return rn->state == KILN_NODE_READY;
}

static void render_node(rctx *c, const gnode *n, kiln_render_node *rn)
{
    nres o = {KILN_NODE_READY, 0, NULL, false};
    const json_t *obs = c->observed ? json_object_get(c->observed, n->id) : NULL;
    json_t *desired = NULL;
    bool excluded = false;

    rn->observed = obs != NULL;
    rn->read_only = n->kind == KILN_GRAPH_NODE_EXTERNAL_REF;
    if (!n->valid) {
        set_res(&o, KILN_NODE_ERROR, KILN_EINVAL,
                kiln_xasprintf("spec.resources[%zu]: invalid resource", n->index));
        goto done;
    }
    for (size_t k = 0; k < n->ndeps; k++) {
        if (c->by_index[n->deps[k]]->state == KILN_NODE_EXCLUDED) {
            set_res(
                &o, KILN_NODE_EXCLUDED, 0,
                kiln_xasprintf("depends on excluded resource \"%s\"", c->g->nodes[n->deps[k]].id));
            goto done;
        }
    }
    /* includeWhen first when its own inputs are there: a node switched off
     * by the instance spec is EXCLUDED at once, not WAITING on the rest. */
    bool include_inputs = true;
    for (size_t k = 0; k < n->ninclude; k++) {
        const gexpr *e = &c->g->exprs[n->include[k]];
        for (size_t d = 0; d < e->ndeps; d++)
            include_inputs = include_inputs && dep_ready(c, e->deps[d]);
    }
    if (n->ninclude > 0 && include_inputs && !eval_include(c, n, &o))
        goto done;
    for (size_t k = 0; k < n->ndeps; k++) {
        if (!dep_ready(c, n->deps[k])) {
            set_res(&o, KILN_NODE_WAITING, 0,
                    kiln_xasprintf("waiting for \"%s\"", c->g->nodes[n->deps[k]].id));
            goto done;
        }
    }
    if (n->niters > 0) {
        desired = render_collection(c, n, &o);
        if (!desired)
            goto done;
    } else {
        if (!render_one(c, n, &desired, &excluded, &o))
            goto done;
        if (excluded) {
            set_res(&o, KILN_NODE_EXCLUDED, 0,
                    kiln_xasprintf("spec.resources[%zu].script returned nil", n->index));
            goto done;
        }
        if (!finish(c, n, desired, &o))
            goto done;
        if (json_is_array(desired) && !check_identities(n, desired, &o))
            goto done;
    }
    judge_ready(c, n, obs, desired, &o);
done:
    if (o.state == KILN_NODE_ERROR || o.state == KILN_NODE_WAITING ||
        o.state == KILN_NODE_EXCLUDED || (o.state == KILN_NODE_PENDING && o.note && !obs)) {
        /* Nothing renderable: keep no half-made object. */
        if (o.state != KILN_NODE_PENDING || n->kind != KILN_GRAPH_NODE_EXTERNAL_REF) {
            json_decref(desired);
            desired = NULL;
        }
    }
    rn->state = o.state;
    rn->code = o.state == KILN_NODE_ERROR ? (o.code ? o.code : KILN_EINVAL) : 0;
    rn->message = o.msg;
    rn->desired = desired;
    if (o.note && o.msg)
        add_note(c, kiln_xasprintf("%s: %s", n->id, o.msg));
    if (o.state != KILN_NODE_EXCLUDED) {
        if (obs)
            c->avail[n->index] = obs;
        else if (c->offline && desired && n->kind != KILN_GRAPH_NODE_EXTERNAL_REF) {
            /* Offline, a validation node counts as passed, on no node in
             * particular: dependents render as they will once it passed. */
            if (n->kind == KILN_GRAPH_NODE_VALIDATION && json_is_object(desired) &&
                !json_object_get(desired, "passed")) {
                json_object_set_new(desired, "passed", json_true());
                json_object_set_new(desired, "simulated", json_false());
                json_object_set_new(desired, "phase", json_string("Passed"));
                json_object_set_new(desired, "nodes", json_array());
            }
            c->avail[n->index] = desired;
        } else if (json_is_array(desired) && json_array_size(desired) == 0)
            c->avail[n->index] = desired; /* an empty collection is all there is to see */
    }
    if (n->needed && c->avail[n->index]) {
        kiln_err err = {0};
        if (kiln_lua_env_set(c->L, c->b->env, n->id, c->avail[n->index], &err) < 0 &&
            rn->state != KILN_NODE_ERROR) {
            rn->state = KILN_NODE_ERROR;
            rn->code = err.code;
            kiln_xfree(rn->message);
            rn->message = kiln_xasprintf("spec.resources[%zu]: %s", n->index, err.msg);
            c->avail[n->index] = NULL;
        }
    }
}

/* Status leaves are evaluated only when every resource they read is there. */
static json_t *project(rctx *c, const tnode *t)
{
    if (t->t == T_EXPR) {
        const gexpr *e = &c->g->exprs[t->expr];
        const char *path = strncmp(e->path, "spec.schema.", 12) == 0 ? e->path + 12 : e->path;
        kiln_err err = {0};
        json_t *v = NULL;
        for (size_t k = 0; k < e->ndeps; k++) {
            const kiln_render_node *rn = c->by_index[e->deps[k]];
            if (rn->state == KILN_NODE_EXCLUDED)
                return NULL;
            if (!c->avail[e->deps[k]]) {
                add_note(
                    c, kiln_xasprintf("%s: waiting for \"%s\"", path, c->g->nodes[e->deps[k]].id));
                return NULL;
            }
        }
        int rc = eval_expr(c, e, &v, &err);
        if (rc < 0) {
            char *m = with_path(e->path, err.msg);
            add_note(c, kiln_xasprintf("%s%s", path, m + strlen(e->path)));
            kiln_xfree(m);
            return NULL;
        }
        if (!v)
            add_note(c, kiln_xasprintf("%s: no value yet", path));
        return v;
    }
    if (t->t == T_OBJ) {
        json_t *obj = json_object();
        for (size_t i = 0; i < t->n; i++) {
            json_t *v = project(c, &t->kids[i]);
            if (v)
                json_object_set_new(obj, t->keys[i], v);
        }
        if (json_object_size(obj) == 0) {
            json_decref(obj);
            return NULL;
        }
        return obj;
    }
    if (t->t == T_ARR) {
        json_t *arr = json_array();
        for (size_t i = 0; i < t->n; i++) {
            json_t *v = project(c, &t->kids[i]);
            if (v)
                json_array_append_new(arr, v);
        }
        return arr;
    }
    return NULL;
}

/* Defaults and validates the instance spec; builds the `schema` variable. */
static int prepare_instance(const kiln_graph *g, const json_t *instance, json_t **spec_out,
                            json_t **schema_out, kiln_err *err)
{
    const json_t *md = json_object_get(instance, "metadata");
    json_t *spec = NULL, *schema = NULL;
    kiln_schema_errors serrs = {0};
    int rc = 0;

    if (!json_is_object(instance))
        return kiln_err_set(err, KILN_EINVAL, "instance: expected object, got %s",
                            kiln_json_type_name(instance));
    const char *kind = json_string_value(json_object_get(instance, "kind"));
    const char *av = json_string_value(json_object_get(instance, "apiVersion"));
    if ((kind && g->kind && strcmp(kind, g->kind) != 0) ||
        (av && g->api_version && strcmp(av, g->api_version) != 0))
        return kiln_err_set(err, KILN_EINVAL, "instance: expected %s %s, got %s %s (RGD \"%s\")",
                            g->api_version, g->kind, av ? av : "-", kind ? kind : "-", g->name);
    if (md && !json_is_object(md))
        return kiln_err_set(err, KILN_EINVAL, "instance metadata: expected object, got %s",
                            kiln_json_type_name(md));
    spec = json_object_get(instance, "spec");
    if (spec && !json_is_object(spec))
        return kiln_err_set(err, KILN_EINVAL, "spec: expected object, got %s",
                            kiln_json_type_name(spec));
    spec = spec ? json_deep_copy(spec) : json_object();
    if (g->spec_schema) {
        kiln_schema_default(spec, g->spec_schema);
        if (kiln_schema_validate(spec, g->spec_schema, "spec", &serrs) < 0) {
            char *qkind = kiln_xasprintf("%s.%s", g->kind, g->group);
            char *m = kiln_schema_errors_format(
                &serrs, qkind, md ? json_string_value(json_object_get(md, "name")) : "");
            rc = kiln_err_set(err, KILN_EINVAL, "%s", m);
            kiln_xfree(m);
            kiln_xfree(qkind);
            kiln_schema_errors_free(&serrs);
            json_decref(spec);
            return rc;
        }
    }
    schema = json_object();
    json_object_set_new(schema, "metadata", md ? json_deep_copy(md) : json_object());
    json_object_set(schema, "spec", spec);
    *spec_out = spec;
    *schema_out = schema;
    return 0;
}

int kiln_graph_render(kiln_render_result **out, const kiln_graph *g, kiln_lua *L,
                      const json_t *instance, const json_t *observed,
                      const kiln_render_options *opts, kiln_err *err)
{
    rctx c;
    kiln_render_result *r = NULL;
    json_t *spec = NULL, *schema = NULL;
    int rc;

    *out = NULL;
    memset(&c, 0, sizeof c);
    if ((rc = prepare_instance(g, instance, &spec, &schema, err)) < 0)
        goto fail;
    if ((rc = kiln_bind_get(&c.b, g, L, err)) < 0)
        goto fail;
    c.g = g;
    c.L = L;
    c.observed = json_is_object(observed) ? observed : NULL;
    c.offline = opts && opts->offline;
    c.scope = opts && opts->scope ? opts->scope : g->scope;
    c.scope_userdata = opts && opts->scope ? opts->scope_userdata : g->scope_userdata;
    if (!g->cluster) {
        const char *ns =
            json_string_value(json_object_get(json_object_get(instance, "metadata"), "namespace"));
        /* kubectl puts an instance without a namespace into "default". */
        c.inst_ns = ns && *ns ? ns : "default";
    }

    kiln_lua_env_clear(L, c.b->env);
    if ((rc = kiln_lua_env_set(L, c.b->env, "schema", schema, err)) < 0) {
        kiln_err_prefix(err, "instance");
        goto fail;
    }

    r = kiln_xcalloc(1, sizeof *r);
    c.r = r;
    r->nnodes = g->nnodes;
    r->nodes = kiln_xcalloc(g->nnodes ? g->nnodes : 1, sizeof *r->nodes);
    c.by_index = kiln_xcalloc(g->nnodes ? g->nnodes : 1, sizeof *c.by_index);
    c.avail = kiln_xcalloc(g->nnodes ? g->nnodes : 1, sizeof *c.avail);
    for (size_t k = 0; k < g->nnodes; k++) {
        size_t i = g->order[k];
        r->nodes[k].node = i;
        r->nodes[k].id = g->nodes[i].id;
        c.by_index[i] = &r->nodes[k];
    }
    for (size_t k = 0; k < g->nnodes; k++)
        render_node(&c, &g->nodes[g->order[k]], &r->nodes[k]);
    r->status = g->status.t == T_OBJ && g->status.n ? project(&c, &g->status) : NULL;
    if (!r->status)
        r->status = json_object();
    r->spec = spec;
    spec = NULL;
    kiln_lua_env_clear(L, c.b->env);
    *out = r;
    r = NULL;
    rc = 0;
fail:
    kiln_xfree(c.by_index);
    kiln_xfree(c.avail);
    kiln_render_result_free(r);
    json_decref(spec);
    json_decref(schema);
    return rc;
}

void kiln_render_result_free(kiln_render_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nnodes; i++) {
        kiln_xfree(r->nodes[i].message);
        json_decref(r->nodes[i].desired);
    }
    kiln_xfree(r->nodes);
    for (size_t i = 0; i < r->npending; i++)
        kiln_xfree(r->pending[i]);
    kiln_xfree(r->pending);
    json_decref(r->spec);
    json_decref(r->status);
    kiln_xfree(r);
}

const kiln_render_node *kiln_render_result_find(const kiln_render_result *r, const char *id)
{
    for (size_t i = 0; r && i < r->nnodes; i++)
        if (r->nodes[i].id && strcmp(r->nodes[i].id, id) == 0)
            return &r->nodes[i];
    return NULL;
}
