/* controller/metrics.c: counters, the text exposition and the HTTP server
 * (libmicrohttpd, one internal thread). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "controller/internal.h"
#include "controller/metrics.h"
#include "core/mem.h"

/* controller-runtime's reconcile time buckets. */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3,  0.35,
                                 0.4,   0.45, 0.5,   0.6,  0.7, 0.8,  0.9, 1.0,  1.25, 1.5,
                                 1.75,  2.0,  2.5,   3.0,  3.5, 4.0,  4.5, 5,    6,    7,
                                 8,     9,    10,    15,   20,  25,   30,  40,   50,   60};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
static const char *const controllers[] = {"rgd", "instance"};
static const char *const results[] = {"success", "error", "requeue", "requeue_after"};

struct kiln_metrics {
    pthread_mutex_t lock;
    struct kiln_manager *m;
    unsigned long long total[2][4];
    unsigned long long hist[2][NBUCKETS];
    unsigned long long count[2];
    double sum[2];
    int leader;
};

struct kiln_metrics_server {
    struct MHD_Daemon *d;
    struct kiln_manager *m;
    bool with_metrics;
};

kiln_metrics *kiln_metrics_new(struct kiln_manager *m)
{
    kiln_metrics *x = kiln_xcalloc(1, sizeof(*x));
    pthread_mutex_init(&x->lock, NULL);
    x->m = m;
    return x;
}

void kiln_metrics_free(kiln_metrics *x)
{
    if (!x)
        return;
    pthread_mutex_destroy(&x->lock);
    kiln_xfree(x);
}

static int index_of(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

void kiln_metrics_reconcile(kiln_metrics *x, const char *controller, const char *result,
                            double seconds)
{
    int c = index_of(controllers, 2, controller), r = index_of(results, 4, result);
    if (!x || c < 0 || r < 0)
        return;
    pthread_mutex_lock(&x->lock);
    x->total[c][r]++;
    for (size_t b = 0; b < NBUCKETS; b++)
        if (seconds <= buckets[b])
            x->hist[c][b]++;
    x->count[c]++;
    x->sum[c] += seconds;
    pthread_mutex_unlock(&x->lock);
}

void kiln_metrics_set_leader(kiln_metrics *x, int is_leader)
{
    pthread_mutex_lock(&x->lock);
    x->leader = is_leader;
    pthread_mutex_unlock(&x->lock);
}

int kiln_metrics_render(kiln_buf *out, kiln_metrics *x, kiln_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&x->lock);
    rc |= kiln_buf_puts(out,
                        "# HELP controller_runtime_reconcile_total Total number of reconciliations "
                        "per controller\n# TYPE controller_runtime_reconcile_total counter\n",
                        err);
    for (int c = 0; c < 2; c++)
        for (int r = 0; r < 4; r++)
            rc |= kiln_buf_printf(out, err,
                                  "controller_runtime_reconcile_total{controller=\"%s\",result="
                                  "\"%s\"} %llu\n",
                                  controllers[c], results[r], x->total[c][r]);
    rc |= kiln_buf_puts(out,
                        "# HELP controller_runtime_reconcile_time_seconds Length of time per "
                        "reconciliation per controller\n# TYPE "
                        "controller_runtime_reconcile_time_seconds histogram\n",
                        err);
    for (int c = 0; c < 2; c++) {
        for (size_t b = 0; b < NBUCKETS; b++)
            rc |= kiln_buf_printf(out, err,
                                  "controller_runtime_reconcile_time_seconds_bucket{controller="
                                  "\"%s\",le=\"%g\"} %llu\n",
                                  controllers[c], buckets[b], x->hist[c][b]);
        rc |= kiln_buf_printf(out, err,
                              "controller_runtime_reconcile_time_seconds_bucket{controller=\"%s\","
                              "le=\"+Inf\"} %llu\n"
                              "controller_runtime_reconcile_time_seconds_sum{controller=\"%s\"} "
                              "%.6f\n"
                              "controller_runtime_reconcile_time_seconds_count{controller=\"%s\"} "
                              "%llu\n",
                              controllers[c], x->count[c], controllers[c], x->sum[c],
                              controllers[c], x->count[c]);
    }
    rc |= kiln_buf_printf(out, err,
                          "# HELP leader_election_master_status Gauge of if the reporting system "
                          "is master of the relevant lease, 0 indicates backup, 1 indicates "
                          "master.\n# TYPE leader_election_master_status gauge\n"
                          "leader_election_master_status{name=\"kiln-controller\"} %d\n",
                          x->leader);
    pthread_mutex_unlock(&x->lock);

    struct kiln_manager *m = x->m;
    if (!m)
        return rc < 0 ? KILN_ELIMIT : 0;
    kiln_queue_stats qs;
    kiln_queue_get_stats(m->queue, &qs);
    rc |= kiln_buf_printf(
        out, err,
        "# HELP workqueue_depth Current depth of workqueue\n# TYPE workqueue_depth gauge\n"
        "workqueue_depth{name=\"kiln\"} %zu\n"
        "# HELP workqueue_adds_total Total number of adds handled by workqueue\n"
        "# TYPE workqueue_adds_total counter\nworkqueue_adds_total{name=\"kiln\"} %llu\n"
        "# HELP workqueue_retries_total Total number of retries handled by workqueue\n"
        "# TYPE workqueue_retries_total counter\nworkqueue_retries_total{name=\"kiln\"} %llu\n",
        qs.depth, (unsigned long long)qs.adds, (unsigned long long)qs.retries);

    kiln_kube_metric km[KILN_KUBE_METRICS_MAX];
    size_t n = kiln_kube_client_metrics(m->client, km, KILN_KUBE_METRICS_MAX);
    if (n > KILN_KUBE_METRICS_MAX)
        n = KILN_KUBE_METRICS_MAX;
    rc |= kiln_buf_puts(out,
                        "# HELP rest_client_requests_total Number of HTTP requests, partitioned "
                        "by status code and method.\n# TYPE rest_client_requests_total counter\n",
                        err);
    for (size_t i = 0; i < n; i++)
        rc |= kiln_buf_printf(out, err,
                              "rest_client_requests_total{code=\"%s\",method=\"%s\"} %llu\n",
                              km[i].code, km[i].method, (unsigned long long)km[i].count);

    size_t rgds = 0, instances = 0, cached = 0;
    pthread_mutex_lock(&m->lock);
    size_t b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->rgd_entries, NULL, &b); e;
         e = kiln_strmap_next(&m->rgd_entries, e, &b)) {
        kiln_rgd_entry *re = e->value;
        if (re->deleted)
            continue;
        rgds++;
        if (re->instances)
            instances += kiln_kube_informer_len(re->instances);
    }
    b = 0;
    for (kiln_strmap_entry *e = kiln_strmap_next(&m->children, NULL, &b); e;
         e = kiln_strmap_next(&m->children, e, &b))
        cached += kiln_kube_informer_len(e->value);
    pthread_mutex_unlock(&m->lock);
    cached += instances;
    if (m->rgds)
        cached += kiln_kube_informer_len(m->rgds);
    if (m->crds)
        cached += kiln_kube_informer_len(m->crds);
    rc |= kiln_buf_printf(out, err,
                          "# HELP kiln_rgds ResourceGraphDefinitions known to the controller\n"
                          "# TYPE kiln_rgds gauge\nkiln_rgds %zu\n"
                          "# HELP kiln_instances Instances of generated kinds in the caches\n"
                          "# TYPE kiln_instances gauge\nkiln_instances %zu\n"
                          "# HELP kiln_cached_objects Objects held by all informer caches\n"
                          "# TYPE kiln_cached_objects gauge\nkiln_cached_objects %zu\n",
                          rgds, instances, cached);
    return rc < 0 ? KILN_ELIMIT : 0;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    kiln_metrics_server *s = cls;
    int code = 200;
    const char *ctype = "text/plain; charset=utf-8";
    kiln_buf body;
    kiln_buf_init(&body, KILN_BUF_DEFAULT_LIMIT);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        code = 405;
        kiln_buf_puts(&body, "method not allowed\n", NULL);
    } else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/livez") == 0) {
        kiln_buf_puts(&body, "ok\n", NULL);
    } else if (strcmp(url, "/readyz") == 0) {
        if (atomic_load(&s->m->ready)) {
            kiln_buf_puts(&body, "ok\n", NULL);
        } else {
            code = 503;
            kiln_buf_puts(&body, "not ready: informers not synced or not the leader\n", NULL);
        }
    } else if (strcmp(url, "/metrics") == 0 && s->with_metrics) {
        ctype = "text/plain; version=0.0.4; charset=utf-8";
        kiln_metrics_render(&body, s->m->metrics, NULL);
    } else {
        code = 404;
        kiln_buf_puts(&body, "not found\n", NULL);
    }
    char *text = kiln_buf_steal(&body);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

int kiln_metrics_serve(kiln_metrics_server **out, struct kiln_manager *m, const char *addr,
                       bool with_metrics, kiln_err *err)
{
    *out = NULL;
    const char *colon = strrchr(addr, ':');
    const char *port_s = colon ? colon + 1 : addr;
    char host[128] = "";
    if (colon && colon > addr) {
        size_t n = (size_t)(colon - addr);
        if (n >= sizeof(host))
            return kiln_err_set(err, KILN_EINVAL, "bind address \"%s\": host too long", addr);
        memcpy(host, addr, n);
        host[n] = '\0';
    }
    char *end = NULL;
    long port = strtol(port_s, &end, 10);
    if (!*port_s || *end || port < 0 || port > 65535)
        return kiln_err_set(err, KILN_EINVAL, "bind address \"%s\": want [host]:port", addr);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (host[0] && strcmp(host, "0.0.0.0") != 0) {
        const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (inet_pton(AF_INET, h, &sa.sin_addr) != 1)
            return kiln_err_set(err, KILN_EINVAL, "bind address \"%s\": not an IPv4 address", addr);
    }
    kiln_metrics_server *s = kiln_xcalloc(1, sizeof(*s));
    s->m = m;
    s->with_metrics = with_metrics;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            answer, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!s->d) {
        kiln_xfree(s);
        return kiln_err_set(err, KILN_EIO, "cannot listen on %s", addr);
    }
    *out = s;
    return 0;
}

void kiln_metrics_server_stop(kiln_metrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    kiln_xfree(s);
}
