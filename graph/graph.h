/* graph/graph.h: a ResourceGraphDefinition compiled into an immutable graph, and
 * the rendering of one instance through it.
 *
 * kiln_graph_compile parses and validates an RGD document (JSON, as read from
 * YAML), converts its SimpleSchema, synthesizes the instance CRD, scans every
 * ${...} expression, script, forEach, includeWhen, readyWhen and status
 * projection once, infers the dependency edges, orders the nodes, compiles
 * every chunk in a Lua state and dry-renders the graph with the schema's
 * defaults. It reports every problem it finds, each with its path
 * (`spec.resources[1].template.metadata.name: unknown identifier "deploymnt"`).
 *
 * A compiled graph is immutable and may be shared by many threads. Rendering
 * needs a kiln_lua, which is not thread-safe: each worker passes its own. The
 * graph compiles its chunks into a state the first time that state renders it
 * (a "binding", kept inside the graph behind a mutex) and never again; a render
 * is a walk over precomputed slots plus copies. A binding holds Lua handles
 * that live in the state, so a worker that keeps its state but drops a graph
 * calls kiln_graph_unbind(g, L) first, and a worker that frees its state calls
 * kiln_graph_unbind for every graph it rendered (a freed state's address may be
 * reused by the next kiln_lua_new).
 *
 * Ownership: the graph copies what it needs from the RGD document; every
 * const char * / const json_t * an accessor returns is borrowed from the graph
 * and lives as long as it. A kiln_render_result is new and owns everything in
 * it except the node ids, which are borrowed from the graph.
 */
#ifndef KILN_GRAPH_GRAPH_H
#define KILN_GRAPH_GRAPH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "lua/sandbox.h"

/* The bounds kro uses (--rgd-max-collection-size / -dimension-size). */
#define KILN_GRAPH_MAX_COLLECTION_ITEMS 1000
#define KILN_GRAPH_MAX_COLLECTION_DIMS 10

typedef struct kiln_graph kiln_graph;

typedef enum kiln_graph_node_kind {
    KILN_GRAPH_NODE_TEMPLATE = 0,     /* template: an object kiln applies */
    KILN_GRAPH_NODE_SCRIPT = 1,       /* script: a Lua chunk returning the object (or a list) */
    KILN_GRAPH_NODE_EXTERNAL_REF = 2, /* externalRef: an object kiln reads, never writes */
    KILN_GRAPH_NODE_VALIDATION = 3,   /* validation: GPU smoke tests (DESIGN.md section 5) */
} kiln_graph_node_kind;

/* Flags of a node (kiln_graph_node_flags). */
enum {
    KILN_GRAPH_NODE_FOREACH = 1 << 0,      /* a collection: forEach is set */
    KILN_GRAPH_NODE_INCLUDE_WHEN = 1 << 1, /* includeWhen is set */
    KILN_GRAPH_NODE_READY_WHEN = 1 << 2,   /* readyWhen is set */
};

/* Tells whether a kind is cluster-scoped, for kinds outside kiln's built-in
 * table (kiln_graph_kind_is_cluster_scoped). Returns 1 for cluster-scoped, 0
 * for namespaced, -1 when it does not know (then the built-in table decides,
 * and a kind it does not list is namespaced). api_version and kind are
 * borrowed for the call. */
typedef int (*kiln_graph_scope_fn)(void *userdata, const char *api_version, const char *kind);

/* The OpenAPI v3 schema of a kind (the openAPIV3Schema of its CRD, or the
 * published schema with every $ref resolved), or NULL when unknown. The result
 * is borrowed and must stay valid until kiln_graph_compile returns. */
typedef const json_t *(*kiln_graph_kind_schema_fn)(void *userdata, const char *api_version,
                                                   const char *kind);

typedef struct kiln_graph_options {
    /* State to compile (and dry-render) in; borrowed. NULL: compile makes a
     * temporary state with default limits and frees it. When given, the
     * compiled handles stay bound to it, so a later render with the same state
     * compiles nothing (call kiln_graph_unbind before freeing either). */
    kiln_lua *lua;
    kiln_graph_scope_fn scope;   /* may be NULL */
    void *scope_userdata;        /* passed to scope */
    bool skip_dry_render;        /* do not dry-render with the schema's defaults */
    size_t max_collection_items; /* 0: KILN_GRAPH_MAX_COLLECTION_ITEMS */
    size_t max_collection_dims;  /* 0: KILN_GRAPH_MAX_COLLECTION_DIMS; at most 32 */
    /* When set, every template whose apiVersion and kind are literal is
     * checked against its kind's schema: unknown fields and literal values
     * of the wrong type are errors. ${...} values are not checked here:
     * they exist only at render time. */
    kiln_graph_kind_schema_fn kind_schema;
    void *kind_schema_userdata;
} kiln_graph_options;

/* Compiles rgd (borrowed; a whole ResourceGraphDefinition document) into *out
 * (new; kiln_graph_free). opts may be NULL. Every error found is appended to
 * errs (may be NULL), each message starting with its path; returns 0, or the
 * first error's code (KILN_EINVAL for a malformed RGD, KILN_ESCRIPT for a Lua
 * syntax error, ...) with *out set to NULL. */
int kiln_graph_compile(kiln_graph **out, const json_t *rgd, const kiln_graph_options *opts,
                       kiln_errs *errs);

/* Frees g. Bindings to states still alive leak their handles in those
 * states; unbind first (see above). Accepts NULL. */
void kiln_graph_free(kiln_graph *g);

/* Releases the handles g holds in L and forgets the binding. Must run on the
 * thread that owns L. No-op when g never rendered with L. */
void kiln_graph_unbind(const kiln_graph *g, kiln_lua *L);

/* --- the generated kind ------------------------------------------------- */

const char *kiln_graph_name(const kiln_graph *g);    /* metadata.name of the RGD */
const char *kiln_graph_kind(const kiln_graph *g);    /* spec.schema.kind, "WebApp" */
const char *kiln_graph_group(const kiln_graph *g);   /* spec.schema.group, "kiln.dev" */
const char *kiln_graph_version(const kiln_graph *g); /* spec.schema.apiVersion, "v1alpha1" */
/* "kiln.dev/v1alpha1": the apiVersion instances carry. */
const char *kiln_graph_api_version(const kiln_graph *g);
bool kiln_graph_cluster_scoped(const kiln_graph *g); /* spec.schema.scope == Cluster */
/* spec.serviceAccountName: the ServiceAccount whose rights the controller
 * uses to write the children (by impersonation), or NULL for its own. */
const char *kiln_graph_service_account(const kiln_graph *g);

/* The synthesized CustomResourceDefinition of the kind (borrowed). */
const json_t *kiln_graph_crd(const kiln_graph *g);
/* OpenAPI v3 schema of the instance's spec, from the SimpleSchema (borrowed). */
const json_t *kiln_graph_spec_schema(const kiln_graph *g);
/* OpenAPI v3 schema of the instance's status (projections plus kiln's own
 * fields), as put into the CRD (borrowed). */
const json_t *kiln_graph_status_schema(const kiln_graph *g);
/* The RGD's status view: {"topologicalOrder": [ids], "resources": [{"id",
 * "dependsOn": [ids]}]} in topological order. New reference. */
json_t *kiln_graph_describe(const kiln_graph *g);

/* --- nodes: indexed by declaration order (spec.resources[i]) ------------ */

size_t kiln_graph_node_count(const kiln_graph *g);
/* Index of the node with this id, or -1. */
long kiln_graph_node_find(const kiln_graph *g, const char *id);
const char *kiln_graph_node_id(const kiln_graph *g, size_t i);
kiln_graph_node_kind kiln_graph_node_kind_of(const kiln_graph *g, size_t i);
unsigned kiln_graph_node_flags(const kiln_graph *g, size_t i);
/* The node's template / externalRef / validation map as written, a
 * validation map with its defaults filled in (borrowed; NULL for a script
 * node). */
const json_t *kiln_graph_node_source(const kiln_graph *g, size_t i);
/* apiVersion and kind of the template or externalRef as written (may hold
 * ${...}); NULL for script and validation nodes. */
const char *kiln_graph_node_object_api_version(const kiln_graph *g, size_t i);
const char *kiln_graph_node_object_kind(const kiln_graph *g, size_t i);
/* The nodes i depends on (indexes, ascending declaration order). */
size_t kiln_graph_node_dep_count(const kiln_graph *g, size_t i);
size_t kiln_graph_node_dep(const kiln_graph *g, size_t i, size_t j);
/* Node indexes in topological order (dependencies first, author order where
 * the edges allow); *n receives the count (== kiln_graph_node_count). */
const size_t *kiln_graph_topological_order(const kiln_graph *g, size_t *n);

/* "template", "script", "externalRef", "validation". Static string. */
const char *kiln_graph_node_kind_name(kiln_graph_node_kind kind);

/* True for the built-in cluster-scoped kinds (Namespace, Node,
 * PersistentVolume, ClusterRole, ClusterRoleBinding, CustomResourceDefinition,
 * StorageClass, PriorityClass, IngressClass, RuntimeClass, GatewayClass,
 * Validating/MutatingWebhookConfiguration, APIService, CSIDriver). */
bool kiln_graph_kind_is_cluster_scoped(const char *api_version, const char *kind);

/* --- rendering one instance --------------------------------------------- */

typedef enum kiln_node_state {
    KILN_NODE_READY = 0,    /* rendered (desired set) and, if observed, ready */
    KILN_NODE_PENDING = 1,  /* rendered or waiting on data not observed yet */
    KILN_NODE_WAITING = 2,  /* a dependency is not ready: not rendered */
    KILN_NODE_EXCLUDED = 3, /* includeWhen false, script returned nil, or a dependency excluded */
    KILN_NODE_ERROR = 4,    /* configuration or script error; message says why */
} kiln_node_state;

/* "READY", "PENDING", "WAITING", "EXCLUDED", "ERROR". Static string. */
const char *kiln_node_state_name(kiln_node_state state);

typedef struct kiln_render_node {
    size_t node;    /* index in the graph (declaration order) */
    const char *id; /* borrowed from the graph */
    kiln_node_state state;
    int code;      /* KILN_E* for ERROR (KILN_ELIMIT, KILN_ESCRIPT, ...); else 0 */
    char *message; /* owned; NULL when there is nothing to say */
    /* The rendered object (new reference), or an array of objects for a
     * forEach node, in iteration order. Set when the node rendered (READY, and
     * PENDING when only readiness is missing); NULL otherwise. For an
     * externalRef it is the reference (apiVersion, kind, metadata.name and
     * namespace resolved), for a validation node the resolved spec. */
    json_t *desired;
    bool read_only; /* externalRef: read, never applied */
    bool observed;  /* an observed object was given for this node */
} kiln_render_node;

typedef struct kiln_render_result {
    kiln_render_node *nodes; /* owned; in topological order */
    size_t nnodes;
    json_t *spec;   /* the instance spec after defaulting (new reference) */
    json_t *status; /* projected status fields whose data exists (new; object) */
    char **pending; /* owned notes: what is still pending and why */
    size_t npending;
} kiln_render_result;

typedef struct kiln_render_options {
    /* Every dependency counts as ready; a dependency without an observed
     * object is seen as its rendered desired object (status fields nil), and
     * what then needs status is reported in pending. For `kiln render`. */
    bool offline;
    kiln_graph_scope_fn scope; /* may be NULL: then the graph's option */
    void *scope_userdata;
} kiln_render_options;

/* Renders instance (borrowed: the whole instance object) through g in L
 * (borrowed; bound on first use). observed (borrowed, may be NULL) maps a node
 * id to its observed object, or to an array of objects for a collection. opts
 * may be NULL. Per-node failures (a script error, a limit) are reported on that
 * node and do not fail the render. Returns 0 with *out new (free with
 * kiln_render_result_free), or a negative code with *out NULL when the
 * instance itself is invalid (KILN_EINVAL, message listing the fields). */
int kiln_graph_render(kiln_render_result **out, const kiln_graph *g, kiln_lua *L,
                      const json_t *instance, const json_t *observed,
                      const kiln_render_options *opts, kiln_err *err);

void kiln_render_result_free(kiln_render_result *r);

/* The node of r with this id, or NULL. Borrowed. */
const kiln_render_node *kiln_render_result_find(const kiln_render_result *r, const char *id);

#endif
