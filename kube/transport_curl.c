/* The production transport: libcurl with OpenSSL.
 *
 * Easy handles are pooled and share one connection cache, TLS session cache
 * and DNS cache (a CURLSH with per-data locks), so requests from any thread
 * reuse keep-alive connections instead of paying a TLS handshake each time, and
 * HTTP/2 connections are reused when the server offers h2. Certificates and
 * keys are handed to libcurl as in-memory blobs (CURLOPT_*_BLOB, libcurl >=
 * 7.77), never written to temporary files.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/mem.h"
#include "kube/client.h"

#define POOL_MAX 16
/* client-go dial timeout (transport/cache.go). */
#define CONNECT_TIMEOUT_MS 30000L

typedef struct curl_tr {
    char *ca;
    size_t ca_len;
    bool insecure;
    char *tls_server_name; /* or NULL */
    char *proxy_url;       /* or NULL: libcurl then honours https_proxy etc. */
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    size_t npool;
} curl_tr;

typedef struct xfer {
    const kiln_kube_request *req;
    kiln_kube_response *resp;
    CURL *h;
    kiln_err *err;
    int rc; /* set when a callback stopped the transfer */
    bool cancelled;
} xfer;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

/* curl_global_init is not thread-safe; do it once before any handle exists. */
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    /* With CURLOPT_NOSIGNAL (needed with threads) libcurl leaves SIGPIPE
     * alone, and OpenSSL writes with plain write(): an API server closing a
     * connection would kill the process. Ignore it unless the host already
     * chose a disposition. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp)
{
    curl_tr *t = userp;
    pthread_mutex_lock(&t->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
    curl_tr *t = userp;
    pthread_mutex_unlock(&t->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static size_t on_header(char *buf, size_t size, size_t n, void *userp)
{
    xfer *x = userp;
    size_t len = size * n;
    /* A new status line (after 100 Continue, or a redirect) starts over. */
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        x->resp->content_type[0] = '\0';
        x->resp->retry_after_s = -1;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon)
        return len;
    size_t klen = (size_t)(colon - buf);
    const char *v = colon + 1;
    const char *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vlen = (size_t)(end - v);
    if (klen == 12 && strncasecmp(buf, "Content-Type", 12) == 0) {
        size_t m =
            vlen < sizeof(x->resp->content_type) - 1 ? vlen : sizeof(x->resp->content_type) - 1;
        memcpy(x->resp->content_type, v, m);
        x->resp->content_type[m] = '\0';
    } else if (klen == 11 && strncasecmp(buf, "Retry-After", 11) == 0) {
        /* Only the delay-seconds form: client-go ignores HTTP dates too. */
        char tmp[16];
        if (vlen && vlen < sizeof(tmp)) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            char *e;
            long s = strtol(tmp, &e, 10);
            if (*e == '\0' && s >= 0)
                x->resp->retry_after_s = s;
        }
    } else if (klen == 7 && strncasecmp(buf, "Warning", 7) == 0) {
        KILN_LOG(KILN_LOG_WARN, "API server warning: %.*s", (int)vlen, v);
    }
    return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *userp)
{
    xfer *x = userp;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    /* A streaming request gets its data as it comes only for a 2xx answer;
     * an error answer is a Status document collected like any other body. */
    if (x->req->on_data && code >= 200 && code < 300) {
        int rc = x->req->on_data(x->req->on_data_ctx, buf, len, x->err);
        if (rc) {
            x->rc = rc;
            return 0;
        }
        return len;
    }
    int rc = kiln_buf_append(&x->resp->body, buf, len, x->err);
    if (rc) {
        kiln_err_prefix(x->err, "%s %s: response body", x->req->method, x->req->url);
        x->rc = rc;
        return 0;
    }
    return len;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer *x = userp;
    if (x->req->cancel && atomic_load(x->req->cancel)) {
        x->cancelled = true;
        return 1;
    }
    return 0;
}

static CURL *take_handle(curl_tr *t)
{
    CURL *h = NULL;
    pthread_mutex_lock(&t->pool_mu);
    if (t->npool)
        h = t->pool[--t->npool];
    pthread_mutex_unlock(&t->pool_mu);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void give_handle(curl_tr *t, CURL *h)
{
    pthread_mutex_lock(&t->pool_mu);
    if (t->npool < POOL_MAX) {
        t->pool[t->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&t->pool_mu);
    if (h)
        curl_easy_cleanup(h);
}

/* libcurl has no "verify the certificate as name X" option. For
 * tls-server-name the URL names X (so SNI and verification use it) and
 * CURLOPT_CONNECT_TO sends the connection to the real host. Returns the URL
 * to use (new) and fills *connect_to (new list) when rewritten. */
static char *sni_url(const curl_tr *t, const char *url, struct curl_slist **connect_to)
{
    char *out = NULL, *host = NULL, *port = NULL, *rewritten = NULL;
    CURLU *u = NULL;
    *connect_to = NULL;
    if (!t->tls_server_name || strncmp(url, "https://", 8) != 0)
        return kiln_xstrdup(url);
    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, t->tls_server_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &rewritten, 0) != CURLUE_OK) {
        out = kiln_xstrdup(url);
        goto out;
    }
    char *rule = kiln_xasprintf("%s:%s:%s:%s", t->tls_server_name, port, host, port);
    *connect_to = curl_slist_append(NULL, rule);
    kiln_xfree(rule);
    out = kiln_xstrdup(rewritten);
out:
    curl_free(host);
    curl_free(port);
    curl_free(rewritten);
    curl_url_cleanup(u);
    return out;
}

static int curl_request(void *ctx, const kiln_kube_request *req, kiln_kube_response *resp,
                        kiln_err *err)
{
    curl_tr *t = ctx;
    struct curl_slist *headers = NULL, *connect_to = NULL;
    char *auth = NULL, *url = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    int rc = 0;
    CURL *h = take_handle(t);
    if (!h)
        return kiln_err_set(err, KILN_ENOMEM, "curl_easy_init failed");
    xfer x = {req, resp, h, err, 0, false};

    url = sni_url(t, req->url, &connect_to);
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
    if (t->proxy_url)
        curl_easy_setopt(h, CURLOPT_PROXY, t->proxy_url);
    curl_easy_setopt(h, CURLOPT_SHARE, t->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 30L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 0L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (req->user_agent)
        curl_easy_setopt(h, CURLOPT_USERAGENT, req->user_agent);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);

    if (t->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (t->ca) {
        struct curl_blob ca = {t->ca, t->ca_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (req->creds && req->creds->cert_pem && req->creds->key_pem) {
        struct curl_blob cert = {req->creds->cert_pem, req->creds->cert_len, CURL_BLOB_COPY};
        struct curl_blob key = {req->creds->key_pem, req->creds->key_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }

    headers = curl_slist_append(headers, "Expect:");
    if (req->accept) {
        char *a = kiln_xasprintf("Accept: %s", req->accept);
        headers = curl_slist_append(headers, a);
        kiln_xfree(a);
    }
    if (req->content_type) {
        char *ct = kiln_xasprintf("Content-Type: %s", req->content_type);
        headers = curl_slist_append(headers, ct);
        kiln_xfree(ct);
    }
    for (const char *const *hdr = req->headers; hdr && *hdr; hdr++)
        headers = curl_slist_append(headers, *hdr);
    if (req->creds && req->creds->token) {
        auth = kiln_xasprintf("Authorization: Bearer %s", req->creds->token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        }
    }

    CURLcode cr = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (cr == CURLE_OK) {
        rc = 0;
    } else if (x.rc) {
        rc = x.rc; /* err already set by on_data or the body bound */
    } else if (x.cancelled) {
        rc = 0;
    } else if (cr == CURLE_OPERATION_TIMEDOUT) {
        rc = kiln_err_set(err, KILN_ETIMEOUT, "%s %s: %s", req->method, req->url,
                          errbuf[0] ? errbuf : curl_easy_strerror(cr));
    } else {
        rc = kiln_err_set(err, KILN_EIO, "%s %s: %s", req->method, req->url,
                          errbuf[0] ? errbuf : curl_easy_strerror(cr));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
    curl_slist_free_all(headers);
    curl_slist_free_all(connect_to);
    kiln_xfree(url);
    if (auth) {
        memset(auth, 0, strlen(auth));
        kiln_xfree(auth);
    }
    give_handle(t, h);
    return rc;
}

static void curl_destroy(void *ctx)
{
    curl_tr *t = ctx;
    if (!t)
        return;
    for (size_t i = 0; i < t->npool; i++)
        curl_easy_cleanup(t->pool[i]);
    if (t->share)
        curl_share_cleanup(t->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&t->locks[i]);
    pthread_mutex_destroy(&t->pool_mu);
    kiln_xfree(t->ca);
    kiln_xfree(t->tls_server_name);
    kiln_xfree(t->proxy_url);
    kiln_xfree(t);
}

static const kiln_kube_transport_ops curl_ops = {curl_request, curl_destroy};

int kiln_kube_transport_curl_new(kiln_kube_transport *out, const kiln_kube_config *cfg,
                                 kiln_err *err)
{
    out->ops = NULL;
    out->ctx = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return kiln_err_set(err, KILN_EIO, "curl_global_init: %s", curl_easy_strerror(global_rc));
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (v->version_num < 0x074d00) /* 7.77.0: CURLOPT_CAINFO_BLOB */
        return kiln_err_set(err, KILN_EIO, "libcurl %s is too old: 7.77 or newer is needed",
                            v->version);
    curl_tr *t = kiln_xcalloc(1, sizeof(*t));
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    pthread_mutex_init(&t->pool_mu, NULL);
    if (cfg->ca_pem) {
        t->ca = kiln_xmalloc(cfg->ca_len + 1);
        memcpy(t->ca, cfg->ca_pem, cfg->ca_len);
        t->ca[cfg->ca_len] = '\0';
        t->ca_len = cfg->ca_len;
    }
    t->insecure = cfg->insecure;
    t->tls_server_name = cfg->tls_server_name ? kiln_xstrdup(cfg->tls_server_name) : NULL;
    t->proxy_url = cfg->proxy_url ? kiln_xstrdup(cfg->proxy_url) : NULL;
    t->share = curl_share_init();
    if (!t->share) {
        curl_destroy(t);
        return kiln_err_set(err, KILN_ENOMEM, "curl_share_init failed");
    }
    curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    out->ops = &curl_ops;
    out->ctx = t;
    return 0;
}

int kiln_kube_client_new_curl(kiln_kube_client **out, kiln_kube_config *cfg,
                              const kiln_kube_client_opts *opts, kiln_err *err)
{
    kiln_kube_transport tr;
    *out = NULL;
    if (!cfg)
        return kiln_err_set(err, KILN_EINVAL, "kube client: no config");
    int rc = kiln_kube_transport_curl_new(&tr, cfg, err);
    if (rc) {
        kiln_kube_config_free(cfg);
        return rc;
    }
    return kiln_kube_client_new(out, cfg, tr, opts, err);
}
