/* tests/kube/fake.h: a scripted transport, a fake clock and a loopback HTTP
 * server for the kube tests. Header-only (static functions): each test file
 * is its own executable. */
#ifndef KILN_TESTS_KUBE_FAKE_H
#define KILN_TESTS_KUBE_FAKE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "kube/client.h"

/* ------------------------------------------------------------------------ */
/* Fake clock: sleeping advances time and is recorded.                       */

typedef struct fake_clock {
    int64_t now_ms;
    int64_t wall_s;
    int64_t sleeps[64];
    size_t nsleeps;
} fake_clock;

static inline int64_t fake_mono(void *ctx)
{
    return ((fake_clock *)ctx)->now_ms;
}

static inline int64_t fake_wall(void *ctx)
{
    return ((fake_clock *)ctx)->wall_s;
}

static inline void fake_sleep(void *ctx, int64_t ms)
{
    fake_clock *c = ctx;
    if (c->nsleeps < 64)
        c->sleeps[c->nsleeps++] = ms;
    c->now_ms += ms;
}

static inline kiln_kube_clock fake_clock_ops(fake_clock *c)
{
    kiln_kube_clock k = {fake_mono, fake_wall, fake_sleep, c};
    return k;
}

/* ------------------------------------------------------------------------ */
/* Fake transport                                                            */

#define FAKE_MAX 128

typedef struct fake_reply {
    long status;
    const char *body;
    long retry_after;         /* -1: none (0 is a valid Retry-After) */
    const char *chunks[8];    /* streaming: delivered one on_data call each */
    int io_error;             /* nonzero: fail with this code and no answer */
    const char *content_type; /* NULL: application/json */
} fake_reply;

typedef struct fake_req {
    char method[8];
    char *path; /* URL without the server part */
    char *content_type;
    char *accept;
    char *body;
    char *token;
    bool stream;
} fake_req;

typedef struct fake {
    pthread_mutex_t mu;
    const char *server;
    fake_reply replies[FAKE_MAX];
    size_t nreplies, next;
    fake_req reqs[FAKE_MAX];
    size_t nreqs;
} fake;

static char *fake_dup(const char *s)
{
    return s ? kiln_xstrdup(s) : NULL;
}

/* Scripts the next answer. body NULL means empty. */
static inline void fake_push(fake *f, long status, const char *body)
{
    pthread_mutex_lock(&f->mu);
    fake_reply r = {status, body, -1, {NULL}, 0, NULL};
    f->replies[f->nreplies++] = r;
    pthread_mutex_unlock(&f->mu);
}

static inline void fake_push_reply(fake *f, fake_reply r)
{
    pthread_mutex_lock(&f->mu);
    f->replies[f->nreplies++] = r;
    pthread_mutex_unlock(&f->mu);
}

static inline size_t fake_nreqs(fake *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->nreqs;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int fake_request(void *ctx, const kiln_kube_request *req, kiln_kube_response *resp,
                        kiln_err *err)
{
    fake *f = ctx;
    fake_reply r;
    bool have = false;
    pthread_mutex_lock(&f->mu);
    size_t sl = strlen(f->server);
    if (f->nreqs < FAKE_MAX) {
        fake_req *q = &f->reqs[f->nreqs++];
        snprintf(q->method, sizeof(q->method), "%s", req->method);
        q->path = fake_dup(strncmp(req->url, f->server, sl) == 0 ? req->url + sl : req->url);
        q->content_type = fake_dup(req->content_type);
        q->accept = fake_dup(req->accept);
        q->body = req->body ? kiln_xstrndup(req->body, req->body_len) : NULL;
        q->token = req->creds ? fake_dup(req->creds->token) : NULL;
        q->stream = req->on_data != NULL;
    }
    if (f->next < f->nreplies) {
        r = f->replies[f->next++];
        have = true;
    }
    pthread_mutex_unlock(&f->mu);
    if (!have) {
        if (req->on_data) {
            /* Nothing scripted for a watch: hang like a quiet stream. */
            while (!(req->cancel && atomic_load(req->cancel))) {
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL);
            }
            resp->status = 200;
            return 0;
        }
        return kiln_err_set(err, KILN_EIO, "fake: no reply scripted for %s %s", req->method,
                            req->url);
    }
    if (r.io_error)
        return kiln_err_set(err, r.io_error, "fake: connection refused");
    resp->status = r.status;
    resp->retry_after_s = r.retry_after;
    snprintf(resp->content_type, sizeof(resp->content_type), "%s",
             r.content_type ? r.content_type : "application/json");
    if (req->on_data && r.status >= 200 && r.status < 300) {
        if (r.chunks[0]) {
            for (int i = 0; i < 8 && r.chunks[i]; i++) {
                int rc = req->on_data(req->on_data_ctx, r.chunks[i], strlen(r.chunks[i]), err);
                if (rc)
                    return rc;
            }
        } else if (r.body) {
            return req->on_data(req->on_data_ctx, r.body, strlen(r.body), err);
        }
        return 0;
    }
    if (r.body)
        return kiln_buf_append(&resp->body, r.body, strlen(r.body), err);
    return 0;
}

static void fake_destroy(void *ctx)
{
    fake *f = ctx;
    for (size_t i = 0; i < f->nreqs; i++) {
        kiln_xfree(f->reqs[i].path);
        kiln_xfree(f->reqs[i].content_type);
        kiln_xfree(f->reqs[i].accept);
        kiln_xfree(f->reqs[i].body);
        kiln_xfree(f->reqs[i].token);
    }
    pthread_mutex_destroy(&f->mu);
    kiln_xfree(f);
}

static const kiln_kube_transport_ops fake_ops = {fake_request, fake_destroy};

/* A client on a fresh fake; *fp is borrowed (freed with the client). */
static inline kiln_kube_client *fake_client(fake **fp, kiln_kube_config *cfg,
                                            const kiln_kube_client_opts *opts)
{
    fake *f = kiln_xcalloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    if (!cfg)
        cfg = kiln_kube_config_new("https://k8s.test:6443");
    f->server = cfg->server;
    kiln_kube_transport tr = {&fake_ops, f};
    kiln_kube_client *c = NULL;
    kiln_err err = {0};
    if (kiln_kube_client_new(&c, cfg, tr, opts, &err) != 0) {
        fprintf(stderr, "fake_client: %s\n", err.msg);
        abort();
    }
    *fp = f;
    return c;
}

/* ------------------------------------------------------------------------ */
/* Loopback HTTP/1.1 server: answers each connection's requests with the     */
/* scripted raw responses, in order, and records the raw requests.           */

typedef struct loop_server {
    int fd;
    int port;
    pthread_t thread;
    const char *responses[16]; /* raw HTTP responses, one per request */
    size_t nresponses;
    char *owned[16];
    atomic_int hold_ms;      /* keep each connection open this long after answering (0 ends it) */
    atomic_int delay_ms;     /* wait this long before answering (0 ends the wait) */
    char requests[16][4096]; /* raw request heads and bodies */
    size_t nrequests;
    size_t connections;
} loop_server;

/* Reads one request (head + Content-Length body) into buf; 0 on EOF. */
static size_t loop_read_request(int c, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t k = recv(c, buf + n, cap - 1 - n, 0);
        if (k <= 0)
            return 0;
        n += (size_t)k;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        size_t head = (size_t)(end - buf) + 4;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        size_t want = cl && cl < end ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
        while (n < head + want && n < cap - 1) {
            k = recv(c, buf + n, cap - 1 - n, 0);
            if (k <= 0)
                break;
            n += (size_t)k;
            buf[n] = '\0';
        }
        return n;
    }
}

static void *loop_run(void *arg)
{
    loop_server *s = arg;
    size_t next = 0;
    while (next < s->nresponses) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        s->connections++;
        while (next < s->nresponses) {
            char *buf = s->requests[s->nrequests < 16 ? s->nrequests : 15];
            if (!loop_read_request(c, buf, sizeof(s->requests[0])))
                break;
            s->nrequests++;
            const char *r = s->responses[next++];
            for (int waited = 0; waited < atomic_load(&s->delay_ms); waited += 5) {
                struct timespec ts = {0, 5000000};
                nanosleep(&ts, NULL);
            }
            send(c, r, strlen(r), MSG_NOSIGNAL);
            for (int waited = 0; waited < atomic_load(&s->hold_ms); waited += 5) {
                struct timespec ts = {0, 5000000};
                nanosleep(&ts, NULL);
            }
            if (strstr(r, "Connection: close"))
                break;
        }
        close(c);
    }
    return NULL;
}

static inline void loop_start(loop_server *s)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 8) != 0)
        abort();
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, loop_run, s);
}

static inline void loop_stop(loop_server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < 16; i++)
        kiln_xfree(s->owned[i]);
}

/* Scripts a response with a correct Content-Length. status: "200 OK". */
static inline void loop_add(loop_server *s, const char *status, const char *headers,
                            const char *body)
{
    char *r = kiln_xasprintf("HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n%s", status,
                             headers ? headers : "", strlen(body), body);
    s->owned[s->nresponses] = r;
    s->responses[s->nresponses++] = r;
}

#endif
