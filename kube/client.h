/* kube/client.h: a Kubernetes REST client over a pluggable transport.
 *
 * The client builds request paths from {group, version, resource, namespace,
 * name, subresource}, adds credentials from a kiln_kube_config, limits its own
 * request rate (a token bucket, client-go's 5 qps / burst 10 by default),
 * retries 429 and 5xx answers that carry Retry-After (at most max_retries
 * times, as client-go does), re-authenticates once after a 401, and maps
 * `Status` error bodies to kiln codes, keeping the server's message in the
 * kiln_err and its reason in kiln_kube_last_status().
 *
 * Bytes move through a kiln_kube_transport: libcurl in production
 * (kiln_kube_transport_curl_new), a fake in tests, the dev cluster in-process.
 * The client owns its transport and its config; it is safe to use from many
 * threads at once (the transport must be too).
 *
 * Documents are jansson json_t; results are new references the caller
 * releases with json_decref.
 */
#ifndef KILN_KUBE_CLIENT_H
#define KILN_KUBE_CLIENT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "kube/config.h"

/* ------------------------------------------------------------------------ */
/* Transport                                                                  */

/* Called with body bytes as they arrive, for streaming requests (watches).
 * data is borrowed. Return nonzero (a KILN_E* code with err set) to stop. */
typedef int (*kiln_kube_data_fn)(void *ctx, const char *data, size_t len, kiln_err *err);

typedef struct kiln_kube_request {
    const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;          /* absolute: server + path + query */
    const char *accept;       /* Accept header */
    const char *content_type; /* NULL when there is no body */
    const char *body;         /* borrowed; body_len bytes */
    size_t body_len;
    const char *user_agent;
    const kiln_kube_credentials *creds; /* borrowed; token never logged */
    long timeout_ms;                    /* whole request; 0 = none (watches) */
    kiln_kube_data_fn on_data;          /* NULL: collect the body into resp->body; else 2xx
                                           bodies go here and others into resp->body */
    void *on_data_ctx;
    const atomic_int *cancel;   /* NULL, or nonzero asks the request to stop (polled) */
    const char *const *headers; /* NULL, or NULL-terminated extra "Name: value" lines */
} kiln_kube_request;

typedef struct kiln_kube_response {
    long status;            /* HTTP status; 0 before a response arrived */
    kiln_buf body;          /* initialised by the client with its size bound */
    char content_type[128]; /* "" when absent */
    long retry_after_s;     /* Retry-After in seconds; -1 when absent */
} kiln_kube_response;

typedef struct kiln_kube_transport_ops {
    /* Sends req and fills resp (status, body or on_data, headers). Returns 0
     * once any HTTP response arrived, whatever its status; a negative code
     * when none did (KILN_EIO connection failure, KILN_ETIMEOUT, KILN_ELIMIT
     * body too large, or what on_data returned). A cancelled request returns
     * 0, with status 0 when no answer had arrived. */
    int (*request)(void *ctx, const kiln_kube_request *req, kiln_kube_response *resp,
                   kiln_err *err);
    void (*destroy)(void *ctx); /* may be NULL */
} kiln_kube_transport_ops;

typedef struct kiln_kube_transport {
    const kiln_kube_transport_ops *ops; /* borrowed, static */
    void *ctx;                          /* taken: released by ops->destroy */
} kiln_kube_transport;

/* libcurl + OpenSSL: CA, client certificate and key from memory, HTTP/2 over
 * TLS when offered, keep-alive connections shared by all threads, gzip. cfg is
 * borrowed (what is needed is copied). */
int kiln_kube_transport_curl_new(kiln_kube_transport *out, const kiln_kube_config *cfg,
                                 kiln_err *err);

/* ------------------------------------------------------------------------ */
/* Client                                                                     */

typedef struct kiln_kube_client kiln_kube_client;

typedef struct kiln_kube_client_opts {
    double qps;             /* 0: 5 (client-go's default); negative: no client-side limit */
    int burst;              /* 0: 10 */
    int max_retries;        /* Retry-After retries; 0: 10, negative: none */
    long timeout_ms;        /* per non-streaming request; 0: 60 s */
    size_t max_body;        /* response body bound; 0: 64 MiB */
    long max_retry_after_s; /* longest Retry-After honoured; 0: 60 */
    const char *user_agent; /* NULL: "kiln/<version>" */
    kiln_kube_clock clock;  /* zero: the system clock */
} kiln_kube_client_opts;

/* *out is new (kiln_kube_client_free). cfg and transport are taken, also on
 * failure. opts may be NULL. */
int kiln_kube_client_new(kiln_kube_client **out, kiln_kube_config *cfg,
                         kiln_kube_transport transport, const kiln_kube_client_opts *opts,
                         kiln_err *err);
/* Config + libcurl transport in one call; cfg taken. */
int kiln_kube_client_new_curl(kiln_kube_client **out, kiln_kube_config *cfg,
                              const kiln_kube_client_opts *opts, kiln_err *err);
void kiln_kube_client_free(kiln_kube_client *c);

/* Borrowed; valid while c lives. */
const kiln_kube_config *kiln_kube_client_config(const kiln_kube_client *c);

/* What a request addresses. Strings borrowed. group "" (or NULL) is the core
 * group (/api/v1); namespace NULL/"" is cluster scope (or all namespaces for
 * list and watch); name NULL addresses the collection. */
typedef struct kiln_kube_ref {
    const char *group;
    const char *version;
    const char *resource; /* plural, lower case: "deployments" */
    const char *namespace;
    const char *name;
    const char *subresource; /* "status", "scale", or NULL */
} kiln_kube_ref;

/* Appends the request path for ref ("/apis/apps/v1/namespaces/ns/deployments/x").
 * Names are percent-encoded; ".", ".." and names with "/" are refused. */
int kiln_kube_path(kiln_buf *out, const kiln_kube_ref *ref, kiln_err *err);

/* The last HTTP answer seen by the calling thread's most recent client call
 * (like errno): http 0 when none arrived. reason is the Status reason
 * ("NotFound", "Expired", ...) or "" when the body was not a Status. */
typedef struct kiln_kube_status {
    int http;
    char reason[64];
    long retry_after_s; /* -1 when absent */
} kiln_kube_status;

const kiln_kube_status *kiln_kube_last_status(void);

/* From now on, every request the calling thread sends (through any client)
 * carries "Impersonate-User: user" in place of the config's impersonation;
 * NULL or "" stops it. For writes made on behalf of someone else (an RGD's
 * spec.serviceAccountName); the caller must hold `impersonate` on that
 * user. KILN_EINVAL for a name with control characters or over 280 bytes. */
int kiln_kube_impersonate(const char *user, kiln_err *err);
/* 410 Gone / reason Expired from the last call: the resourceVersion or
 * continue token is too old; relist (API conventions). */
bool kiln_kube_last_expired(void);

/* Maps an HTTP status and body (a Status or anything else) to a kiln code and
 * message, as the client does; fills *st when not NULL. what names the
 * request ("GET /api/v1/pods") for bodies that are not a Status. */
int kiln_kube_status_error(kiln_kube_status *st, long http, const char *body, size_t len,
                           const char *what, kiln_err *err);

/* ------------------------------------------------------------------------ */
/* Verbs. Each returns 0 or a KILN_E* code; *out (when the verb has one) is a
 * new reference or NULL on failure.                                          */

int kiln_kube_get(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, kiln_err *err);

typedef struct kiln_kube_list_opts {
    const char *label_selector;
    const char *field_selector;
    long limit;                         /* page size; 0: 500 (client-go's pager) */
    const char *resource_version;       /* NULL: most recent */
    const char *resource_version_match; /* "NotOlderThan", "Exact", NULL */
    const atomic_int *cancel; /* NULL, or nonzero stops the list (KILN_ETIMEOUT "cancelled") */
    size_t max_items;         /* 0: 1,000,000; more fails with KILN_ELIMIT */
} kiln_kube_list_opts;

/* Lists every page (limit/continue) into one document: the first page's
 * kind/apiVersion, metadata.resourceVersion of the snapshot, all items.
 * opts may be NULL. A continue token that expires (410) fails with
 * KILN_ECONFLICT and kiln_kube_last_expired(). */
int kiln_kube_list(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                   const kiln_kube_list_opts *opts, kiln_err *err);

typedef struct kiln_kube_write_opts {
    const char *field_manager;    /* required for apply */
    bool force;                   /* apply only: take over conflicting fields */
    bool dry_run;                 /* dryRun=All */
    const char *field_validation; /* "Strict", "Warn", "Ignore", NULL */
} kiln_kube_write_opts;

/* POST to the collection (ref->name ignored). obj borrowed. */
int kiln_kube_create(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                     const kiln_kube_write_opts *w, kiln_err *err);
/* PUT the whole object (include metadata.resourceVersion for an optimistic
 * update: a stale one fails with KILN_ECONFLICT). */
int kiln_kube_update(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                     const kiln_kube_write_opts *w, kiln_err *err);

typedef enum kiln_kube_patch_type {
    KILN_KUBE_PATCH_MERGE, /* application/merge-patch+json (RFC 7386) */
    KILN_KUBE_PATCH_JSON,  /* application/json-patch+json (RFC 6902) */
    KILN_KUBE_PATCH_APPLY, /* application/apply-patch+yaml (server-side apply) */
} kiln_kube_patch_type;

int kiln_kube_patch(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                    kiln_kube_patch_type type, const json_t *patch, const kiln_kube_write_opts *w,
                    kiln_err *err);
/* Server-side apply of obj (borrowed) with fieldManager field_manager. */
int kiln_kube_apply(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref, const json_t *obj,
                    const char *field_manager, bool force, kiln_err *err);

typedef struct kiln_kube_delete_opts {
    const char *propagation_policy; /* "Foreground", "Background", "Orphan", NULL */
    const char *precondition_uid;
    const char *precondition_resource_version;
    bool set_grace_period; /* false: the server's default grace period */
    long grace_period_s;   /* when set_grace_period; 0 means now */
    bool dry_run;
} kiln_kube_delete_opts;

/* DELETE with a DeleteOptions body. *out (may be NULL to discard) is the
 * server's answer: the object (deletion pending) or a Status. opts may be NULL. */
int kiln_kube_delete(json_t **out, kiln_kube_client *c, const kiln_kube_ref *ref,
                     const kiln_kube_delete_opts *opts, kiln_err *err);

/* One raw request through the client's rate limit, auth, retries and error
 * mapping. path includes the query. body may be NULL. *out (may be NULL) is
 * the parsed JSON body of a 2xx answer. For discovery and OpenAPI. */
int kiln_kube_do(json_t **out, kiln_kube_client *c, const char *method, const char *path,
                 const char *content_type, const char *body, size_t body_len, kiln_err *err);

/* A streaming GET (watch): data goes to on_data as it arrives, until the
 * server ends the stream, on_data fails, *cancel becomes nonzero (returns 0)
 * or timeout_ms passes (0: no limit; watches pass the server's timeoutSeconds
 * plus slack). Same rate limit, auth and error mapping as other calls. */
int kiln_kube_stream(kiln_kube_client *c, const char *path, long timeout_ms,
                     kiln_kube_data_fn on_data, void *ctx, const atomic_int *cancel, kiln_err *err);

/* ------------------------------------------------------------------------ */
/* Metrics: rest_client_requests_total{code,method}                          */

#define KILN_KUBE_METRICS_MAX 64

typedef struct kiln_kube_metric {
    char method[8]; /* "GET", "POST", ... */
    char code[8];   /* "200", "404", "<error>" when no answer arrived */
    uint64_t count;
} kiln_kube_metric;

/* Copies up to cap counters into out (sorted by method, then code); returns
 * how many there are in all. */
size_t kiln_kube_client_metrics(const kiln_kube_client *c, kiln_kube_metric *out, size_t cap);

/* Token bucket (exposed for tests and the controller's own limits). */
typedef struct kiln_kube_ratelimit {
    double qps; /* <= 0: unlimited */
    double burst;
    double tokens;
    int64_t last_ms;
    bool started;
} kiln_kube_ratelimit;

void kiln_kube_ratelimit_init(kiln_kube_ratelimit *rl, double qps, int burst);
/* Takes one token at now_ms; returns how many ms the caller must wait
 * before sending (0 when a token was free). Not thread-safe by itself. */
int64_t kiln_kube_ratelimit_reserve(kiln_kube_ratelimit *rl, int64_t now_ms);

#endif
