/* cli/cmd_render.c: `kiln render`: RGD + instances -> manifests on stdout.
 *
 * The contract an Argo CD Config Management Plugin relies on: the output is
 * byte-identical across runs, and on any error nothing at all reaches stdout
 * (the whole output is built in memory and written once at the end), the
 * reason goes to stderr as "kiln render: FILE: PATH: MESSAGE", and the exit
 * status is 1.
 *
 * Observed objects (--observed DIR) are matched to nodes by the identity of
 * the desired object: apiVersion, kind, name, and namespace (a desired object
 * without one is in the instance's namespace; an observed object without one
 * matches any namespace). A desired name may itself read another resource, so
 * matching repeats until the set of matched objects stops changing (at most
 * once per node, plus one).
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/input.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/yaml.h"
#include "graph/graph.h"

typedef struct render_ctx {
    kiln_cli_docs docs;     /* every -f document */
    kiln_cli_docs observed; /* every --observed document */
    const kiln_cli_doc *rgd;
    kiln_graph *graph;
    kiln_lua *lua;
    bool show_status;    /* --status: projected status of each instance to stderr */
    bool *observed_used; /* per observed document: matched some node */
    json_t *items;       /* the objects to print, in order */
    kiln_buf notes;
} render_ctx;

/* Where a desired object lives, for matching observed objects. Borrowed strings. */
static const char *desired_namespace(const json_t *obj, const char *instance_ns)
{
    const char *ns = kiln_json_get_string(obj, "metadata.namespace");
    if (ns)
        return ns;
    const char *api = kiln_json_get_string(obj, "apiVersion");
    const char *kind = kiln_json_get_string(obj, "kind");
    if (api && kind && kiln_graph_kind_is_cluster_scoped(api, kind))
        return NULL;
    return instance_ns;
}

static bool same_string(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The observed document with the identity of desired (borrowed), or NULL.
 * Marks it used. */
static json_t *find_observed(const render_ctx *c, const json_t *desired, const char *instance_ns)
{
    const kiln_cli_docs *observed = &c->observed;
    const char *api = kiln_json_get_string(desired, "apiVersion");
    const char *kind = kiln_json_get_string(desired, "kind");
    const char *name = kiln_json_get_string(desired, "metadata.name");
    const char *ns = desired_namespace(desired, instance_ns);
    for (size_t i = 0; i < observed->len; i++) {
        const json_t *o = observed->items[i].obj;
        const char *ons = kiln_json_get_string(o, "metadata.namespace");
        if (same_string(api, kiln_json_get_string(o, "apiVersion")) &&
            same_string(kind, kiln_json_get_string(o, "kind")) &&
            same_string(name, kiln_json_get_string(o, "metadata.name")) &&
            (!ons || (ns && strcmp(ns, ons) == 0))) {
            c->observed_used[i] = true;
            return observed->items[i].obj;
        }
    }
    return NULL;
}

/* Builds {node id: observed object, or array of objects for a collection}
 * from what r rendered. New reference. */
static json_t *match_observed(const render_ctx *c, const kiln_render_result *r,
                              const char *instance_ns)
{
    const kiln_graph *g = c->graph;
    json_t *map = json_object();
    for (size_t i = 0; i < r->nnodes; i++) {
        const kiln_render_node *n = &r->nodes[i];
        if (!n->desired || kiln_graph_node_kind_of(g, n->node) == KILN_GRAPH_NODE_VALIDATION)
            continue;
        if (json_is_array(n->desired)) {
            json_t *list = json_array();
            size_t k;
            json_t *item;
            json_array_foreach(n->desired, k, item)
            {
                json_t *o = find_observed(c, item, instance_ns);
                if (o)
                    json_array_append(list, o);
            }
            if (json_array_size(list) > 0)
                json_object_set_new(map, n->id, list);
            else
                json_decref(list);
            continue;
        }
        json_t *o = find_observed(c, n->desired, instance_ns);
        if (o)
            json_object_set(map, n->id, o);
    }
    return map;
}

/* Prefixes a node's message with its path unless the graph already did. */
static void node_error(const render_ctx *c, const kiln_render_node *n, const char *who)
{
    const char *msg = n->message ? n->message : "failed";
    char path[64];
    snprintf(path, sizeof(path), "spec.resources[%zu]", n->node);
    if (strncmp(msg, path, strlen(path)) == 0)
        fprintf(stderr, "kiln render: %s: %s (instance %s)\n", c->rgd->file, msg, who);
    else
        fprintf(stderr, "kiln render: %s: %s: %s: %s (instance %s)\n", c->rgd->file, path, n->id,
                msg, who);
}

static char *instance_label(const json_t *inst)
{
    const char *ns = kiln_json_get_string(inst, "metadata.namespace");
    const char *name = kiln_json_get_string(inst, "metadata.name");
    return kiln_xasprintf("%s%s%s", ns ? ns : "", ns ? "/" : "", name ? name : "<no name>");
}

/* Renders one instance and appends its objects to c->items. Returns 0 or -1
 * after printing the error. */
static int render_instance(render_ctx *c, const kiln_cli_doc *doc)
{
    kiln_render_result *r = NULL;
    json_t *obs = NULL;
    char *label = instance_label(doc->obj);
    kiln_err err = {0};
    int rc = -1;
    const char *ns = kiln_json_get_string(doc->obj, "metadata.namespace");
    if (!ns)
        ns = "default";

    kiln_render_options ro = {.offline = true};
    size_t passes = c->observed.len > 0 ? kiln_graph_node_count(c->graph) + 1 : 1;
    for (size_t pass = 0; pass < passes; pass++) {
        kiln_render_result_free(r);
        r = NULL;
        if (kiln_graph_render(&r, c->graph, c->lua, doc->obj, obs, &ro, &err) < 0) {
            fprintf(stderr, "kiln render: %s: %s\n", doc->file, err.msg);
            goto out;
        }
        if (c->observed.len == 0)
            break;
        json_t *next = match_observed(c, r, ns);
        bool same = obs ? kiln_json_equal(obs, next) : json_object_size(next) == 0;
        json_decref(obs);
        obs = next;
        if (same)
            break;
    }

    for (size_t i = 0; i < r->nnodes; i++) {
        const kiln_render_node *n = &r->nodes[i];
        if (n->state == KILN_NODE_ERROR) {
            node_error(c, n, label);
            goto out;
        }
    }
    for (size_t i = 0; i < r->nnodes; i++) {
        const kiln_render_node *n = &r->nodes[i];
        kiln_graph_node_kind kind = kiln_graph_node_kind_of(c->graph, n->node);
        if (n->state == KILN_NODE_EXCLUDED) {
            KILN_LOG(KILN_LOG_INFO, "%s: %s: excluded%s%s", label, n->id, n->message ? ": " : "",
                     n->message ? n->message : "");
            continue;
        }
        if (!n->desired) {
            kiln_buf_printf(&c->notes, NULL, "kiln render: %s: %s: %s: not rendered%s%s\n", label,
                            n->id, kiln_node_state_name(n->state), n->message ? ": " : "",
                            n->message ? n->message : "");
            continue;
        }
        /* Read-only references and GPU validation specs are not objects kiln
         * applies; the controller turns validation into per-node Jobs. */
        if (n->read_only || kind == KILN_GRAPH_NODE_EXTERNAL_REF ||
            kind == KILN_GRAPH_NODE_VALIDATION)
            continue;
        if (json_is_array(n->desired))
            json_array_extend(c->items, n->desired);
        else
            json_array_append(c->items, n->desired);
    }
    if (c->show_status) {
        char *st = kiln_json_canonical(r->status);
        kiln_buf_printf(&c->notes, NULL, "kiln render: %s: status: %s\n", label, st ? st : "?");
        kiln_xfree(st);
    }
    for (size_t i = 0; i < r->npending; i++)
        kiln_buf_printf(&c->notes, NULL, "kiln render: %s: pending: %s\n", label, r->pending[i]);
    rc = 0;
out:
    kiln_render_result_free(r);
    json_decref(obs);
    kiln_xfree(label);
    return rc;
}

static int write_output(const json_t *items, bool json_out)
{
    kiln_buf out;
    kiln_err err = {0};
    json_t *list = NULL;
    int rc = -1;

    kiln_buf_init(&out, KILN_BUF_DEFAULT_LIMIT);
    if (json_out) {
        list = json_pack("{s:s, s:s, s:O}", "apiVersion", "v1", "kind", "List", "items", items);
        rc = kiln_json_dump(&out, list, KILN_JSON_PRETTY | KILN_JSON_SORTED, &err);
        if (rc == 0)
            rc = kiln_buf_puts(&out, "\n", &err);
    } else if (json_array_size(items) > 0) {
        rc = kiln_yaml_dump_all(&out, items, &err);
    } else {
        rc = 0;
    }
    if (rc < 0) {
        fprintf(stderr, "kiln render: output: %s\n", err.msg);
        goto out;
    }
    if ((out.len > 0 && fwrite(out.data, 1, out.len, stdout) != out.len) || fflush(stdout) != 0) {
        fputs("kiln render: cannot write to standard output\n", stderr);
        rc = -1;
    }
out:
    json_decref(list);
    kiln_buf_free(&out);
    return rc;
}

int kiln_cmd_render(int argc, char **argv)
{
    render_ctx c = {0};
    const char **files = kiln_xcalloc((size_t)argc, sizeof(files[0]));
    size_t nfiles = 0;
    const char *observed_dir = NULL;
    const char *format = "yaml";
    kiln_errs errs = {0};
    kiln_err err = {0};
    int status = KILN_EXIT_FAIL;

    kiln_buf_init(&c.notes, KILN_BUF_DEFAULT_LIMIT);
    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "render");
        status = KILN_EXIT_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if ((m = kiln_cli_flag_value("render", argc, argv, &i, "-f", "--file", &v)) != 0) {
            if (m < 0) {
                status = KILN_EXIT_USAGE;
                goto out;
            }
            files[nfiles++] = v;
        } else if ((m = kiln_cli_flag_value("render", argc, argv, &i, NULL, "--observed", &v)) !=
                   0) {
            if (m < 0) {
                status = KILN_EXIT_USAGE;
                goto out;
            }
            observed_dir = v;
        } else if ((m = kiln_cli_flag_value("render", argc, argv, &i, "-o", "--output", &v)) != 0) {
            if (m < 0) {
                status = KILN_EXIT_USAGE;
                goto out;
            }
            format = v;
        } else if (strcmp(argv[i], "--status") == 0) {
            c.show_status = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            status = kiln_cli_usage_error("render", "unknown flag \"%s\"", argv[i]);
            goto out;
        } else {
            status = kiln_cli_usage_error(
                "render", "unexpected argument \"%s\" (name input files with -f)", argv[i]);
            goto out;
        }
    }
    if (strcmp(format, "yaml") != 0 && strcmp(format, "json") != 0) {
        status = kiln_cli_usage_error("render", "unknown output format \"%s\" (want yaml or json)",
                                      format);
        goto out;
    }
    if (nfiles == 0) {
        status = kiln_cli_usage_error("render", "no input: name the RGD and instances with -f");
        goto out;
    }

    for (size_t i = 0; i < nfiles; i++) {
        if (kiln_cli_docs_load(&c.docs, files[i], &err) < 0) {
            fprintf(stderr, "kiln render: %s\n", err.msg);
            goto out;
        }
    }
    if (observed_dir && kiln_cli_docs_load_dir(&c.observed, observed_dir, &err) < 0) {
        fprintf(stderr, "kiln render: --observed: %s\n", err.msg);
        goto out;
    }
    c.observed_used = kiln_xcalloc(c.observed.len + 1, sizeof(bool));
    for (size_t i = 0; i < c.docs.len; i++) {
        if (!kiln_cli_is_rgd(c.docs.items[i].obj))
            continue;
        if (c.rgd) {
            fprintf(stderr,
                    "kiln render: %s: document %zu: a second ResourceGraphDefinition (the first "
                    "is in %s); render takes exactly one\n",
                    c.docs.items[i].file, c.docs.items[i].index + 1, c.rgd->file);
            goto out;
        }
        c.rgd = &c.docs.items[i];
    }
    if (!c.rgd) {
        fputs("kiln render: no ResourceGraphDefinition (kiln.dev/v1alpha1) in the input\n", stderr);
        goto out;
    }

    c.lua = kiln_lua_new(NULL);
    kiln_graph_options go = {.lua = c.lua};
    if (kiln_graph_compile(&c.graph, c.rgd->obj, &go, &errs) < 0) {
        for (size_t i = 0; i < errs.len; i++)
            fprintf(stderr, "kiln render: %s: %s\n", c.rgd->file, errs.items[i].msg);
        if (errs.len == 0)
            fprintf(stderr, "kiln render: %s: the ResourceGraphDefinition does not compile\n",
                    c.rgd->file);
        goto out;
    }

    const char *api = kiln_graph_api_version(c.graph);
    const char *kind = kiln_graph_kind(c.graph);
    size_t ninstances = 0;
    c.items = json_array();
    for (size_t i = 0; i < c.docs.len; i++) {
        const kiln_cli_doc *d = &c.docs.items[i];
        if (d == c.rgd)
            continue;
        const char *dapi = kiln_json_get_string(d->obj, "apiVersion");
        const char *dkind = kiln_json_get_string(d->obj, "kind");
        if (!same_string(dapi, api) || !same_string(dkind, kind)) {
            fprintf(stderr,
                    "kiln render: %s: document %zu: expected an instance of %s %s (the kind the "
                    "RGD defines), got %s %s\n",
                    d->file, d->index + 1, api, kind, dapi ? dapi : "<no apiVersion>",
                    dkind ? dkind : "<no kind>");
            goto out;
        }
        if (render_instance(&c, d) < 0)
            goto out;
        ninstances++;
    }
    if (ninstances == 0) {
        fprintf(stderr, "kiln render: no instance of %s %s in the input\n", api, kind);
        goto out;
    }
    for (size_t i = 0; i < c.observed.len; i++) {
        if (c.observed_used[i])
            continue;
        char *what = kiln_cli_doc_label(c.observed.items[i].obj);
        kiln_buf_printf(&c.notes, NULL,
                        "kiln render: --observed: %s: document %zu (%s) matches no object\n",
                        c.observed.items[i].file, c.observed.items[i].index + 1, what);
        kiln_xfree(what);
    }
    if (write_output(c.items, strcmp(format, "json") == 0) < 0)
        goto out;
    if (c.notes.len > 0)
        fputs(c.notes.data, stderr);
    status = KILN_EXIT_OK;
out:
    if (c.graph && c.lua)
        kiln_graph_unbind(c.graph, c.lua);
    kiln_graph_free(c.graph);
    kiln_lua_free(c.lua);
    json_decref(c.items);
    kiln_cli_docs_free(&c.docs);
    kiln_cli_docs_free(&c.observed);
    kiln_buf_free(&c.notes);
    kiln_xfree(c.observed_used);
    kiln_errs_free(&errs);
    kiln_xfree(files);
    return status;
}
