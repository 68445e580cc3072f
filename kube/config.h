/* kube/config.h: where the API server is and how to authenticate to it.
 *
 * A kiln_kube_config comes from kubeconfig files (the KUBECONFIG list merged as
 * client-go merges it), from a pod's service account (in-cluster), or from the
 * caller filling one in. Certificate and key material is kept in memory as PEM
 * (kubeconfig `*-data` fields are base64-decoded) and never written to disk.
 *
 * Credentials that change while kiln runs live behind kiln_kube_config_credentials:
 * a token file (re-read about once a minute and after a 401, as client-go does for
 * bound service-account tokens) and exec credential plugins (run again when the
 * credential expires and after a 401). That state is guarded by a mutex, so one
 * config may serve many threads.
 *
 * The config owns every string and blob in it; kiln_kube_config_free releases them.
 */
#ifndef KILN_KUBE_CONFIG_H
#define KILN_KUBE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Time source, so tests can drive expiry, rate limits and backoff without
 * sleeping. All three are optional; NULL members use the system clock. */
typedef struct kiln_kube_clock {
    int64_t (*mono_ms)(void *ctx);           /* monotonic milliseconds */
    int64_t (*wall_s)(void *ctx);            /* seconds since the epoch (credential expiry) */
    void (*sleep_ms)(void *ctx, int64_t ms); /* block for ms */
    void *ctx;
} kiln_kube_clock;

int64_t kiln_kube_clock_mono_ms(const kiln_kube_clock *clock);
int64_t kiln_kube_clock_wall_s(const kiln_kube_clock *clock);
void kiln_kube_clock_sleep_ms(const kiln_kube_clock *clock, int64_t ms);

/* An exec credential plugin (client.authentication.k8s.io/v1 or v1beta1). */
typedef struct kiln_kube_exec {
    char *api_version;
    char *command; /* resolved: bare names are looked up in PATH at run time */
    char **argv;   /* NULL-terminated, argv[0] == command */
    char **env;    /* NULL-terminated "NAME=value" entries added to the environment */
    bool provide_cluster_info;
    long timeout_ms; /* 0: 60 s; the plugin is killed after that */
} kiln_kube_exec;

typedef struct kiln_kube_auth_state kiln_kube_auth_state;

typedef struct kiln_kube_config {
    char *server;          /* "https://host:port", no trailing slash */
    char *namespace;       /* default namespace: the context's, the pod's, or "default" */
    char *context;         /* the context used; NULL in-cluster */
    char *source;          /* "kubeconfig <path>" or "in-cluster", for messages */
    char *tls_server_name; /* name to verify instead of the URL's host, or NULL */
    char *proxy_url;       /* proxy-url, or NULL */
    char *ca_pem;          /* CA bundle (PEM) or NULL for the system roots */
    size_t ca_len;
    char *cert_pem; /* client certificate (PEM) or NULL */
    size_t cert_len;
    char *key_pem; /* client key (PEM) or NULL; never logged */
    size_t key_len;
    bool insecure;        /* insecure-skip-tls-verify */
    char *token;          /* static bearer token or NULL; never logged */
    char *token_file;     /* re-read file, or NULL; used when token is NULL */
    kiln_kube_exec *exec; /* or NULL */
    /* Impersonation (`as`, `as-uid`, `as-groups`, `as-user-extra`) as request
     * headers: NULL-terminated "Impersonate-...: value" lines, or NULL. */
    char **impersonate;
    kiln_kube_clock clock;
    kiln_kube_auth_state *auth; /* private: cached token / exec credential */
} kiln_kube_config;

/* How kiln_kube_config_load chooses a source (controller-runtime's order):
 * kubeconfig when given, else $KUBECONFIG, else in-cluster when
 * KUBERNETES_SERVICE_HOST is set, else $HOME/.kube/config. */
typedef struct kiln_kube_load_opts {
    const char *kubeconfig;      /* --kubeconfig: one path, or a ':' list; NULL */
    const char *context;         /* --context override; NULL for current-context */
    const char *in_cluster_root; /* prefix for /var/run/secrets/...; NULL means "" */
} kiln_kube_load_opts;

/* *out is new (kiln_kube_config_free). opts may be NULL. */
int kiln_kube_config_load(kiln_kube_config **out, const kiln_kube_load_opts *opts, kiln_err *err);

/* Loads kubeconfig files. paths is a ':'-separated list (duplicates ignored):
 * for each map key (cluster, user, context name) the first file that has it
 * wins, and current-context comes from the first file that sets it. context
 * overrides current-context when not NULL. *out is new. */
int kiln_kube_config_from_kubeconfig(kiln_kube_config **out, const char *paths, const char *context,
                                     kiln_err *err);

/* In-cluster config: KUBERNETES_SERVICE_HOST/PORT and the service account
 * files under root + "/var/run/secrets/kubernetes.io/serviceaccount/" (root
 * NULL or "" for the real path; tests pass a temp folder). *out is new. */
int kiln_kube_config_in_cluster(kiln_kube_config **out, const char *root, kiln_err *err);

/* A config with only server set (server borrowed, copied). For tests and for
 * callers that fill in the rest. *out is new. */
kiln_kube_config *kiln_kube_config_new(const char *server);

void kiln_kube_config_free(kiln_kube_config *cfg);

/* The credentials to send with one request. All members are new copies the
 * caller releases with kiln_kube_credentials_clear; NULL when absent. */
typedef struct kiln_kube_credentials {
    char *token;
    char *cert_pem; /* from an exec plugin; else the config's own (copied) */
    size_t cert_len;
    char *key_pem;
    size_t key_len;
} kiln_kube_credentials;

/* Fills *out with what to send now: a static token, the token file's contents
 * (read again when the cached copy is a minute old), or an exec plugin's
 * credential (run again when it expired). Thread-safe. */
int kiln_kube_config_credentials(kiln_kube_credentials *out, kiln_kube_config *cfg, kiln_err *err);

/* Called after a 401 for a request started at started_ms (mono clock): the
 * cached token file copy or exec credential is dropped if it is not newer than
 * the request, so the next kiln_kube_config_credentials fetches a fresh one.
 * Returns true when something was dropped (a retry may help). Thread-safe. */
bool kiln_kube_config_invalidate(kiln_kube_config *cfg, int64_t started_ms);

void kiln_kube_credentials_clear(kiln_kube_credentials *c);

/* Decodes standard base64 (whitespace ignored). *out is new, NUL-terminated
 * (the terminator not counted in *out_len). */
int kiln_kube_base64_decode(char **out, size_t *out_len, const char *in, size_t in_len,
                            kiln_err *err);

#endif
