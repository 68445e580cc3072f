/* devcluster/server.c: building, starting and stopping a dev cluster. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

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

/* With --data-dir the credentials live beside the log: the bearer token in
 * "token", and with --tls the certificate and key in "tls.crt" and "tls.key".
 * They are made on the first start and reused after, so a kubeconfig handed out
 * before a restart (the controller's) stays valid, as a service account token
 * does across kube-apiserver restarts. */
#define KEPT_MAX 16384 /* a P-256 key and its certificate are under 1 KiB each */

/* Reads path whole into *out (new string). Returns 0 with *out NULL when the
 * file does not exist. */
static int read_kept(char **out, const char *path, kiln_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
    char *buf = kiln_xmalloc(KEPT_MAX + 1);
    size_t n = 0;
    ssize_t got = 0;
    while (n <= KEPT_MAX && (got = read(fd, buf + n, KEPT_MAX + 1 - n)) > 0)
        n += (size_t)got;
    int rc = 0;
    if (got < 0)
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
    else if (n > KEPT_MAX)
        rc = kiln_err_set(err, KILN_ELIMIT, "%s: larger than %d bytes; delete it to make a new one",
                          path, KEPT_MAX);
    close(fd);
    if (rc < 0) {
        kiln_xfree(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* Written beside the target and renamed, so a start killed halfway leaves no
 * half file; 0600 because it is a credential. */
static int write_kept(const char *path, const char *data, kiln_err *err)
{
    char *tmp = kiln_xasprintf("%s.tmp", path);
    size_t len = strlen(data);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) < 0)
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", tmp, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
    if (rc < 0)
        unlink(tmp);
    kiln_xfree(tmp);
    return rc;
}

/* Replaces the fresh dc->token with the kept one, or keeps the fresh one. */
static int keep_token(kiln_devcluster *dc, kiln_err *err)
{
    char *path = kiln_xasprintf("%s/token", dc->data_dir);
    char *kept = NULL;
    int rc = read_kept(&kept, path, err);
    if (rc == 0 && !kept) {
        char *line = kiln_xasprintf("%s\n", dc->token);
        rc = write_kept(path, line, err);
        kiln_xfree(line);
    } else if (rc == 0) {
        /* The fresh token has the kept one's form: as many lowercase hex digits. */
        size_t want = strlen(dc->token), n = strlen(kept);
        if (n && kept[n - 1] == '\n')
            kept[--n] = '\0';
        if (n != want || strspn(kept, "0123456789abcdef") != n)
            rc = kiln_err_set(err, KILN_EINVAL,
                              "%s: not a dev cluster token (%zu hex digits expected); delete it "
                              "to make a new one",
                              path, want);
        else
            memcpy(dc->token, kept, n + 1);
    }
    kiln_xfree(kept);
    kiln_xfree(path);
    return rc;
}

/* Checks a kept certificate and key: each parses, and they belong together. */
static int check_tls(const char *cert_path, const char *cert_pem, const char *key_path,
                     const char *key_pem, kiln_err *err)
{
    int rc = 0;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    BIO *cb = BIO_new_mem_buf(cert_pem, -1);
    BIO *kb = BIO_new_mem_buf(key_pem, -1);
    if (!cb || !kb) {
        rc = kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", cert_path);
        goto done;
    }
    if (!(x = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "%s: not a PEM certificate; delete it and %s to make new ones", cert_path,
                          key_path);
        goto done;
    }
    if (!(key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "%s: not a PEM private key; delete it and %s to make new ones", key_path,
                          cert_path);
        goto done;
    }
    if (X509_check_private_key(x, key) != 1)
        rc = kiln_err_set(err, KILN_EINVAL, "%s: not the key of %s; delete both to make new ones",
                          key_path, cert_path);
done:
    EVP_PKEY_free(key);
    X509_free(x);
    BIO_free(kb);
    BIO_free(cb);
    return rc;
}

/* Loads the kept certificate and key into dc, or makes them (and keeps them
 * when there is a data dir). A pair missing either half, as a first start
 * killed between the two writes leaves, is made again. */
static int keep_tls(kiln_devcluster *dc, kiln_err *err)
{
    if (!dc->data_dir)
        return kiln_dc_tls_selfsigned(&dc->cert_pem, &dc->key_pem, err);
    char *cert_path = kiln_xasprintf("%s/tls.crt", dc->data_dir);
    char *key_path = kiln_xasprintf("%s/tls.key", dc->data_dir);
    char *cert = NULL, *key = NULL;
    int rc = read_kept(&cert, cert_path, err);
    if (rc == 0)
        rc = read_kept(&key, key_path, err);
    if (rc == 0 && cert && key) {
        rc = check_tls(cert_path, cert, key_path, key, err);
    } else if (rc == 0) {
        kiln_xfree(cert);
        kiln_xfree(key);
        cert = key = NULL;
        rc = kiln_dc_tls_selfsigned(&cert, &key, err);
        /* The key first: a certificate on disk always has its key beside it. */
        if (rc == 0)
            rc = write_kept(key_path, key, err);
        if (rc == 0)
            rc = write_kept(cert_path, cert, err);
    }
    if (rc == 0) {
        dc->cert_pem = cert;
        dc->key_pem = key;
    } else {
        kiln_xfree(cert);
        kiln_xfree(key);
    }
    kiln_xfree(key_path);
    kiln_xfree(cert_path);
    return rc;
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
    dc->gpucheck = opts && opts->gpucheck_path ? kiln_xstrdup(opts->gpucheck_path) : NULL;
    dc->opts.gpucheck_path = dc->gpucheck;
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
    /* Before the lock: the probe may take its whole timeout. */
    kiln_dc_gpu_info real;
    bool have_real = false;
    if (dc->opts.real_gpus) {
        kiln_err perr = {0};
        if (kiln_dc_real_gpus_probe(&real, dc->opts.gpucheck_path, dc->opts.real_gpus_timeout_s,
                                    &perr) == 0) {
            have_real = true;
            KILN_LOG(KILN_LOG_INFO, "real GPUs on node kiln-dev: %s", real.summary);
        } else {
            /* Not fatal: a workstation without a GPU still gets a dev cluster. */
            KILN_LOG(KILN_LOG_WARN,
                     "--real-gpus: no GPUs on node kiln-dev, it stays a CPU node: %s", perr.msg);
        }
    }
    pthread_mutex_lock(&dc->mu);
    kiln_dc_kinds_register_builtins(dc);
    if (dc->data_dir)
        rc = kiln_dc_wal_open(dc, err);
    if (rc == 0 && dc->data_dir)
        rc = keep_token(dc, err);
    if (rc == 0) {
        seed_namespaces(dc);
        rc = kiln_dc_gpu_nodes(dc, dc->gpus, err);
    }
    if (rc == 0)
        kiln_dc_real_gpus_apply(dc, have_real ? &real : NULL);
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
    if (dc->opts.tls && (rc = keep_tls(dc, err)) < 0)
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
    kiln_xfree(dc->gpucheck);
    kiln_xfree(dc);
}
