/* devcluster/http.c: the HTTP transport (libmicrohttpd, one thread per
 * connection, bound to 127.0.0.1 only), request logging, and watch streaming
 * as chunked responses. Bodies over opts.max_body are drained and answered
 * 413; the handler itself never sees them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "devcluster/internal.h"

struct kiln_dc_http {
    struct MHD_Daemon *daemon;
};

typedef struct conn_ctx {
    kiln_buf body;
    bool too_large;
} conn_ctx;

typedef struct stream_ctx {
    kiln_devcluster *dc;
    void *watch;
    int fd;
} stream_ctx;

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static void encode_into(kiln_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            kiln_buf_append(b, p, 1, NULL);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            kiln_buf_append(b, e, 3, NULL);
        }
    }
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    kiln_buf *q = cls;
    if (q->len)
        kiln_buf_puts(q, "&", NULL);
    encode_into(q, key);
    if (value) {
        kiln_buf_puts(q, "=", NULL);
        encode_into(q, value);
    }
    return MHD_YES;
}

static bool peer_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
        return true;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_ctx *s = cls;
    for (;;) {
        long n = kiln_devcluster_watch_read(s->dc, s->watch, buf, max, 1000);
        if (n > 0)
            return (ssize_t)n;
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (peer_gone(s->fd))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_free(void *cls)
{
    stream_ctx *s = cls;
    kiln_devcluster_watch_close(s->dc, s->watch);
    kiln_xfree(s);
}

/* Impersonate-* headers of one request; pointers into MHD's header storage. */
typedef struct imp_headers {
    kiln_devcluster_impersonation imp;
    const char **groups, **extra;
    size_t capg, cape;
    bool any;
} imp_headers;

static enum MHD_Result collect_impersonation(void *cls, enum MHD_ValueKind kind, const char *key,
                                             const char *value)
{
    (void)kind;
    imp_headers *h = cls;
    if (strncasecmp(key, "Impersonate-", 12))
        return MHD_YES;
    const char *rest = key + 12;
    value = value ? value : "";
    if (!strcasecmp(rest, "User")) {
        if (!h->imp.user) /* http.Header.Get: the first value */
            h->imp.user = value;
    } else if (!strcasecmp(rest, "Uid")) {
        if (!h->imp.uid)
            h->imp.uid = value;
    } else if (!strcasecmp(rest, "Group")) {
        if (h->imp.ngroups == h->capg) {
            h->capg = h->capg ? 2 * h->capg : 4;
            h->groups = kiln_xrealloc(h->groups, h->capg * sizeof *h->groups);
        }
        h->groups[h->imp.ngroups++] = value;
    } else if (!strncasecmp(rest, "Extra-", 6)) {
        if (2 * h->imp.nextra + 2 > h->cape) {
            h->cape = h->cape ? 2 * h->cape : 8;
            h->extra = kiln_xrealloc(h->extra, h->cape * sizeof *h->extra);
        }
        h->extra[2 * h->imp.nextra] = rest + 6;
        h->extra[2 * h->imp.nextra + 1] = value;
        h->imp.nextra++;
    } else {
        return MHD_YES;
    }
    h->any = true;
    return MHD_YES;
}

static bool is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    kiln_devcluster *dc = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) {
        cc = kiln_xcalloc(1, sizeof *cc);
        kiln_buf_init(&cc->body, dc->opts.max_body);
        *con_cls = cc;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cc->too_large && kiln_buf_append(&cc->body, upload_data, *upload_data_size, NULL) < 0)
            cc->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct timespec ts0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    kiln_buf query;
    kiln_buf_init(&query, 1 << 20);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &query);
    kiln_devcluster_request req = {
        .method = method,
        .path = url,
        .query = query.data,
        .content_type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE),
        .accept = header(conn, MHD_HTTP_HEADER_ACCEPT),
        .user_agent = header(conn, MHD_HTTP_HEADER_USER_AGENT),
        .if_none_match = header(conn, MHD_HTTP_HEADER_IF_NONE_MATCH),
        .authorization = header(conn, MHD_HTTP_HEADER_AUTHORIZATION),
        .body = cc->body.data,
        .body_len = cc->body.len,
        .body_too_large = cc->too_large,
        .loopback = is_loopback(conn),
    };
    imp_headers imp = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_impersonation, &imp);
    if (imp.any) {
        imp.imp.groups = imp.groups;
        imp.imp.extra = imp.extra;
        req.impersonate = &imp.imp;
    }
    kiln_devcluster_response resp;
    kiln_devcluster_response_init(&resp);
    kiln_devcluster_handle(dc, &req, &resp);
    kiln_xfree(imp.groups);
    kiln_xfree(imp.extra);
    if (resp.delay_ms > 0) {
        struct timespec d = {resp.delay_ms / 1000, (long)(resp.delay_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
    struct MHD_Response *r;
    if (resp.watch) {
        stream_ctx *s = kiln_xcalloc(1, sizeof *s);
        s->dc = dc;
        s->watch = resp.watch;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        s->fd = ci ? ci->connect_fd : -1;
        resp.watch = NULL;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s,
                                              stream_free);
    } else {
        size_t len = resp.body.len;
        char *data = kiln_buf_steal(&resp.body);
        r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    }
    if (resp.content_type[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp.content_type);
    if (resp.etag[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, resp.etag);
    if (resp.warning[0])
        MHD_add_response_header(r, "Warning", resp.warning);
    if (resp.retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", resp.retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp.status, r);
    MHD_destroy_response(r);
    struct timespec ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double ms = (double)(ts1.tv_sec - ts0.tv_sec) * 1e3 + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e6;
    KILN_LOG(KILN_LOG_INFO, "%s %s%s%s %d %.1fms %s", method, url, query.len ? "?" : "",
             query.len ? query.data : "", resp.status, ms, req.user_agent ? req.user_agent : "-");
    kiln_buf_free(&query);
    kiln_devcluster_response_free(dc, &resp);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    conn_ctx *cc = *con_cls;
    if (!cc)
        return;
    kiln_buf_free(&cc->body);
    kiln_xfree(cc);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    KILN_LOG(KILN_LOG_DEBUG, "devcluster http: %s", msg);
}

int kiln_dc_http_start(kiln_devcluster *dc, kiln_err *err)
{
    kiln_dc_http *h = kiln_xcalloc(1, sizeof *h);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)dc->opts.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (dc->opts.tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            kiln_xfree(h);
            return kiln_err_set(err, KILN_EIO,
                                "--tls: this libmicrohttpd was built without TLS support");
        }
        flags |= MHD_USE_TLS;
    }
    if (dc->opts.tls)
        h->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, dc, MHD_OPTION_SOCK_ADDR, &addr,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, dc, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)300, MHD_OPTION_CONNECTION_LIMIT, (unsigned)2000, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_log, dc, MHD_OPTION_HTTPS_MEM_CERT, dc->cert_pem, MHD_OPTION_HTTPS_MEM_KEY,
            dc->key_pem, MHD_OPTION_END);
    else
        h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, dc, MHD_OPTION_SOCK_ADDR,
                                     &addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, dc,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)2000,
                                     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, dc, MHD_OPTION_END);
    if (!h->daemon) {
        kiln_xfree(h);
        return kiln_err_set(err, KILN_EIO, "cannot listen on 127.0.0.1:%d (port in use?)",
                            dc->opts.port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    dc->port = di ? di->port : dc->opts.port;
    snprintf(dc->url, sizeof dc->url, "%s://127.0.0.1:%d", dc->opts.tls ? "https" : "http",
             dc->port);
    dc->http = h;
    return 0;
}

void kiln_dc_http_stop(kiln_devcluster *dc)
{
    kiln_dc_http *h = dc->http;
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    kiln_xfree(h);
    dc->http = NULL;
}
