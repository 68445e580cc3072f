/* controller/metrics.h: Prometheus metrics and the /metrics, /healthz and
 * /readyz endpoints.
 *
 * Names follow controller-runtime and client-go so existing dashboards work:
 * controller_runtime_reconcile_total{controller,result} (pre-set to 0 for
 * every result), controller_runtime_reconcile_time_seconds (histogram),
 * workqueue_depth, workqueue_adds_total, workqueue_retries_total (name
 * "kiln"), rest_client_requests_total{code,method},
 * leader_election_master_status{name}, and kiln_rgds, kiln_instances,
 * kiln_cached_objects gauges. /healthz answers 200 while the process runs;
 * /readyz answers 200 once the informers are synced and the workers run.
 *
 * The metrics object is owned by the manager and thread-safe.
 */
#ifndef KILN_CONTROLLER_METRICS_H
#define KILN_CONTROLLER_METRICS_H

#include "core/buf.h"
#include "core/err.h"

struct kiln_manager;
typedef struct kiln_metrics kiln_metrics;
typedef struct kiln_metrics_server kiln_metrics_server;

/* m borrowed (NULL for tests: the gauges that read the manager are left out). */
kiln_metrics *kiln_metrics_new(struct kiln_manager *m);
void kiln_metrics_free(kiln_metrics *x);

/* controller: "rgd" or "instance"; result: "success", "error", "requeue",
 * "requeue_after". */
void kiln_metrics_reconcile(kiln_metrics *x, const char *controller, const char *result,
                            double seconds);
void kiln_metrics_set_leader(kiln_metrics *x, int is_leader);

/* Appends the Prometheus text exposition of every metric to out. */
int kiln_metrics_render(kiln_buf *out, kiln_metrics *x, kiln_err *err);

/* Serves /metrics, /healthz and /readyz on addr ("[host]:port", ":8080").
 * *out is new (kiln_metrics_server_stop). */
int kiln_metrics_serve(kiln_metrics_server **out, struct kiln_manager *m, const char *addr,
                       bool with_metrics, kiln_err *err);
void kiln_metrics_server_stop(kiln_metrics_server *s);

#endif
