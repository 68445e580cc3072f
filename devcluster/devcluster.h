/* devcluster/devcluster.h: the embedded Kubernetes-API-compatible dev cluster.
 *
 * A kiln_devcluster is a small API server for local work and tests: discovery,
 * OpenAPI, CRUD/list/watch for built-in kinds and CRD-defined kinds, patches,
 * server-side apply, status subresources, finalizers, garbage collection, a
 * simulated kubelet and optional simulated GPU nodes. It listens on 127.0.0.1
 * only. It is never a production control plane; docs/devcluster.md lists every
 * conscious deviation from kube-apiserver.
 *
 * The server owns everything it allocates; kiln_devcluster_stop frees it all.
 * kiln_devcluster_handle runs one request in-process (no network), which unit
 * tests and the request fuzzer use.
 */
#ifndef KILN_DEVCLUSTER_DEVCLUSTER_H
#define KILN_DEVCLUSTER_DEVCLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct kiln_devcluster kiln_devcluster;

typedef struct kiln_devcluster_options {
    int port;                  /* 0 = pick a free port */
    const char *data_dir;      /* NULL = in memory; else WAL + fsync there (borrowed) */
    const char *kubeconfig;    /* where to write a kubeconfig; NULL = none (borrowed) */
    const char *simulate_gpus; /* "h100x8,a100x4:2" or NULL (borrowed) */
    bool tls;                  /* serve HTTPS with a self-signed certificate */
    int kubelet_delay_ms;      /* simulated readiness delay; 0 = immediate */
    size_t max_body;           /* request body limit; 0 = 3 MiB, as kube-apiserver */
    size_t history;            /* watch events kept for resume; 0 = 10,000 */
    int bookmark_ms;           /* bookmark interval for watches that allow them; 0 = 60 s */
    bool no_kubelet;           /* disable the simulated kubelet */
    size_t wal_compact;        /* rewrite the log once it grows past this; 0 = 64 MiB */
    const char *gpucheck_path; /* kiln-gpucheck run by validation Jobs; NULL = beside this
                                  program, else on PATH (borrowed) */
    bool real_gpus;            /* probe this machine's GPUs with kiln-gpucheck at start and
                                  label and size the node kiln-dev with them */
    int real_gpus_timeout_s;   /* the probe is killed after this; 0 = 10 s */
} kiln_devcluster_options;

/* Builds the server and its state (replaying data_dir when set) without
 * listening. *out is new; free with kiln_devcluster_stop. */
int kiln_devcluster_new(kiln_devcluster **out, const kiln_devcluster_options *opts, kiln_err *err);

/* Starts listening on 127.0.0.1 and the background controllers, and writes the
 * kubeconfig when asked. */
int kiln_devcluster_start(kiln_devcluster *dc, kiln_err *err);

/* The port actually bound (after start). */
int kiln_devcluster_port(const kiln_devcluster *dc);
/* "http://127.0.0.1:PORT" or https; borrowed, valid until stop. */
const char *kiln_devcluster_url(const kiln_devcluster *dc);
/* The bearer token written to the kubeconfig; borrowed. */
const char *kiln_devcluster_token(const kiln_devcluster *dc);

/* Stops listening, ends every watch, joins threads and frees everything. NULL ok. */
void kiln_devcluster_stop(kiln_devcluster *dc);

/* The impersonation headers of one request, as sent (borrowed). Any of them
 * makes the request run as the impersonated user, under RBAC (devcluster/authz.c). */
typedef struct kiln_devcluster_impersonation {
    const char *user;          /* Impersonate-User, or NULL */
    const char *uid;           /* Impersonate-Uid, or NULL */
    const char *const *groups; /* each Impersonate-Group value */
    size_t ngroups;
    const char *const *extra; /* 2 * nextra strings: key (after "Impersonate-Extra-", any
                                 case, still percent-encoded), value */
    size_t nextra;
} kiln_devcluster_impersonation;

/* One request, in-process. Strings are borrowed for the call. */
typedef struct kiln_devcluster_request {
    const char *method;
    const char *path;  /* percent-decoded path without the query */
    const char *query; /* raw query string (still percent-encoded), or NULL */
    const char *content_type;
    const char *accept;
    const char *user_agent;
    const char *if_none_match;
    const char *authorization;
    const char *body;
    size_t body_len;
    bool body_too_large; /* the transport dropped a body over the limit */
    bool loopback;       /* the peer is 127.0.0.1 / ::1 */
    /* NULL when the request carries no Impersonate-* header (the common case:
     * the caller acts as cluster-admin and nothing is authorized). */
    const kiln_devcluster_impersonation *impersonate;
} kiln_devcluster_request;

typedef struct kiln_devcluster_response {
    int status;
    char content_type[96];
    char etag[80];
    char warning[256];
    int retry_after; /* seconds; 0 = no header */
    int delay_ms;    /* fault injection: hold the answer this long */
    kiln_buf body;
    void *watch; /* non-NULL: a stream; pass to kiln_devcluster_watch_read */
} kiln_devcluster_response;

void kiln_devcluster_response_init(kiln_devcluster_response *resp);
/* Frees the body and ends an unread watch. */
void kiln_devcluster_response_free(kiln_devcluster *dc, kiln_devcluster_response *resp);

/* Never fails: every problem becomes a Status response. */
void kiln_devcluster_handle(kiln_devcluster *dc, const kiln_devcluster_request *req,
                            kiln_devcluster_response *resp);

/* Copies the next bytes of a watch stream into out (at most max). Blocks up to
 * wait_ms for an event. Returns bytes copied, 0 when nothing arrived in time,
 * -1 at the end of the stream. */
long kiln_devcluster_watch_read(kiln_devcluster *dc, void *watch, char *out, size_t max,
                                int wait_ms);
/* Ends a watch (the client went away) and frees it. */
void kiln_devcluster_watch_close(kiln_devcluster *dc, void *watch);

/* The `kiln dev` program: parses flags (argv[0] is the program or subcommand
 * name), serves until SIGTERM/SIGINT, then shuts down cleanly. Returns the
 * exit status. */
int kiln_devcluster_main(int argc, char **argv);

/* What a host runs beside the dev cluster (`kiln dev` runs the controller).
 * started is called once the server listens and the kubeconfig is written
 * (a nonzero return stops everything); stopping is called on SIGTERM/SIGINT
 * before the server stops, so the host's clients never see it vanish. Stop
 * signals are blocked in every thread, including the host's. */
typedef struct kiln_devcluster_hooks {
    int (*started)(kiln_devcluster *dc, const char *kubeconfig, void *userdata, kiln_err *err);
    void (*stopping)(void *userdata);
    void *userdata;
} kiln_devcluster_hooks;

/* kiln_devcluster_main with hooks (borrowed; NULL means none). */
int kiln_devcluster_main_hooked(int argc, char **argv, const kiln_devcluster_hooks *hooks);

/* Checks a --simulate-gpus value: comma-separated items
 * <model>x<gpus>[:<nodes>][:slow|:notready|:fail=<check>+<check>]...
 * KILN_EINVAL naming the item and the grammar. */
int kiln_devcluster_check_gpus(const char *spec, kiln_err *err);

#endif
