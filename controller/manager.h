/* controller/manager.h: the reconciling controller, as one call.
 *
 * kiln_manager_run watches ResourceGraphDefinitions, the CRDs kiln generates,
 * the instances of every generated kind and the children kiln applied (only
 * objects labelled kiln.dev/instance-uid are cached), routes every event to a
 * key in one rate-limited work queue ("rgd:<name>", "inst:<rgd>:<ns>:<name>")
 * and runs N workers, each with its own Lua state, until *stop becomes
 * nonzero. Then it drains the queue, stops everything and frees it all.
 * With leader election on, the workers start only while this process holds
 * the Lease; losing it ends the run with KILN_ECONFLICT.
 *
 * Namespace mode (opts->namespace), as a controller-runtime manager whose
 * cache is restricted to one namespace: only instances in that namespace are
 * reconciled and children of namespaced kinds are watched only there;
 * cluster-scoped kinds (RGDs, CRDs, cluster-scoped children) are still
 * watched cluster-wide; instances of cluster-scoped generated kinds are not
 * reconciled (docs/controller.md, "Namespace mode").
 *
 * The client is borrowed and must outlive the run.
 */
#ifndef KILN_CONTROLLER_MANAGER_H
#define KILN_CONTROLLER_MANAGER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/err.h"
#include "kube/client.h"

typedef struct kiln_manager_opts {
    int workers;                  /* 0: 4 */
    const char *metrics_addr;     /* "[host]:port"; NULL, "" or "0": no /metrics server */
    const char *health_addr;      /* /healthz and /readyz; NULL, "" or "0": none */
    bool leader_elect;            /* take a coordination.k8s.io/v1 Lease first */
    const char *namespace;        /* namespace mode (above); NULL or "": every namespace */
    const char *leader_namespace; /* NULL: namespace, else the client config's namespace */
    const char *leader_id;        /* Lease name; NULL: "kiln-controller" */
    const char *identity;         /* holder identity; NULL: "<hostname>_<pid>" */
    /* Image of GPU validation Jobs; NULL or "": ghcr.io/kiln-dev/kiln-gpucheck
     * at kiln's own version. */
    const char *gpucheck_image;
} kiln_manager_opts;

/* Runs the controller until *stop is nonzero (a signal handler sets it).
 * Returns 0 after a clean shutdown, or a KILN_E* code when it could not start
 * (a port in use, no access to RGDs) or lost its leadership. */
int kiln_manager_run(kiln_kube_client *client, const kiln_manager_opts *opts,
                     const atomic_int *stop, kiln_err *err);

/* Server-side applies kiln's own CRDs (the ResourceGraphDefinition CRD), as
 * `kubectl apply -f crds/` would. The client is borrowed. */
int kiln_manager_install_crds(kiln_kube_client *client, kiln_err *err);

#endif
