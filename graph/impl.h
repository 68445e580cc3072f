/* graph/impl.h: the inside of a compiled graph, shared by the graph/ modules
 * (rgd.c parses, deps.c scans and links, bind.c compiles per Lua state,
 * render.c walks, compile.c drives). Not installed, not for other folders.
 *
 * Everything here is built once by kiln_graph_compile and read-only afterwards,
 * except the binding list, which render.c extends under g->bind_lock. Strings
 * and JSON references are owned by the graph.
 */
#ifndef KILN_GRAPH_IMPL_H
#define KILN_GRAPH_IMPL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "graph/graph.h"
#include "lua/names.h"
#include "lua/sandbox.h"
#include "lua/template.h"

/* One chunk of Lua to compile in every state: the text of one ${...} part or
 * a whole script. Identical expression texts share one chunk (RGDs repeat
 * `schema.spec.name` everywhere), so a state compiles each distinct text once;
 * the chunk is named after its first use, and render.c renames messages to
 * the field that actually failed. */
typedef struct gchunk {
    bool script;
    char *src;            /* owned */
    char *name;           /* owned: chunk name for Lua messages, the field path */
    bool scanned;         /* names holds the scan of src (expression chunks) */
    kiln_lua_names names; /* owned once scanned */
} gchunk;

/* One template string (a field value, an includeWhen entry, a status leaf). */
typedef struct gexpr {
    char *path;     /* owned: "spec.resources[2].template.spec.replicas" */
    kiln_tmpl tmpl; /* parsed once */
    size_t part0;   /* g->parts[part0 .. part0 + tmpl.nexprs): chunk of each ${...} */
    size_t *deps;   /* owned: node indexes read, ascending */
    size_t ndeps;
    bool reads_schema;
    json_t *schema; /* status leaves: the declared type (new ref) or NULL */
} gexpr;

/* A template tree with its literal parts collapsed: rendering deep-copies the
 * literals and evaluates the expressions, nothing else. */
typedef enum { T_LIT, T_EXPR, T_OBJ, T_ARR } tkind;

typedef struct tnode {
    tkind t;
    json_t *lit;        /* T_LIT: borrowed from the node's source */
    size_t expr;        /* T_EXPR: index into g->exprs */
    const char **keys;  /* T_OBJ: keys borrowed from g->doc; the array is owned */
    struct tnode *kids; /* T_OBJ / T_ARR: owned children */
    size_t n;
} tnode;

typedef struct giter {
    const char *name; /* borrowed from g->doc */
    const char *src;  /* borrowed: the list expression as written */
    size_t expr;      /* index into g->exprs */
} giter;

typedef struct gnode {
    const char *id; /* borrowed from g->doc */
    size_t index;
    kiln_graph_node_kind kind;
    unsigned flags;
    bool valid;                     /* parsed without error: deps.c may trust the shapes */
    json_t *source;                 /* borrowed: template / externalRef / validation map */
    const char *script;             /* borrowed; script nodes */
    const char *object_api_version; /* borrowed; may be NULL */
    const char *object_kind;        /* borrowed; may be NULL */
    const json_t *include_src;      /* borrowed: array of strings, or NULL */
    const json_t *ready_src;        /* borrowed: array of strings, or NULL */
    tnode body;                     /* template / externalRef / validation tree */
    size_t script_chunk;
    size_t *script_deps; /* owned: node indexes a script reads */
    size_t nscript_deps;
    bool script_reads_schema;
    size_t *include; /* owned: gexpr indexes */
    size_t ninclude;
    size_t *ready; /* owned: gexpr indexes */
    size_t nready;
    giter *iters; /* owned array */
    size_t niters;
    size_t *deps; /* owned: every node this one depends on, ascending */
    size_t ndeps;
    bool needed;         /* some other node or the status reads it: render sets its variable */
    bool sets_namespace; /* the template has metadata.namespace */
} gnode;

/* The compiled handles of a graph in one Lua state. */
typedef struct gbinding {
    kiln_lua *L;
    int env;
    int *fns;  /* one per chunk */
    int *pfns; /* one per expression part: fns[g->parts[i]] */
    struct gbinding *next;
} gbinding;

struct kiln_graph {
    json_t *doc; /* deep copy of the RGD; the borrowed strings below point into it */
    char *name;
    char *kind;
    char *group;
    char *version;
    char *api_version;
    bool cluster;
    const char *helpers;         /* spec.lua, borrowed; may be NULL */
    const char *service_account; /* spec.serviceAccountName, borrowed; may be NULL */
    kiln_lua_names helper_names; /* what the helpers declare and read */

    json_t *spec_schema;   /* OpenAPI of the instance spec */
    json_t *status_schema; /* OpenAPI of the instance status */
    json_t *crd;
    const json_t *status_src; /* borrowed: spec.schema.status as written, or NULL */
    tnode status;             /* projections tree; T_OBJ with no kids when none */

    gnode *nodes;
    size_t nnodes;
    size_t *order; /* topological order */

    gexpr *exprs;
    size_t nexprs, capexprs;
    gchunk *chunks;
    size_t nchunks, capchunks;
    size_t *parts; /* chunk index of every ${...} part of every expression */
    size_t nparts, capparts;
    size_t *intern; /* open addressing: chunk index + 1, 0 = empty */
    size_t ninterncap;

    kiln_graph_scope_fn scope;
    void *scope_userdata;
    size_t max_items;
    size_t max_dims;

    pthread_mutex_t bind_lock;
    gbinding *bindings;
};

/* rgd.c: parses and validates the RGD document into g (names, schema pieces,
 * nodes with their raw sources). Appends every problem to errs. */
int kiln_rgd_parse(kiln_graph *g, const json_t *rgd, kiln_errs *errs);

/* True for names a resource id or iterator may not take. */
bool kiln_rgd_is_reserved(const char *name);
/* True for the globals every chunk sees (helper library, safe base). */
bool kiln_rgd_is_library_global(const char *name);

/* deps.c: builds the template trees, expressions and chunks of every node
 * and of the status, scans names, checks identifiers and records the edges
 * in g->nodes[i].deps. Appends every problem to errs. */
int kiln_deps_build(kiln_graph *g, kiln_errs *errs);
void kiln_deps_tnode_free(tnode *t);
void kiln_deps_expr_free(gexpr *e);

/* typecheck.c: checks the literal parts of template value v (borrowed)
 * against OpenAPI schema (borrowed) at path: unknown fields and literals of
 * the wrong type are appended to errs. ${...} strings match anything. */
int kiln_typecheck_template(const json_t *v, const json_t *schema, const char *path,
                            kiln_errs *errs);

/* bind.c: the handles of g in L, compiling every chunk on first use. Borrowed
 * result, valid until kiln_graph_unbind(g, L). */
int kiln_bind_get(const gbinding **out, const kiln_graph *g, kiln_lua *L, kiln_err *err);
/* Compiles every chunk of g in L and reports each syntax error to errs
 * (compile time; keeps the binding when all compiled). */
int kiln_bind_check(const kiln_graph *g, kiln_lua *L, kiln_errs *errs);
void kiln_bind_free_all(kiln_graph *g);

#endif
