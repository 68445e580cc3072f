/* libcurl + OpenSSL against a loopback TLS server with certificates made
 * at test time: CA and client certificate from memory, tls-server-name,
 * insecure-skip-tls-verify, and a rejected server certificate. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/json.h"
#include "kube/client.h"
#include "kube/watch.h"
#include "tests/kube/fake.h"

typedef struct pki {
    EVP_PKEY *key;
    X509 *cert;
    char *cert_pem;
    char *key_pem;
} pki;

static long serial = 1;

static char *bio_text(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = kiln_xstrndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A P-256 key and a certificate for cn signed by ca (self-signed when NULL). */
static void make(pki *out, const char *cn, const pki *ca, const char *san)
{
    out->key = EVP_EC_gen("P-256");
    assert_non_null(out->key);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, out->key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca->cert) : X509_get_subject_name(x));
    X509 *issuer = ca ? ca->cert : x;
    if (!ca) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
    }
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (ca)
        add_ext(x, issuer, NID_authority_key_identifier, "keyid");
    if (san)
        add_ext(x, issuer, NID_subject_alt_name, san);
    assert_true(X509_sign(x, ca ? ca->key : out->key, EVP_sha256()) > 0);
    out->cert = x;
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    out->cert_pem = bio_text(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, out->key, NULL, NULL, 0, NULL, NULL);
    out->key_pem = bio_text(b);
}

static void pki_free(pki *p)
{
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
    kiln_xfree(p->cert_pem);
    kiln_xfree(p->key_pem);
}

/* One TLS connection per request ("Connection: close"), up to max. */
typedef struct tls_server {
    SSL_CTX *ctx;
    int fd;
    int port;
    pthread_t thread;
    int max;
    const char *response;
    int handshakes_ok;
    int handshakes_failed;
    char client_cn[64];
    char request[2048];
} tls_server;

static void *tls_run(void *arg)
{
    tls_server *s = arg;
    for (int i = 0; i < s->max; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) != 1) {
            s->handshakes_failed++;
        } else {
            s->handshakes_ok++;
            X509 *peer = SSL_get1_peer_certificate(ssl);
            if (peer) {
                X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, s->client_cn,
                                          sizeof(s->client_cn));
                X509_free(peer);
            }
            size_t n = 0;
            while (n < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
                int k = SSL_read(ssl, s->request + n, (int)(sizeof(s->request) - 1 - n));
                if (k <= 0)
                    break;
                n += (size_t)k;
                s->request[n] = '\0';
            }
            SSL_write(ssl, s->response, (int)strlen(s->response));
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(c);
    }
    return NULL;
}

static void tls_start(tls_server *s, const pki *server, const pki *client_ca, int max)
{
    s->ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(s->ctx, server->cert);
    SSL_CTX_use_PrivateKey(s->ctx, server->key);
    if (client_ca) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(s->ctx), client_ca->cert);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    s->response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                  "Content-Length: 17\r\n\r\n{\"kind\":\"Secret\"}";
    s->max = max;
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, tls_run, s);
}

static void tls_stop(tls_server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    SSL_CTX_free(s->ctx);
}

static kiln_kube_config *config_for(int port, const pki *ca)
{
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
    kiln_kube_config *cfg = kiln_kube_config_new(url);
    if (ca) {
        cfg->ca_pem = kiln_xstrdup(ca->cert_pem);
        cfg->ca_len = strlen(ca->cert_pem);
    }
    return cfg;
}

static int get_once(kiln_kube_config *cfg, kiln_err *err)
{
    kiln_kube_client_opts o = {.qps = -1, .timeout_ms = 10000};
    kiln_kube_client *c = NULL;
    assert_int_equal(kiln_kube_client_new_curl(&c, cfg, &o, err), 0);
    json_t *out = NULL;
    kiln_kube_ref ref = {"", "v1", "secrets", "ns", "s", NULL};
    int rc = kiln_kube_get(&out, c, &ref, err);
    if (!rc)
        assert_string_equal(kiln_json_get_string(out, "kind"), "Secret");
    json_decref(out);
    kiln_kube_client_free(c);
    return rc;
}

static void test_tls__ca_and_client_certificate_from_memory(void **state)
{
    pki ca = {0}, srv = {0}, cli = {0};
    make(&ca, "kiln-test-ca", NULL, NULL);
    make(&srv, "apiserver", &ca, "IP:127.0.0.1");
    make(&cli, "kiln-test-client", &ca, NULL);
    tls_server s = {0};
    tls_start(&s, &srv, &ca, 1);
    kiln_kube_config *cfg = config_for(s.port, &ca);
    cfg->cert_pem = kiln_xstrdup(cli.cert_pem);
    cfg->cert_len = strlen(cli.cert_pem);
    cfg->key_pem = kiln_xstrdup(cli.key_pem);
    cfg->key_len = strlen(cli.key_pem);
    cfg->token = kiln_xstrdup("t0k");
    kiln_err err = {0};
    assert_int_equal(get_once(cfg, &err), 0);
    tls_stop(&s);
    assert_int_equal(s.handshakes_ok, 1);
    assert_string_equal(s.client_cn, "kiln-test-client");
    assert_non_null(strstr(s.request, "GET /api/v1/namespaces/ns/secrets/s HTTP/"));
    assert_non_null(strstr(s.request, "\r\nAuthorization: Bearer t0k\r\n"));
    pki_free(&ca);
    pki_free(&srv);
    pki_free(&cli);
}

static void test_tls__unknown_server_ca_is_refused_unless_insecure(void **state)
{
    pki ca = {0}, other = {0}, srv = {0};
    make(&ca, "kiln-test-ca", NULL, NULL);
    make(&other, "someone-else", NULL, NULL);
    make(&srv, "apiserver", &ca, "IP:127.0.0.1");
    tls_server s = {0};
    tls_start(&s, &srv, NULL, 2);
    kiln_err err = {0};
    assert_int_equal(get_once(config_for(s.port, &other), &err), KILN_EIO);
    char prefix[128];
    snprintf(prefix, sizeof(prefix),
             "GET https://127.0.0.1:%d/api/v1/namespaces/ns/secrets/s: SSL certificate problem",
             s.port);
    assert_memory_equal(err.msg, prefix, strlen(prefix));
    kiln_kube_config *cfg = config_for(s.port, NULL);
    cfg->insecure = true;
    assert_int_equal(get_once(cfg, &err), 0);
    tls_stop(&s);
    assert_int_equal(s.handshakes_failed, 1);
    assert_int_equal(s.handshakes_ok, 1);
    pki_free(&ca);
    pki_free(&other);
    pki_free(&srv);
}

static void test_tls__tls_server_name_verifies_another_name(void **state)
{
    pki ca = {0}, srv = {0};
    make(&ca, "kiln-test-ca", NULL, NULL);
    make(&srv, "apiserver", &ca, "DNS:kubernetes.default.svc");
    tls_server s = {0};
    tls_start(&s, &srv, NULL, 2);
    kiln_err err = {0};
    /* The certificate does not name 127.0.0.1 ... */
    assert_int_equal(get_once(config_for(s.port, &ca), &err), KILN_EIO);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    /* ... but it names tls-server-name. */
    kiln_kube_config *cfg = config_for(s.port, &ca);
    cfg->tls_server_name = kiln_xstrdup("kubernetes.default.svc");
    assert_int_equal(get_once(cfg, &err), 0);
    tls_stop(&s);
    /* TLS 1.3 servers finish their side before the client rejects the
     * name, so both handshakes count; the request went to the right name. */
    assert_int_equal(s.handshakes_ok + s.handshakes_failed, 2);
    assert_non_null(strstr(s.request, "\r\nHost: kubernetes.default.svc:"));
    pki_free(&ca);
    pki_free(&srv);
}

/* The informer's stop must interrupt a quiet watch over a real connection. */
typedef struct canceller {
    atomic_int *flag;
} canceller;

static void *cancel_soon(void *arg)
{
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
    atomic_store(((canceller *)arg)->flag, 1);
    return NULL;
}

static int count_event(void *ctx, kiln_kube_event_type type, json_t *obj, kiln_err *err)
{
    (*(int *)ctx)++;
    return 0;
}

/* A client of the plain-HTTP loop server, without rate limiting. */
static kiln_kube_client *loop_client(const loop_server *srv)
{
    char url[64];
    kiln_kube_client_opts o = {.qps = -1};
    kiln_kube_client *c = NULL;
    kiln_err err = {0};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv->port);
    assert_int_equal(kiln_kube_client_new_curl(&c, kiln_kube_config_new(url), &o, &err), 0);
    return c;
}

static void test_tls__cancel_interrupts_a_quiet_watch(void **state)
{
    loop_server srv = {0};
    /* Headers and one event, then silence: the stream stays open. */
    const char *ev = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n";
    char *resp = kiln_xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n",
                                strlen(ev), ev);
    srv.owned[0] = resp;
    srv.responses[0] = resp;
    srv.nresponses = 1;
    srv.hold_ms = 5000;
    loop_start(&srv);
    kiln_kube_client *c = loop_client(&srv);
    kiln_err err = {0};
    atomic_int flag = 0;
    canceller cn = {&flag};
    pthread_t t;
    pthread_create(&t, NULL, cancel_soon, &cn);
    int events = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    kiln_kube_ref ref = {"", "v1", "pods", NULL, NULL, NULL};
    kiln_kube_watch_opts wo = {.resource_version = "1", .timeout_s = 60};
    assert_int_equal(kiln_kube_watch(c, &ref, &wo, count_event, &events, &flag, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    assert_int_equal(events, 1);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    assert_true(ms < 3000);
    kiln_kube_client_free(c);
    srv.hold_ms = 0;
    loop_stop(&srv);
}

static void test_tls__cancel_stops_a_pending_list(void **state)
{
    loop_server srv = {0};
    loop_add(&srv, "200 OK", NULL, "{\"kind\":\"PodList\",\"items\":[]}");
    srv.delay_ms = 5000;
    loop_start(&srv);
    kiln_kube_client *c = loop_client(&srv);
    kiln_err err = {0};
    atomic_int flag = 0;
    canceller cn = {&flag};
    pthread_t t;
    pthread_create(&t, NULL, cancel_soon, &cn);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    kiln_kube_ref ref = {"", "v1", "pods", NULL, NULL, NULL};
    kiln_kube_list_opts lo = {.cancel = &flag};
    json_t *list = NULL;
    assert_int_equal(kiln_kube_list(&list, c, &ref, &lo, &err), KILN_ETIMEOUT);
    assert_string_equal(err.msg, "GET /api/v1/pods?limit=500: cancelled");
    assert_null(list);
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    assert_true(ms < 3000);
    kiln_kube_client_free(c);
    srv.delay_ms = 0;
    loop_stop(&srv);
}

int main(void)
{
    /* The test's own server writes to clients that may have hung up. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls__ca_and_client_certificate_from_memory),
        cmocka_unit_test(test_tls__unknown_server_ca_is_refused_unless_insecure),
        cmocka_unit_test(test_tls__tls_server_name_verifies_another_name),
        cmocka_unit_test(test_tls__cancel_interrupts_a_quiet_watch),
        cmocka_unit_test(test_tls__cancel_stops_a_pending_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
