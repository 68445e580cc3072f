/* devcluster/server.c: building, starting and stopping a dev cluster. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core/log.h"
#include "core/mem.h"
#include "devcluster/internal.h"

static void seed_namespaces(kiln_devcluster *dc)
{
    static const char *names[] = {"default", "kube-system", "kube-public", "kube-node-lease"};
    kiln_dc_resource *r = kiln_dc_kinds_find(dc, "", "v1", "namespaces");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (kiln_dc_store_get(r, "", names[i]))
            continue;
        json_t *ns = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                               "metadata", "name", names[i]);
        kiln_dc_write_internal(dc, r, ns, false);
    }
}

int kiln_devcluster_new(kiln_devcluster **out, const kiln_devcluster_options *opts, kiln_err *err)
{
    *out = NULL;
    kiln_devcluster *dc = kiln_xcalloc(1, sizeof *dc);
    if (opts)
        dc->opts = *opts;
    if (!dc->opts.max_body)
        dc->opts.max_body = (size_t)3 << 20;
    if (!dc->opts.history)
        dc->opts.history = 10000;
    dc->data_dir = opts && opts->data_dir ? kiln_xstrdup(opts->data_dir) : NULL;
    dc->kubeconfig = opts && opts->kubeconfig ? kiln_xstrdup(opts->kubeconfig) : NULL;
    dc->gpus = opts && opts->simulate_gpus ? kiln_xstrdup(opts->simulate_gpus) : NULL;
    dc->opts.data_dir = dc->data_dir;
    dc->opts.kubeconfig = dc->kubeconfig;
    dc->opts.simulate_gpus = dc->gpus;
    pthread_mutex_init(&dc->mu, NULL);
    kiln_dc_ctl_init(dc);
    dc->hcap = dc->opts.history;
    dc->hist = kiln_xcalloc(dc->hcap, sizeof *dc->hist);
    kiln_dc_timestamp(dc->start_time);
    unsigned char tok[16];
    if (RAND_bytes(tok, sizeof tok) != 1) {
        kiln_devcluster_stop(dc);
        return kiln_err_set(err, KILN_EIO, "cannot make a token: no randomness");
    }
    for (size_t i = 0; i < sizeof tok; i++)
        snprintf(dc->token + 2 * i, 3, "%02x", tok[i]);
    srand((unsigned)time(NULL) ^ (unsigned)tok[0] << 8);
    snprintf(dc->url, sizeof dc->url, "http://127.0.0.1:0");
    int rc = 0;
    if (dc->gpus && (rc = kiln_devcluster_check_gpus(dc->gpus, err)) < 0) {
        kiln_devcluster_stop(dc);
        return rc;
    }
    pthread_mutex_lock(&dc->mu);
    kiln_dc_kinds_register_builtins(dc);
    if (dc->data_dir)
        rc = kiln_dc_wal_open(dc, err);
    if (rc == 0) {
        seed_namespaces(dc);
        rc = kiln_dc_gpu_nodes(dc, dc->gpus, err);
    }
    pthread_mutex_unlock(&dc->mu);
    if (rc < 0) {
        kiln_devcluster_stop(dc);
        return rc;
    }
    *out = dc;
    return 0;
}

int kiln_devcluster_start(kiln_devcluster *dc, kiln_err *err)
{
    int rc = 0;
    if (dc->opts.tls && (rc = kiln_dc_tls_selfsigned(&dc->cert_pem, &dc->key_pem, err)) < 0)
        return rc;
    if ((rc = kiln_dc_http_start(dc, err)) < 0)
        return rc;
    if ((rc = kiln_dc_ctl_start(dc, err)) < 0)
        return rc;
    if (dc->kubeconfig &&
        (rc = kiln_dc_kubeconfig_write(dc, dc->kubeconfig, dc->cert_pem, err)) < 0)
        return rc;
    KILN_LOG(KILN_LOG_INFO, "dev cluster listening on %s%s%s", dc->url,
             dc->data_dir ? ", data in " : " (in memory)", dc->data_dir ? dc->data_dir : "");
    return 0;
}

int kiln_devcluster_port(const kiln_devcluster *dc)
{
    return dc->port;
}

const char *kiln_devcluster_url(const kiln_devcluster *dc)
{
    return dc->url;
}

const char *kiln_devcluster_token(const kiln_devcluster *dc)
{
    return dc->token;
}

void kiln_devcluster_stop(kiln_devcluster *dc)
{
    if (!dc)
        return;
    pthread_mutex_lock(&dc->mu);
    dc->stopping = true;
    kiln_dc_watch_drop_all(dc);
    pthread_mutex_unlock(&dc->mu);
    kiln_dc_ctl_stop(dc);
    kiln_dc_http_stop(dc);
    kiln_dc_wal_close(dc);
    /* Watches still held by in-process callers keep their events alive; the
     * server's own references go here. */
    kiln_dc_store_free_history(dc);
    kiln_dc_kinds_free_all(dc);
    pthread_mutex_destroy(&dc->mu);
    kiln_xfree(dc->cert_pem);
    kiln_xfree(dc->key_pem);
    kiln_xfree(dc->data_dir);
    kiln_xfree(dc->kubeconfig);
    kiln_xfree(dc->gpus);
    kiln_xfree(dc);
}
