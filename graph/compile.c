/* graph/compile.c: kiln_graph_compile and the accessors of a compiled graph.
 *
 * The pipeline: parse the RGD (rgd.c), build expressions and edges (deps.c),
 * order the nodes (dag.c), synthesize the CRD (crd.h), compile every chunk in
 * a Lua state (bind.c), then dry-render an instance made of the schema's
 * defaults (render.c). Every stage runs even when an earlier one found
 * problems, as far as its input allows, so `kiln lint` shows them all at once.
 *
 * The dry-render instance: the spec's defaults, plus a placeholder for every
 * required field that has no default (the first enum value, else the minimum,
 * else 1 for numbers, "placeholder" for strings, false, [] and {} with their
 * own required fields filled). Errors it finds with only `schema` and
 * literals in reach are configuration errors and fail the compile.
 */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/schema.h"
#include "graph/crd.h"
#include "graph/dag.h"
#include "graph/impl.h"

static json_t *placeholder(const json_t *schema, int depth);

static void fill_required(json_t *obj, const json_t *schema, int depth)
{
    const json_t *req = json_object_get(schema, "required");
    const json_t *props = json_object_get(schema, "properties");
    size_t i;
    json_t *name;
    if (depth > 32)
        return;
    json_array_foreach(req, i, name)
    {
        const char *k = json_string_value(name);
        const json_t *ps = json_object_get(props, k ? k : "");
        if (!k || json_object_get(obj, k) || !ps || json_object_get(ps, "default"))
            continue;
        json_object_set_new(obj, k, placeholder(ps, depth + 1));
    }
}

static json_t *placeholder(const json_t *schema, int depth)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    const json_t *e = json_object_get(schema, "enum");
    if (json_array_size(e) > 0)
        return json_deep_copy(json_array_get(e, 0));
    if (json_is_true(json_object_get(schema, "x-kubernetes-int-or-string")))
        return json_integer(1);
    if (!type)
        return json_object();
    if (strcmp(type, "string") == 0) {
        json_int_t min = json_integer_value(json_object_get(schema, "minLength"));
        const json_t *max = json_object_get(schema, "maxLength");
        if (!max || json_integer_value(max) >= 11)
            if (min <= 11)
                return json_string("placeholder");
        char buf[256];
        size_t n = min > 0 ? (size_t)min : 1;
        if (n >= sizeof buf)
            n = sizeof buf - 1;
        memset(buf, 'x', n);
        buf[n] = '\0';
        return json_string(buf);
    }
    if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0) {
        const json_t *min = json_object_get(schema, "minimum");
        const json_t *max = json_object_get(schema, "maximum");
        double v = 1;
        if (min)
            v = json_number_value(min) +
                (json_is_true(json_object_get(schema, "exclusiveMinimum")) ? 1 : 0);
        else if (max && json_number_value(max) < 1)
            v = json_number_value(max) -
                (json_is_true(json_object_get(schema, "exclusiveMaximum")) ? 1 : 0);
        return strcmp(type, "integer") == 0 ? json_integer((json_int_t)v) : json_real(v);
    }
    if (strcmp(type, "boolean") == 0)
        return json_false();
    if (strcmp(type, "array") == 0) {
        json_t *a = json_array();
        json_int_t min = json_integer_value(json_object_get(schema, "minItems"));
        for (json_int_t i = 0; i < min && i < 16; i++)
            json_array_append_new(a, placeholder(json_object_get(schema, "items"), depth + 1));
        return a;
    }
    json_t *o = json_object();
    fill_required(o, schema, depth);
    return o;
}

static json_t *status_schema_of(const kiln_graph *g, const tnode *t)
{
    if (t->t == T_EXPR) {
        const gexpr *e = &g->exprs[t->expr];
        if (e->schema)
            return json_deep_copy(e->schema);
        if (!e->tmpl.whole)
            return json_pack("{s:s}", "type", "string");
        /* Lua has no static types: an untyped projection keeps whatever the
         * expression returns. */
        return json_pack("{s:b}", "x-kubernetes-preserve-unknown-fields", 1);
    }
    if (t->t == T_OBJ) {
        json_t *props = json_object();
        for (size_t i = 0; i < t->n; i++)
            json_object_set_new(props, t->keys[i], status_schema_of(g, &t->kids[i]));
        return json_pack("{s:s,s:o}", "type", "object", "properties", props);
    }
    if (t->t == T_ARR)
        return json_pack("{s:s,s:{s:b}}", "type", "array", "items",
                         "x-kubernetes-preserve-unknown-fields", 1);
    return json_pack("{s:b}", "x-kubernetes-preserve-unknown-fields", 1);
}

static void synthesize_crd(kiln_graph *g, kiln_errs *errs)
{
    const json_t *schema = json_object_get(json_object_get(g->doc, "spec"), "schema");
    const json_t *md = json_object_get(schema, "metadata");
    json_t *status = NULL;
    kiln_crd_spec spec;
    kiln_err err = {0};

    if (g->status.t == T_OBJ)
        status = status_schema_of(g, &g->status);
    memset(&spec, 0, sizeof spec);
    spec.group = g->group;
    spec.version = g->version;
    spec.kind = g->kind;
    spec.scope = g->cluster ? "Cluster" : "Namespaced";
    spec.spec_schema = g->spec_schema;
    spec.status_schema = status;
    spec.printer_columns = json_object_get(schema, "printerColumns");
    spec.short_names = json_object_get(schema, "shortNames");
    spec.categories = json_object_get(schema, "categories");
    spec.labels = json_object_get(md, "labels");
    spec.annotations = json_object_get(md, "annotations");
    spec.rgd_name = g->name;
    if (kiln_crd_synthesize(&g->crd, &spec, &err) < 0) {
        g->crd = NULL;
        kiln_errs_push(errs, &err);
    }
    json_decref(status);
}

/* Templates with a literal apiVersion and kind against their kind's schema. */
static void check_kinds(kiln_graph *g, const kiln_graph_options *opts, kiln_errs *errs)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        const gnode *n = &g->nodes[i];
        const json_t *schema;
        char path[64];
        if (n->kind != KILN_GRAPH_NODE_TEMPLATE || !n->source || !n->object_api_version ||
            !n->object_kind || kiln_tmpl_has_expr(n->object_api_version) ||
            kiln_tmpl_has_expr(n->object_kind))
            continue;
        schema =
            opts->kind_schema(opts->kind_schema_userdata, n->object_api_version, n->object_kind);
        if (!schema)
            continue;
        snprintf(path, sizeof path, "spec.resources[%zu].template", i);
        kiln_typecheck_template(n->source, schema, path, errs);
    }
}

/* Renders an instance of defaults offline and reports what failed. */
static void dry_render(kiln_graph *g, kiln_lua *L, kiln_errs *errs)
{
    json_t *spec = json_object();
    json_t *instance;
    kiln_render_result *r = NULL;
    kiln_render_options ro = {.offline = true};
    kiln_err err = {0};

    fill_required(spec, g->spec_schema, 0);
    instance = json_pack("{s:s,s:s,s:{s:s},s:o}", "apiVersion", g->api_version, "kind", g->kind,
                         "metadata", "name", "example", "spec", spec);
    if (!g->cluster)
        json_object_set_new(json_object_get(instance, "metadata"), "namespace",
                            json_string("default"));
    /* A placeholder the schema rejects (a pattern) is no configuration error:
     * skip the dry render then. */
    if (kiln_graph_render(&r, g, L, instance, NULL, &ro, &err) == 0) {
        for (size_t i = 0; i < r->nnodes; i++)
            if (r->nodes[i].state == KILN_NODE_ERROR)
                kiln_errs_add(errs, r->nodes[i].code ? r->nodes[i].code : KILN_EINVAL, "%s",
                              r->nodes[i].message ? r->nodes[i].message : "render failed");
    }
    kiln_render_result_free(r);
    json_decref(instance);
}

int kiln_graph_compile(kiln_graph **out, const json_t *rgd, const kiln_graph_options *opts,
                       kiln_errs *errs)
{
    kiln_errs local = {0};
    kiln_graph *g = kiln_xcalloc(1, sizeof *g);
    kiln_lua *L = NULL, *own_L = NULL;
    kiln_dag *dag = NULL;
    const char **names = NULL;
    kiln_err err = {0};
    int rc = 0;

    *out = NULL;
    pthread_mutex_init(&g->bind_lock, NULL);
    g->doc = json_deep_copy(rgd);
    g->status.t = T_OBJ;
    if (opts) {
        g->scope = opts->scope;
        g->scope_userdata = opts->scope_userdata;
        g->max_items = opts->max_collection_items;
        g->max_dims = opts->max_collection_dims;
    }
    if (!g->max_items)
        g->max_items = KILN_GRAPH_MAX_COLLECTION_ITEMS;
    if (!g->max_dims)
        g->max_dims = KILN_GRAPH_MAX_COLLECTION_DIMS;
    /* Iterators are tracked in a 32-bit mask and fixed arrays of 40. */
    if (g->max_dims > 32)
        g->max_dims = 32;

    kiln_rgd_parse(g, g->doc, &local);
    kiln_deps_build(g, &local);

    /* Order: only over nodes that have an id; edges come from deps.c. */
    dag = kiln_dag_new(g->nnodes);
    names = kiln_xcalloc(g->nnodes ? g->nnodes : 1, sizeof *names);
    for (size_t i = 0; i < g->nnodes; i++) {
        names[i] = g->nodes[i].id ? g->nodes[i].id : "?";
        for (size_t k = 0; k < g->nodes[i].ndeps; k++)
            kiln_dag_add_edge(dag, i, g->nodes[i].deps[k]);
    }
    g->order = kiln_xcalloc(g->nnodes ? g->nnodes : 1, sizeof *g->order);
    if (kiln_dag_topo_order(dag, names, g->order, &err) < 0)
        kiln_errs_push(&local, &err);

    if (g->kind && g->version && g->spec_schema && g->name)
        synthesize_crd(g, &local);
    if (opts && opts->kind_schema)
        check_kinds(g, opts, &local);

    L = opts && opts->lua ? opts->lua : NULL;
    if (!L)
        L = own_L = kiln_lua_new(NULL);
    kiln_bind_check(g, L, &local);

    if (local.len == 0 && !(opts && opts->skip_dry_render))
        dry_render(g, L, &local);

    if (local.len > 0) {
        rc = local.items[0].code ? local.items[0].code : KILN_EINVAL;
        for (size_t i = 0; errs && i < local.len; i++)
            kiln_errs_push(errs, &local.items[i]);
        kiln_graph_unbind(g, L);
        kiln_graph_free(g);
        g = NULL;
    } else if (own_L) {
        kiln_graph_unbind(g, own_L);
    }
    kiln_lua_free(own_L);
    kiln_errs_free(&local);
    kiln_xfree(names);
    kiln_dag_free(dag);
    *out = g;
    return rc;
}

void kiln_graph_free(kiln_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nnodes; i++) {
        gnode *n = &g->nodes[i];
        kiln_deps_tnode_free(&n->body);
        kiln_xfree(n->script_deps);
        kiln_xfree(n->include);
        kiln_xfree(n->ready);
        kiln_xfree(n->iters);
        kiln_xfree(n->deps);
    }
    kiln_xfree(g->nodes);
    kiln_xfree(g->order);
    for (size_t i = 0; i < g->nexprs; i++)
        kiln_deps_expr_free(&g->exprs[i]);
    kiln_xfree(g->exprs);
    for (size_t i = 0; i < g->nchunks; i++) {
        if (g->chunks[i].scanned)
            kiln_lua_names_free(&g->chunks[i].names);
        kiln_xfree(g->chunks[i].src);
        kiln_xfree(g->chunks[i].name);
    }
    kiln_xfree(g->chunks);
    kiln_xfree(g->parts);
    kiln_xfree(g->intern);
    kiln_deps_tnode_free(&g->status);
    if (g->helper_names.free_names || g->helper_names.declared)
        kiln_lua_names_free(&g->helper_names);
    kiln_bind_free_all(g);
    pthread_mutex_destroy(&g->bind_lock);
    json_decref(g->spec_schema);
    json_decref(g->crd);
    json_decref(g->doc);
    kiln_xfree(g->name);
    kiln_xfree(g->kind);
    kiln_xfree(g->group);
    kiln_xfree(g->version);
    kiln_xfree(g->api_version);
    kiln_xfree(g);
}

const char *kiln_graph_name(const kiln_graph *g)
{
    return g->name;
}

const char *kiln_graph_kind(const kiln_graph *g)
{
    return g->kind;
}

const char *kiln_graph_group(const kiln_graph *g)
{
    return g->group;
}

const char *kiln_graph_version(const kiln_graph *g)
{
    return g->version;
}

const char *kiln_graph_api_version(const kiln_graph *g)
{
    return g->api_version;
}

bool kiln_graph_cluster_scoped(const kiln_graph *g)
{
    return g->cluster;
}

const char *kiln_graph_service_account(const kiln_graph *g)
{
    return g->service_account;
}

const json_t *kiln_graph_crd(const kiln_graph *g)
{
    return g->crd;
}

const json_t *kiln_graph_spec_schema(const kiln_graph *g)
{
    return g->spec_schema;
}

const json_t *kiln_graph_status_schema(const kiln_graph *g)
{
    const json_t *versions = json_object_get(json_object_get(g->crd, "spec"), "versions");
    const json_t *s = json_object_get(json_array_get(versions, 0), "schema");
    s = json_object_get(json_object_get(s, "openAPIV3Schema"), "properties");
    return json_object_get(s, "status");
}

json_t *kiln_graph_describe(const kiln_graph *g)
{
    json_t *order = json_array(), *resources = json_array();
    for (size_t k = 0; k < g->nnodes; k++) {
        const gnode *n = &g->nodes[g->order[k]];
        json_t *deps = json_array();
        json_array_append_new(order, json_string(n->id));
        for (size_t j = 0; j < n->ndeps; j++)
            json_array_append_new(deps, json_string(g->nodes[n->deps[j]].id));
        json_array_append_new(resources, json_pack("{s:s,s:o}", "id", n->id, "dependsOn", deps));
    }
    return json_pack("{s:o,s:o}", "topologicalOrder", order, "resources", resources);
}

size_t kiln_graph_node_count(const kiln_graph *g)
{
    return g->nnodes;
}

long kiln_graph_node_find(const kiln_graph *g, const char *id)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i].id, id) == 0)
            return (long)i;
    return -1;
}

const char *kiln_graph_node_id(const kiln_graph *g, size_t i)
{
    return i < g->nnodes ? g->nodes[i].id : NULL;
}

kiln_graph_node_kind kiln_graph_node_kind_of(const kiln_graph *g, size_t i)
{
    return g->nodes[i].kind;
}

unsigned kiln_graph_node_flags(const kiln_graph *g, size_t i)
{
    return g->nodes[i].flags;
}

const json_t *kiln_graph_node_source(const kiln_graph *g, size_t i)
{
    return g->nodes[i].source;
}

const char *kiln_graph_node_object_api_version(const kiln_graph *g, size_t i)
{
    return g->nodes[i].object_api_version;
}

const char *kiln_graph_node_object_kind(const kiln_graph *g, size_t i)
{
    return g->nodes[i].object_kind;
}

size_t kiln_graph_node_dep_count(const kiln_graph *g, size_t i)
{
    return g->nodes[i].ndeps;
}

size_t kiln_graph_node_dep(const kiln_graph *g, size_t i, size_t j)
{
    return g->nodes[i].deps[j];
}

const size_t *kiln_graph_topological_order(const kiln_graph *g, size_t *n)
{
    if (n)
        *n = g->nnodes;
    return g->order;
}
