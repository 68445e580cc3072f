/* devcluster/internal.h: types shared by the dev cluster's modules.
 *
 * kiln_dc_ is the internal prefix; each file is one module (kiln_dc_store_*,
 * kiln_dc_patch_*, ...). Locking: one server mutex (dc->mu) guards the registry,
 * the object store, the event history and every watcher's queue. Handlers take
 * it for the whole request; watch streams take it only to move queued events.
 * Objects are stored as compact JSON text (cheap to serve, small to keep) and
 * parsed only when a request changes or filters them.
 */
#ifndef KILN_DEVCLUSTER_INTERNAL_H
#define KILN_DEVCLUSTER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/err.h"
#include "devcluster/devcluster.h"

typedef struct kiln_dc_object {
    char *key;  /* "ns/name"; "/name" when cluster-scoped (owned) */
    char *json; /* compact JSON (owned) */
    size_t len;
    uint64_t rv;
    struct kiln_dc_object *next; /* hash chain */
} kiln_dc_object;

typedef struct kiln_dc_table {
    kiln_dc_object **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
} kiln_dc_table;

typedef struct kiln_dc_resource {
    char *group, *version, *plural, *singular, *kind, *list_kind;
    bool namespaced;
    bool status_sub;
    bool scale_sub;
    bool generation; /* metadata.generation is kept */
    bool smp;        /* strategic merge patch accepted (built-ins) */
    bool is_crd;
    json_t *short_names; /* array of strings (owned) */
    json_t *categories;  /* array of strings (owned) */
    json_t *schema;      /* openAPIV3Schema for CRD kinds (owned) or NULL */
    json_t *columns;     /* additionalPrinterColumns (owned) or NULL */
    char *scale_spec, *scale_status, *scale_selector; /* CRD scale paths */
    char *crd_name;
    kiln_dc_table objects;
} kiln_dc_resource;

typedef enum kiln_dc_evtype {
    KILN_DC_ADDED,
    KILN_DC_MODIFIED,
    KILN_DC_DELETED,
} kiln_dc_evtype;

typedef struct kiln_dc_event {
    int refs;
    uint64_t rv;
    kiln_dc_evtype type;
    kiln_dc_resource *res; /* borrowed; NULL once the resource is gone */
    char *key;             /* owned */
    char *obj;             /* new object (for DELETED: last state), owned */
    char *prev;            /* previous object or NULL, owned */
} kiln_dc_event;

/* Label and field selectors. */
typedef struct kiln_dc_req {
    char *key;
    int op; /* KILN_DC_SEL_* */
    char **values;
    size_t nvalues;
} kiln_dc_req;

enum {
    KILN_DC_SEL_EQ,
    KILN_DC_SEL_NE,
    KILN_DC_SEL_IN,
    KILN_DC_SEL_NOTIN,
    KILN_DC_SEL_EXISTS,
    KILN_DC_SEL_NOTEXISTS,
};

typedef struct kiln_dc_selector {
    kiln_dc_req *reqs;
    size_t n;
} kiln_dc_selector;

typedef struct kiln_dc_watcher {
    kiln_dc_resource *res;
    char *ns; /* NULL = all namespaces */
    kiln_dc_selector labels;
    kiln_dc_selector fields;
    bool as_table;
    bool bookmarks;
    bool initial_end; /* send the initial-events-end bookmark after the synthetic ADDEDs */
    uint64_t initial_rv;
    kiln_dc_event **queue; /* ring */
    size_t qhead, qlen, qcap;
    size_t qbytes; /* object text held by the queue */
    kiln_buf out;  /* bytes formatted but not yet handed to the transport */
    size_t out_off;
    uint64_t last_rv;
    int64_t deadline_ms;
    int64_t next_bookmark_ms;
    bool ended;   /* stream should end after out drains */
    bool waiting; /* the reader sleeps on cond */
    bool table_header_sent;
    pthread_cond_t cond;
    struct kiln_dc_watcher *next;
} kiln_dc_watcher;

typedef struct kiln_dc_fault_rule {
    int n; /* fail the nth matching request (counting from 1) */
    int seen;
    int code;
    int retry_after;
    char method[12];
    char path_prefix[256];
} kiln_dc_fault_rule;

typedef struct kiln_dc_wal kiln_dc_wal;
typedef struct kiln_dc_jobs kiln_dc_jobs;

/* Annotations on simulated GPU nodes, read by the simulated kubelet (jobs.c). */
#define KILN_DC_ANN_GPU_MODEL "kiln.dev/simulated-gpu-model" /* h100, a100, ... */
#define KILN_DC_ANN_SIMULATE_FAIL "kiln.dev/simulate-fail"   /* "hbm-bandwidth,gemm" */
/* On kiln-dev when --real-gpus labelled it: the probe's summary. */
#define KILN_DC_ANN_REAL_GPUS "kiln.dev/real-gpus"
typedef struct kiln_dc_http kiln_dc_http;

struct kiln_devcluster {
    kiln_devcluster_options opts;
    char *data_dir;
    char *kubeconfig;
    char *gpus;
    char *gpucheck; /* opts.gpucheck_path (owned) */
    pthread_mutex_t mu;
    uint64_t rv; /* last resourceVersion handed out */
    kiln_dc_resource **res;
    size_t nres, capres;
    uint64_t discovery_gen; /* bumps whenever a resource is added or removed */
    /* watch history: a ring of the last opts.history events */
    kiln_dc_event **hist;
    size_t hhead, hlen, hcap;
    uint64_t compacted_rv; /* events at or below this are gone */
    kiln_dc_watcher *watchers;
    size_t nwatchers;
    bool stopping;
    /* faults */
    bool expire_next_watch;
    int delay_ms;
    kiln_dc_fault_rule faults[8];
    size_t nfaults;
    /* background controllers (kubelet, GC, namespaces) */
    pthread_t ctl_thread;
    bool ctl_running;
    pthread_cond_t ctl_cond;
    bool ctl_dirty;
    bool ctl_waiting;       /* the controller thread sleeps on ctl_cond */
    bool gc_dirty;          /* a delete or deletionTimestamp happened: run GC */
    json_t *ctl_pending;    /* kubelet: "group|version|plural|key" -> first seen (ms) */
    json_t *ctl_dirty_keys; /* kubelet: the same keys, written since the last pass */
    kiln_dc_jobs *jobs;     /* gpucheck Jobs: running processes, deadlines (jobs.c) */
    kiln_dc_wal *wal;
    kiln_dc_http *http;
    char url[64];
    char *cert_pem, *key_pem; /* --tls: self-signed, owned */
    char token[65];
    int port;
    char start_time[32];
    bool replaying;
};

/* ---- util.c ---- */
int64_t kiln_dc_now_ms(void);
/* RFC 3339 UTC, seconds precision, into out[32]. */
void kiln_dc_timestamp(char out[32]);
void kiln_dc_uid(char out[37]);
/* Sets resp to a metav1.Status. details may be NULL (taken). */
void kiln_dc_status(kiln_devcluster_response *resp, int code, const char *reason, json_t *details,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* details object {name, group, kind}; new reference. */
json_t *kiln_dc_details(const kiln_dc_resource *r, const char *name);
/* Dumps doc (borrowed) compactly into resp->body with status and JSON type. */
void kiln_dc_reply_json(kiln_devcluster_response *resp, int status, const json_t *doc);
/* "apps/v1" or "v1"; writes into out. */
void kiln_dc_api_version(const kiln_dc_resource *r, char *out, size_t n);
/* "deployments.apps" or "configmaps": the qualified resource used in messages. */
void kiln_dc_qualified(const kiln_dc_resource *r, char *out, size_t n);
bool kiln_dc_valid_subdomain(const char *s);
bool kiln_dc_valid_label_name(const char *s); /* DNS-1123 label */
/* Query parameter lookup (decoded, new string) from a raw query; NULL when absent. */
char *kiln_dc_query_get(const char *query, const char *name);
void kiln_dc_percent_decode(char *s, bool plus_is_space);
/* Parses a JSON body, giving a 400 Status on failure; returns new ref or NULL. */
json_t *kiln_dc_parse_body(const kiln_devcluster_request *req, kiln_devcluster_response *resp);
char *kiln_dc_dump(const json_t *doc); /* compact, new string */
/* Go strconv.ParseBool truths: 1, t, T, TRUE, true, True. NULL is false. */
bool kiln_dc_parse_bool(const char *s);
/* metadata.<field> as a string, borrowed; NULL when absent. */
const char *kiln_dc_meta_str(const json_t *obj, const char *field);
void kiln_dc_base64(const unsigned char *in, size_t n, kiln_buf *out);
int kiln_dc_unbase64(const char *in, kiln_buf *out);

/* ---- kinds.c: the resource registry ---- */
void kiln_dc_kinds_register_builtins(kiln_devcluster *dc);
kiln_dc_resource *kiln_dc_kinds_find(kiln_devcluster *dc, const char *group, const char *version,
                                     const char *plural);
kiln_dc_resource *kiln_dc_kinds_find_kind(kiln_devcluster *dc, const char *group, const char *kind);
kiln_dc_resource *kiln_dc_kinds_add(kiln_devcluster *dc, const char *group, const char *version,
                                    const char *plural, const char *singular, const char *kind,
                                    bool namespaced);
void kiln_dc_kinds_remove(kiln_devcluster *dc, kiln_dc_resource *r);
void kiln_dc_kinds_free_all(kiln_devcluster *dc);

/* ---- store.c ---- */
void kiln_dc_table_init(kiln_dc_table *t);
void kiln_dc_table_free(kiln_dc_table *t);
kiln_dc_object *kiln_dc_store_get(kiln_dc_resource *r, const char *ns, const char *name);
/* Stores obj (borrowed) at a new resourceVersion which is written into it;
 * emits the watch event and the WAL record. Returns the stored entry. */
kiln_dc_object *kiln_dc_store_put(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj,
                                  bool created);
/* Removes an object; obj is its final state (borrowed; its resourceVersion is bumped). */
void kiln_dc_store_delete(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj);
/* Loads a stored object as JSON (new reference). */
json_t *kiln_dc_store_load(const kiln_dc_object *o);
/* Every object of r in key order (array of borrowed entries; caller frees the array). */
kiln_dc_object **kiln_dc_store_sorted(kiln_dc_resource *r, size_t *n);
void kiln_dc_event_unref(kiln_dc_event *ev);
void kiln_dc_store_free_history(kiln_devcluster *dc);
/* Splits "ns/name". */
void kiln_dc_key_split(const char *key, char *ns, size_t nsn, const char **name);

/* ---- wal.c ---- */
int kiln_dc_wal_open(kiln_devcluster *dc, kiln_err *err);
void kiln_dc_wal_append(kiln_devcluster *dc, const kiln_dc_resource *r, const char *key,
                        const char *json, size_t len, bool del);
/* Waits until every record appended so far is on disk. Call without dc->mu. */
void kiln_dc_wal_sync(kiln_devcluster *dc);
void kiln_dc_wal_close(kiln_devcluster *dc);

/* ---- selector.c ---- */
int kiln_dc_selector_parse(kiln_dc_selector *out, const char *text, bool fields, kiln_err *err);
void kiln_dc_selector_free(kiln_dc_selector *s);
bool kiln_dc_selector_empty(const kiln_dc_selector *s);
bool kiln_dc_labels_match(const kiln_dc_selector *s, const json_t *obj);
bool kiln_dc_fields_match(const kiln_dc_selector *s, const json_t *obj);
/* True when field selectors only use metadata.name / metadata.namespace. */
bool kiln_dc_fields_match_key(const kiln_dc_selector *s, const char *ns, const char *name,
                              bool *decided);
/* Checks the field selector names are supported for the resource. */
int kiln_dc_fields_check(const kiln_dc_selector *s, const kiln_dc_resource *r, kiln_err *err);

/* ---- patch.c ---- */
json_t *kiln_dc_patch_merge(const json_t *target, const json_t *patch); /* new ref */
int kiln_dc_patch_json(json_t **doc, const json_t *ops, kiln_err *err);
int kiln_dc_patch_strategic(json_t **out, const json_t *target, const json_t *patch, kiln_err *err);
/* Server-side apply of applied (borrowed) onto live (borrowed, may be NULL).
 * *out new; conflicts land in resp as 409 and return KILN_ECONFLICT. */
int kiln_dc_apply(json_t **out, const json_t *live, const json_t *applied, const char *manager,
                  bool force, const char *api_version, const char *subresource,
                  kiln_devcluster_response *resp);
/* Records an Update by manager: fields that changed between old and new. */
void kiln_dc_managed_update(json_t *newobj, const json_t *old, const char *manager,
                            const char *api_version, const char *subresource);

/* ---- crd.c ---- */
/* Validates a CRD object on create/update; 422 into resp on failure. */
int kiln_dc_crd_check(kiln_devcluster *dc, json_t *crd, kiln_devcluster_response *resp);
/* Registers (or refreshes) the resource a stored CRD defines and sets its status. */
void kiln_dc_crd_serve(kiln_devcluster *dc, json_t *crd);
void kiln_dc_crd_unserve(kiln_devcluster *dc, const char *crd_name);
/* Defaults, prunes and validates a custom resource against its schema. */
int kiln_dc_crd_admit(kiln_dc_resource *r, json_t *obj, bool strict,
                      kiln_devcluster_response *resp);
/* Evaluates a printer-column JSONPath; new reference or NULL. */
json_t *kiln_dc_jsonpath(const json_t *obj, const char *path);

/* ---- discovery.c / openapi.c ---- */
bool kiln_dc_discovery_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                              kiln_devcluster_response *resp);
bool kiln_dc_openapi_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                            kiln_devcluster_response *resp);

/* ---- table.c ---- */
bool kiln_dc_wants_table(const char *accept);
json_t *kiln_dc_table_new(const kiln_dc_resource *r, json_t *objects, bool with_columns,
                          const char *rv);

/* ---- watch.c ---- */
void kiln_dc_watch_publish(kiln_devcluster *dc, kiln_dc_event *ev);
void kiln_dc_watch_start(kiln_devcluster *dc, kiln_dc_resource *r, const char *ns,
                         const kiln_devcluster_request *req, kiln_devcluster_response *resp);
void kiln_dc_watch_drop_all(kiln_devcluster *dc);

/* ---- router.c ---- */
/* Writes one object through the full pipeline (used by controllers). Takes obj. */
int kiln_dc_write_internal(kiln_devcluster *dc, kiln_dc_resource *r, json_t *obj, bool status);
/* Deletes following finalizers and propagation; used by GC and namespace cleanup. */
void kiln_dc_delete_internal(kiln_devcluster *dc, kiln_dc_resource *r, const char *ns,
                             const char *name, const char *propagation);

/* ---- controllers.c: kubelet simulation, GC, namespaces, GPU nodes ---- */
void kiln_dc_ctl_init(kiln_devcluster *dc);
int kiln_dc_ctl_start(kiln_devcluster *dc, kiln_err *err);
/* Wakes the controller thread if it sleeps; call with dc->mu held. */
void kiln_dc_ctl_kick(kiln_devcluster *dc);
/* Notes a write for the kubelet (called by the store under dc->mu). */
void kiln_dc_ctl_note(kiln_devcluster *dc, const kiln_dc_resource *r, const char *key);
void kiln_dc_ctl_stop(kiln_devcluster *dc);
/* The CPU node kiln-dev and the --simulate-gpus nodes; under dc->mu. */
int kiln_dc_gpu_nodes(kiln_devcluster *dc, const char *spec, kiln_err *err);

/* ---- jobs.c: Jobs running kiln-gpucheck, run as local processes ---- */
void kiln_dc_jobs_init(kiln_devcluster *dc);
/* Handles obj (a Job or Pod, borrowed) when it runs kiln-gpucheck: creates
 * the pod, starts its process, follows its phase. False for anything else,
 * which the plain simulated kubelet handles. Under dc->mu. */
bool kiln_dc_jobs_sync(kiln_devcluster *dc, const kiln_dc_resource *r, const json_t *obj);
/* A node was written: pods waiting for their node get another look. */
void kiln_dc_jobs_note_node(kiln_devcluster *dc);
/* Reaps ended processes, kills those whose pod is gone, enforces Job
 * deadlines. Returns ms until it needs to run again, or -1. Under dc->mu. */
int64_t kiln_dc_jobs_tick(kiln_devcluster *dc);
/* Kills and reaps every process, removes their files, frees the module. */
void kiln_dc_jobs_stop(kiln_devcluster *dc);
/* Where kiln-gpucheck is: opt (--gpucheck: a path, or a name looked up on
 * PATH), else beside this program (/proc/self/exe), else on PATH. New string,
 * or NULL with *why saying where it looked. */
char *kiln_dc_gpucheck_find(const char *opt, char *why, size_t whyn);
/* posix_spawn of argv (borrowed) in a process group of its own, default
 * signals, stdin /dev/null, nothing open beyond 0-2: stdout and stderr
 * appended to out_path, or (out_fd >= 0) stdout on out_fd and stderr ours.
 * Returns 0 or an errno value. */
int kiln_dc_spawn(pid_t *pid, char **argv, char **envp, const char *out_path, int out_fd);

/* ---- realgpus.c: --real-gpus, this machine's GPUs on the node kiln-dev ---- */
/* What a node's GPUs are, in the terms of GPU feature discovery's labels. */
typedef struct kiln_dc_gpu_info {
    int count;
    char product[128];      /* the label's form: the CUDA name, spaces as '-' */
    long long memory_mib;   /* 0 = unknown */
    int cc_major, cc_minor; /* compute capability; -1 = unknown */
    char driver[3][16];     /* kernel driver major, minor, rev; "" = unknown */
    char runtime[2][16];    /* the CUDA version the driver supports; "" = unknown */
    char machine[64];       /* DMI product name, spaces as '-'; "" = unknown */
    char summary[256];      /* "8 x NVIDIA H100 80GB HBM3", for the log */
} kiln_dc_gpu_info;
/* Runs `kiln-gpucheck --checks device --compact --timeout S` (gpucheck_opt as
 * --gpucheck) and reads its GPUs into *out. The process is killed after
 * timeout_s. KILN_ENOTFOUND (no binary, or no GPU: the probe's own reason),
 * KILN_ETIMEOUT, KILN_ELIMIT (over 1 MiB of output) or KILN_EIO (no JSON). */
int kiln_dc_real_gpus_probe(kiln_dc_gpu_info *out, const char *gpucheck_opt, int timeout_s,
                            kiln_err *err);
/* (controllers.c, beside the simulated GPU nodes' labels) Labels and sizes
 * kiln-dev for the GPUs in real (borrowed), or, with NULL, takes away what an
 * earlier start with --real-gpus put there (--data-dir). Under dc->mu. */
void kiln_dc_real_gpus_apply(kiln_devcluster *dc, const kiln_dc_gpu_info *real);

/* ---- authz.c: impersonation and RBAC ---- */
/* Runs a request that carries Impersonate-* headers (req->impersonate non-NULL)
 * as the impersonated user and authorizes it with the stored RBAC objects.
 * False when resp holds the refusal (403 Forbidden; 500 for groups, extras or
 * a uid without a user, as kube-apiserver). Under dc->mu. */
bool kiln_dc_authz_check(kiln_devcluster *dc, const kiln_devcluster_request *req,
                         kiln_devcluster_response *resp);

/* ---- faults.c ---- */
bool kiln_dc_faults_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                           kiln_devcluster_response *resp);
/* Applies a matching fail-Nth rule; true when resp now holds the failure. */
bool kiln_dc_faults_check(kiln_devcluster *dc, const kiln_devcluster_request *req,
                          kiln_devcluster_response *resp);

/* ---- http.c / tls.c / kubeconfig.c ---- */
int kiln_dc_http_start(kiln_devcluster *dc, kiln_err *err);
void kiln_dc_http_stop(kiln_devcluster *dc);
int kiln_dc_tls_selfsigned(char **cert_pem, char **key_pem, kiln_err *err);
int kiln_dc_kubeconfig_write(kiln_devcluster *dc, const char *path, const char *ca_pem,
                             kiln_err *err);

#endif
