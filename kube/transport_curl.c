/* The production transport: libcurl with OpenSSL.
 *
 * By default (KILN_KUBE_CURL_MULTIPLEX) one I/O thread per transport drives a
 * curl multi handle. libcurl multiplexes HTTP/2 streams only among transfers
 * of one multi handle, so this is what lets every worker's request and every
 * informer's watch share one connection per host, as client-go does, instead
 * of one TLS connection per concurrent request. A caller's thread configures
 * an easy handle, queues it (curl_multi_wakeup) and sleeps on a condition
 * variable until the I/O thread reports completion. Streaming bodies
 * (watches) are copied into a bounded per-transfer buffer on the I/O thread
 * and handed to on_data on the caller's thread: the informer's event handlers
 * (cache updates, controller enqueues, anything a host installs) then never
 * run on, or block, the thread all connections depend on, and may themselves
 * make requests. A consumer that falls behind pauses its stream
 * (CURL_WRITEFUNC_PAUSE) until it catches up; over HTTP/2 libcurl closes that
 * stream's flow-control window, so other streams keep flowing.
 *
 * KILN_KUBE_CURL_PER_THREAD keeps the older path: callers run
 * curl_easy_perform on their own threads with pooled easy handles sharing a
 * connection cache (a CURLSH), so connections are reused but each concurrent
 * request needs its own.
 *
 * Either way certificates and keys are handed to libcurl as in-memory blobs
 * (CURLOPT_*_BLOB, libcurl >= 7.77), never written to temporary files.
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
#include "kube/transport_curl.h"

#define POOL_MAX 16
/* client-go dial timeout (transport/cache.go). */
#define CONNECT_TIMEOUT_MS 30000L
/* How often the I/O thread looks at cancel flags when nothing else wakes it:
 * a cancelled watch ends within this (the documented "about a second"). */
#define POLL_MS 200
/* Streaming bytes buffered for a caller that has not taken them yet; past
 * this the stream pauses. A watch event is decoded incrementally, so this
 * bounds memory, not event size. */
#define STREAM_BUF_MAX (1u << 20)
/* libcurl's own default; Go's HTTP/2 server (kube-apiserver) allows 250. */
#define MAX_STREAMS_DEFAULT 100L
/* Idle connections kept (client-go keeps 25 per host). */
#define MAX_IDLE_CONNECTS 32L

typedef struct xfer xfer;

typedef struct curl_tr {
    char *ca;
    size_t ca_len;
    bool insecure;
    char *tls_server_name; /* or NULL */
    char *proxy_url;       /* or NULL: libcurl then honours https_proxy etc. */
    kiln_kube_curl_mode mode;
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    size_t npool;
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t connects;
    atomic_uint_fast64_t pauses;

    /* Multiplexed mode. multi is used only by the I/O thread (wakeup aside). */
    CURLM *multi;
    pthread_mutex_t mu; /* guards what follows and each xfer's mux fields */
    pthread_t io;
    bool io_started;
    bool quit;
    xfer *submitted; /* queued by callers, adopted by the I/O thread */
    xfer *active;    /* in the multi handle; touched by the I/O thread only */
} curl_tr;

struct xfer {
    curl_tr *t;
    const kiln_kube_request *req;
    kiln_kube_response *resp;
    CURL *h;
    kiln_err *err; /* where callbacks on the transfer's thread report */
    int rc;        /* set when a callback stopped the transfer */
    bool cancelled;

    /* Multiplexed mode; guarded by t->mu unless noted. */
    xfer *next;
    pthread_cond_t cond;  /* signalled on new stream data and on done */
    bool done;            /* the I/O thread has let go of the transfer */
    bool paused;          /* the write callback returned CURL_WRITEFUNC_PAUSE */
    bool resume;          /* the caller drained the buffer of a paused stream */
    bool abort;           /* the caller's on_data failed: drop the transfer */
    bool drop;            /* I/O thread only: remove it this turn */
    bool resume_now;      /* I/O thread only: unpause it this turn */
    CURLcode drop_result; /* I/O thread only: how a dropped transfer ends */
    CURLcode result;
    char *pending; /* streaming bytes not yet handed to on_data */
    size_t npending, cap;
};

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

/* Streaming data in multiplexed mode: queue it for the caller's thread. */
static size_t stream_push(xfer *x, const char *buf, size_t len)
{
    curl_tr *t = x->t;
    size_t taken = len;
    pthread_mutex_lock(&t->mu);
    if (x->abort) {
        taken = 0; /* a write error ends the transfer */
    } else if (x->npending >= STREAM_BUF_MAX) {
        /* Not consumed: libcurl hands the same bytes again after
         * curl_easy_pause(CURLPAUSE_CONT). */
        x->paused = true;
        atomic_fetch_add(&t->pauses, 1);
        taken = CURL_WRITEFUNC_PAUSE;
    } else {
        if (x->npending + len > x->cap) {
            x->cap = x->npending + len > 2 * x->cap ? x->npending + len : 2 * x->cap;
            x->pending = kiln_xrealloc(x->pending, x->cap);
        }
        memcpy(x->pending + x->npending, buf, len);
        x->npending += len;
        pthread_cond_signal(&x->cond);
    }
    pthread_mutex_unlock(&t->mu);
    return taken;
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
        if (x->t->mode != KILN_KUBE_CURL_PER_THREAD)
            return stream_push(x, buf, len);
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

/* Per-thread mode only: the multiplexed I/O thread checks cancel flags itself
 * on every turn, which does not depend on when libcurl calls this. */
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

/* What curl_request allocates for one transfer. */
typedef struct prepared {
    struct curl_slist *headers;
    struct curl_slist *connect_to;
    char *auth;
    char *url;
} prepared;

static void prepare(prepared *p, curl_tr *t, xfer *x, char *errbuf)
{
    const kiln_kube_request *req = x->req;
    CURL *h = x->h;
    memset(p, 0, sizeof(*p));
    p->url = sni_url(t, req->url, &p->connect_to);
    curl_easy_setopt(h, CURLOPT_URL, p->url);
    if (p->connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, p->connect_to);
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
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    if (t->mode == KILN_KUBE_CURL_PER_THREAD) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    } else {
        /* While the first connection to a host is still negotiating, wait
         * to learn whether it speaks HTTP/2 rather than open another. */
        curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    }

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

    p->headers = curl_slist_append(p->headers, "Expect:");
    if (req->accept) {
        char *a = kiln_xasprintf("Accept: %s", req->accept);
        p->headers = curl_slist_append(p->headers, a);
        kiln_xfree(a);
    }
    if (req->content_type) {
        char *ct = kiln_xasprintf("Content-Type: %s", req->content_type);
        p->headers = curl_slist_append(p->headers, ct);
        kiln_xfree(ct);
    }
    for (const char *const *hdr = req->headers; hdr && *hdr; hdr++)
        p->headers = curl_slist_append(p->headers, *hdr);
    if (req->creds && req->creds->token) {
        p->auth = kiln_xasprintf("Authorization: Bearer %s", req->creds->token);
        p->headers = curl_slist_append(p->headers, p->auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, p->headers);

    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        }
    }
}

static void release(prepared *p, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
    curl_slist_free_all(p->headers);
    curl_slist_free_all(p->connect_to);
    kiln_xfree(p->url);
    if (p->auth) {
        memset(p->auth, 0, strlen(p->auth));
        kiln_xfree(p->auth);
    }
}

static void count(curl_tr *t, CURL *h)
{
    long n = 0;
    if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
        atomic_fetch_add(&t->connects, (uint_fast64_t)n);
    atomic_fetch_add(&t->requests, 1);
}

/* ------------------------------------------------------------------------ */
/* The I/O thread                                                             */

/* Hands x back to its caller; x (on the caller's stack) may be gone after. */
static void finish(curl_tr *t, xfer *x, CURLcode result)
{
    count(t, x->h);
    pthread_mutex_lock(&t->mu);
    x->result = result;
    x->done = true;
    pthread_cond_signal(&x->cond);
    pthread_mutex_unlock(&t->mu);
}

static void unlink_active(curl_tr *t, xfer *x)
{
    for (xfer **p = &t->active; *p; p = &(*p)->next) {
        if (*p == x) {
            *p = x->next;
            return;
        }
    }
}

static void *io_main(void *arg)
{
    curl_tr *t = arg;
    for (;;) {
        /* Under the lock: adopt new transfers and read what callers asked
         * for; act on it unlocked, since libcurl calls back into stream_push
         * (which takes the lock) from add, pause and perform. */
        pthread_mutex_lock(&t->mu);
        bool quit = t->quit;
        xfer *adopt = t->submitted;
        t->submitted = NULL;
        pthread_mutex_unlock(&t->mu);
        while (adopt) {
            xfer *x = adopt;
            adopt = x->next;
            CURLMcode mc = curl_multi_add_handle(t->multi, x->h);
            if (mc != CURLM_OK) {
                finish(t, x, CURLE_OUT_OF_MEMORY);
                continue;
            }
            x->next = t->active;
            t->active = x;
        }
        pthread_mutex_lock(&t->mu);
        for (xfer *x = t->active; x; x = x->next) {
            bool cancel = x->req->cancel && atomic_load(x->req->cancel);
            x->drop = quit || x->abort || cancel;
            /* An abort ends with on_data's own error; quit is a transport
             * destroyed under a caller's feet. */
            x->drop_result = x->abort ? CURLE_WRITE_ERROR : CURLE_ABORTED_BY_CALLBACK;
            x->cancelled = cancel && !x->abort;
            x->resume_now = x->resume && !x->drop;
            x->resume = false;
        }
        pthread_mutex_unlock(&t->mu);
        for (xfer *x = t->active, *next; x; x = next) {
            next = x->next;
            if (x->drop) {
                curl_multi_remove_handle(t->multi, x->h);
                unlink_active(t, x);
                finish(t, x, x->drop_result);
            } else if (x->resume_now) {
                /* May hand the held-back bytes to stream_push at once. */
                curl_easy_pause(x->h, CURLPAUSE_CONT);
            }
        }
        if (quit)
            break;
        int running = 0;
        curl_multi_perform(t->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(t->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *h = m->easy_handle;
            CURLcode result = m->data.result;
            xfer *x = NULL;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&x);
            curl_multi_remove_handle(t->multi, h);
            unlink_active(t, x);
            finish(t, x, result);
        }
        curl_multi_poll(t->multi, NULL, 0, POLL_MS, NULL);
    }
    return NULL;
}

/* Queues x for the I/O thread and waits for it, handing streaming data to
 * on_data on this thread. Returns what on_data returned (0 when it was not
 * called or succeeded); the transfer's outcome is in x->result. */
static int mux_perform(curl_tr *t, xfer *x, kiln_err *err)
{
    int data_rc = 0;
    char *spare = NULL;
    size_t spare_cap = 0;
    pthread_mutex_lock(&t->mu);
    if (t->quit) {
        pthread_mutex_unlock(&t->mu);
        x->result = CURLE_FAILED_INIT;
        return 0;
    }
    if (!t->io_started) {
        if (pthread_create(&t->io, NULL, io_main, t) != 0) {
            pthread_mutex_unlock(&t->mu);
            x->result = CURLE_FAILED_INIT;
            return 0;
        }
        t->io_started = true;
    }
    xfer **tail = &t->submitted;
    while (*tail)
        tail = &(*tail)->next;
    x->next = NULL;
    *tail = x;
    pthread_mutex_unlock(&t->mu);
    curl_multi_wakeup(t->multi);

    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (x->npending) {
            char *data = x->pending;
            size_t n = x->npending, cap = x->cap;
            x->pending = spare;
            x->cap = spare_cap;
            x->npending = 0;
            /* The buffer is free again: let a paused stream go on. */
            bool wake = x->paused;
            x->resume = x->resume || x->paused;
            x->paused = false;
            pthread_mutex_unlock(&t->mu);
            if (wake)
                curl_multi_wakeup(t->multi);
            /* After a cancel the bytes are dropped, as the transfer soon is. */
            if (!data_rc && !(x->req->cancel && atomic_load(x->req->cancel)))
                data_rc = x->req->on_data(x->req->on_data_ctx, data, n, err);
            spare = data;
            spare_cap = cap;
            pthread_mutex_lock(&t->mu);
            if (data_rc && !x->abort) {
                x->abort = true;
                curl_multi_wakeup(t->multi);
            }
            continue;
        }
        if (x->done)
            break;
        pthread_cond_wait(&x->cond, &t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    kiln_xfree(spare);
    kiln_xfree(x->pending);
    x->pending = NULL;
    return data_rc;
}

static int curl_request(void *ctx, const kiln_kube_request *req, kiln_kube_response *resp,
                        kiln_err *err)
{
    curl_tr *t = ctx;
    char errbuf[CURL_ERROR_SIZE] = "";
    kiln_err ioerr = {0};
    prepared p;
    int rc = 0, data_rc = 0;
    bool mux = t->mode != KILN_KUBE_CURL_PER_THREAD;
    CURL *h = take_handle(t);
    if (!h)
        return kiln_err_set(err, KILN_ENOMEM, "curl_easy_init failed");
    /* In multiplexed mode the I/O thread's callbacks report into ioerr, and
     * only on_data (run here) writes to the caller's err. */
    xfer x = {.t = t, .req = req, .resp = resp, .h = h, .err = mux ? &ioerr : err};
    prepare(&p, t, &x, errbuf);

    CURLcode cr;
    if (mux) {
        pthread_cond_init(&x.cond, NULL);
        data_rc = mux_perform(t, &x, err);
        pthread_cond_destroy(&x.cond);
        cr = x.result;
    } else {
        cr = curl_easy_perform(h);
        count(t, h);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (data_rc) {
        rc = data_rc; /* err set by on_data */
    } else if (cr == CURLE_OK) {
        rc = 0;
    } else if (x.rc) {
        rc = x.rc; /* err set by on_data or the body bound */
        if (mux && err)
            *err = ioerr;
    } else if (x.cancelled) {
        rc = 0;
    } else if (cr == CURLE_OPERATION_TIMEDOUT) {
        rc = kiln_err_set(err, KILN_ETIMEOUT, "%s %s: %s", req->method, req->url,
                          errbuf[0] ? errbuf : curl_easy_strerror(cr));
    } else {
        rc = kiln_err_set(err, KILN_EIO, "%s %s: %s", req->method, req->url,
                          errbuf[0] ? errbuf : curl_easy_strerror(cr));
    }
    release(&p, h);
    give_handle(t, h);
    return rc;
}

static void curl_destroy(void *ctx)
{
    curl_tr *t = ctx;
    if (!t)
        return;
    if (t->io_started) {
        pthread_mutex_lock(&t->mu);
        t->quit = true;
        pthread_mutex_unlock(&t->mu);
        curl_multi_wakeup(t->multi);
        pthread_join(t->io, NULL);
    }
    /* Closes the multi handle's connections; no easy handle is in it now. */
    if (t->multi)
        curl_multi_cleanup(t->multi);
    for (size_t i = 0; i < t->npool; i++)
        curl_easy_cleanup(t->pool[i]);
    if (t->share)
        curl_share_cleanup(t->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&t->locks[i]);
    pthread_mutex_destroy(&t->pool_mu);
    pthread_mutex_destroy(&t->mu);
    kiln_xfree(t->ca);
    kiln_xfree(t->tls_server_name);
    kiln_xfree(t->proxy_url);
    kiln_xfree(t);
}

static const kiln_kube_transport_ops curl_ops = {curl_request, curl_destroy};

static kiln_kube_curl_mode mode_from_env(void)
{
    const char *m = getenv("KILN_KUBE_CURL_MODE");
    if (m && strcmp(m, "per-thread") == 0)
        return KILN_KUBE_CURL_PER_THREAD;
    if (m && strcmp(m, "no-multiplex") == 0)
        return KILN_KUBE_CURL_NO_MULTIPLEX;
    return KILN_KUBE_CURL_MULTIPLEX;
}

int kiln_kube_transport_curl_new_opts(kiln_kube_transport *out, const kiln_kube_config *cfg,
                                      const kiln_kube_curl_opts *opts, kiln_err *err)
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
    pthread_mutex_init(&t->mu, NULL);
    t->mode = opts ? opts->mode : mode_from_env();
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
    /* The multi handle has its own connection cache, the one libcurl
     * multiplexes over; a shared one would take its place. */
    if (t->mode == KILN_KUBE_CURL_PER_THREAD)
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    /* TLS sessions are shared only where one thread uses them: under TSan,
     * libcurl 7.88 with OpenSSL 3 frees a shared session's certificate stack
     * while another thread's handshake copies it (kube/mux, per-thread). */
    if (t->mode != KILN_KUBE_CURL_PER_THREAD)
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (t->mode != KILN_KUBE_CURL_PER_THREAD) {
        t->multi = curl_multi_init();
        if (!t->multi) {
            curl_destroy(t);
            return kiln_err_set(err, KILN_ENOMEM, "curl_multi_init failed");
        }
        long streams = opts && opts->max_streams > 0 ? opts->max_streams : MAX_STREAMS_DEFAULT;
        curl_multi_setopt(t->multi, CURLMOPT_PIPELINING,
                          t->mode == KILN_KUBE_CURL_MULTIPLEX ? CURLPIPE_MULTIPLEX
                                                              : CURLPIPE_NOTHING);
        curl_multi_setopt(t->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, streams);
        /* No per-host connection limit: over HTTP/1.1 every open watch holds
         * a connection, and a limit would queue requests behind watches that
         * last minutes. Over HTTP/2 PIPEWAIT and the stream limit keep it to
         * one connection per max_streams concurrent requests. */
        curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
        curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, MAX_IDLE_CONNECTS);
    }
    out->ops = &curl_ops;
    out->ctx = t;
    return 0;
}

int kiln_kube_transport_curl_new(kiln_kube_transport *out, const kiln_kube_config *cfg,
                                 kiln_err *err)
{
    return kiln_kube_transport_curl_new_opts(out, cfg, NULL, err);
}

bool kiln_kube_transport_curl_stats(const kiln_kube_transport *t, kiln_kube_curl_stats *out)
{
    if (!t || t->ops != &curl_ops || !t->ctx)
        return false;
    curl_tr *c = t->ctx;
    out->requests = atomic_load(&c->requests);
    out->connects = atomic_load(&c->connects);
    out->pauses = atomic_load(&c->pauses);
    return true;
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
