/* controller/internal.h: state shared by the controller's modules.
 *
 * The manager owns everything here. Locking: `lock` guards the RGD table,
 * the child informer table, graph reference counts and the retired-graph
 * list. Informers and RGD entries are never freed before shutdown (a stopped
 * informer moves to `dead`), so a worker may use a pointer it read under the
 * lock after releasing it. Compiled graphs are reference-counted: a worker
 * acquires one for a reconcile and releases it after; a graph replaced by a
 * newer generation is retired and freed once every worker that rendered it
 * unbound it from its own Lua state (kiln_graph_unbind must run on the thread
 * owning the state).
 */
#ifndef KILN_CONTROLLER_INTERNAL_H
#define KILN_CONTROLLER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "controller/manager.h"
#include "controller/queue.h"
#include "controller/strmap.h"
#include "core/err.h"
#include "graph/graph.h"
#include "kube/client.h"
#include "kube/discovery.h"
#include "kube/informer.h"
#include "lua/sandbox.h"

#define KILN_FINALIZER "kiln.dev/finalizer"
#define KILN_FIELD_MANAGER "kiln"
#define KILN_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define KILN_LABEL_INSTANCE_UID "kiln.dev/instance-uid"
#define KILN_LABEL_INSTANCE_NAME "kiln.dev/instance-name"
#define KILN_LABEL_INSTANCE_NAMESPACE "kiln.dev/instance-namespace"
#define KILN_LABEL_RGD "kiln.dev/rgd"
#define KILN_LABEL_NODE "kiln.dev/node"
#define KILN_ANN_APPLIED_HASH "kiln.dev/applied-hash"
#define KILN_ANN_INVENTORY "kiln.dev/inventory"
#define KILN_ANN_RECONCILE "kiln.dev/reconcile"
#define KILN_ANN_ALLOW_BREAKING "kiln.dev/allow-breaking-changes"
#define KILN_RGD_GROUP "kiln.dev"
#define KILN_RGD_VERSION "v1alpha1"
#define KILN_RGD_RESOURCE "resourcegraphdefinitions"
#define KILN_MAX_WORKERS 64

typedef struct kiln_ctl_graph {
    kiln_graph *g;
    int refs;       /* the RGD entry's reference + workers using it */
    uint64_t bound; /* bit per worker that rendered it in its own state */
    bool retired;   /* replaced or its RGD is gone */
    struct kiln_ctl_graph *next_retired;
} kiln_ctl_graph;

typedef struct kiln_rgd_entry {
    char *name;
    kiln_ctl_graph *graph;    /* last good graph (NULL before the first) */
    int64_t graph_generation; /* RGD generation the graph came from */
    int64_t tried_generation; /* last generation compiled, good or not */
    char *compile_error;      /* for tried_generation; NULL when accepted */
    /* The generated kind being served (from the last good graph). */
    char group[254], version[64], resource[254], kind[128];
    bool cluster_scoped;
    bool established;
    kiln_kube_informer *instances; /* NULL until the CRD is established */
    bool scope_skipped; /* namespace mode: a cluster-scoped kind, not watched (logged once) */
    bool deleted;
} kiln_rgd_entry;

typedef struct kiln_worker {
    struct kiln_manager *mgr;
    int index;
    pthread_t thread;
    kiln_lua *L;
} kiln_worker;

typedef struct kiln_metrics kiln_metrics;

typedef struct kiln_manager {
    kiln_kube_client *client; /* borrowed */
    kiln_kube_discovery *disc;
    kiln_queue *queue;
    const atomic_int *stop;
    char *namespace; /* namespace mode: instances and namespaced children only here; NULL: all */
    char *gpucheck_image; /* validation Jobs' image; NULL: the default */
    pthread_mutex_t lock;
    kiln_kube_informer *rgds;
    kiln_kube_informer *crds;
    kiln_strmap rgd_entries; /* name -> kiln_rgd_entry * */
    kiln_strmap children;    /* "group/version/resource" -> kiln_kube_informer * */
    kiln_strmap externals;   /* "group/version/resource/ns/name" -> external watch */
    kiln_kube_informer **dead;
    size_t ndead;
    kiln_ctl_graph *retired;
    int nworkers;
    kiln_worker workers[KILN_MAX_WORKERS];
    kiln_metrics *metrics;
    atomic_int ready; /* informers synced and workers running */
    char identity[256];
} kiln_manager;

/* --- manager.c ----------------------------------------------------------- */

/* The graph of an RGD with one more reference (NULL when none is good yet);
 * release with kiln_manager_graph_release. */
kiln_ctl_graph *kiln_manager_graph_acquire(kiln_manager *m, const char *rgd);
void kiln_manager_graph_release(kiln_manager *m, kiln_ctl_graph *cg);
/* Installs g as the RGD's graph (taken), retiring the previous one. */
void kiln_manager_graph_install(kiln_manager *m, kiln_rgd_entry *e, kiln_graph *g);
/* Drops the RGD's graph (retired). */
void kiln_manager_graph_drop(kiln_manager *m, kiln_rgd_entry *e);
/* The entry for an RGD name, created on first use. Never freed before
 * shutdown. */
kiln_rgd_entry *kiln_manager_rgd_entry(kiln_manager *m, const char *name);
/* The informer caching kiln's children of group/version/resource, started
 * (and synced, up to 10 s) on first use. Borrowed. */
kiln_kube_informer *kiln_manager_child_informer(kiln_manager *m, const char *group,
                                                const char *version, const char *resource,
                                                kiln_err *err);
/* The object an externalRef names, from a cache that watches just that
 * object (field selector metadata.name), started on first use; events on it
 * queue inst_key (borrowed, copied) and every other instance that asked.
 * Returns a new reference or NULL (absent, or not synced within 10 s). */
json_t *kiln_manager_external_get(kiln_manager *m, const char *group, const char *version,
                                  const char *resource, const char *ns, const char *name,
                                  const char *inst_key);
/* The nodes matching label_selector (NULL or "": all), from a cache started
 * on first use per selector; a node added, deleted, relabelled, changing its
 * allocatable resources or its readiness queues inst_key (borrowed, copied)
 * and every other instance that asked. New array, or NULL when the cache is
 * not synced within 10 s. */
json_t *kiln_manager_nodes_list(kiln_manager *m, const char *label_selector, const char *inst_key);
/* Every child informer (a new array of borrowed pointers; kiln_xfree it). */
kiln_kube_informer **kiln_manager_child_informers(kiln_manager *m, size_t *n);
/* Starts (or keeps) the instance informer of e's kind. Caller holds no lock. */
int kiln_manager_watch_instances(kiln_manager *m, kiln_rgd_entry *e, kiln_err *err);
/* Stops e's instance informer (kept readable until shutdown). */
void kiln_manager_unwatch_instances(kiln_manager *m, kiln_rgd_entry *e);
/* Queues every cached instance of e. */
void kiln_manager_enqueue_instances(kiln_manager *m, kiln_rgd_entry *e);
/* Queue keys. */
void kiln_manager_enqueue_rgd(kiln_manager *m, const char *name);
void kiln_manager_enqueue_instance(kiln_manager *m, const char *rgd, const char *ns,
                                   const char *name);

/* --- rgd.c / instance.c: one reconcile each. Return 0 when done (a later
 * event brings the key back), a KILN_E* code to retry with backoff; set
 * *requeue_ms > 0 to come back after that long. */
int kiln_rgd_reconcile(kiln_worker *w, const char *name, int64_t *requeue_ms, kiln_err *err);
int kiln_instance_reconcile(kiln_worker *w, const char *rgd, const char *ns, const char *name,
                            int64_t *requeue_ms, kiln_err *err);

/* Object writes both reconcilers make (controller/writes.c). */
bool kiln_ctl_has_finalizer(const json_t *obj);
/* Merge patch of metadata.finalizers adding or removing kiln's, with a
 * resourceVersion precondition so a concurrent change to the list is never
 * lost (409, retried). *out is the new object (NULL out: dropped). */
int kiln_ctl_set_finalizer(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                           const json_t *obj, bool present, kiln_err *err);
/* PUTs obj (borrowed) with status (borrowed) to /status when it differs from
 * obj's; an unchanged status sends nothing. */
int kiln_ctl_write_status(kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                          json_t *status, kiln_err *err);

#endif
