#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>

#include "core/json.h"
#include "kube/config.h"
#include "tests/kube/fake.h"

static char tmpdir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-kube-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    return 0;
}

static int teardown(void **state)
{
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Writes text to tmpdir/name (folders created); returns the new path. */
static char *write_file(const char *name, const char *text, int mode)
{
    char *path = kiln_xasprintf("%s/%s", tmpdir, name);
    for (char *p = path + strlen(tmpdir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
    return path;
}

static char *read_text(const char *name)
{
    char *path = kiln_xasprintf("%s/%s", tmpdir, name);
    kiln_buf b;
    kiln_buf_init(&b, 0);
    kiln_err err = {0};
    if (kiln_buf_read_file(&b, path, &err) != 0) {
        kiln_xfree(path);
        return NULL;
    }
    kiln_xfree(path);
    return kiln_buf_steal(&b);
}

static const char *token_of(kiln_kube_config *cfg, kiln_kube_credentials *cr)
{
    kiln_err err = {0};
    kiln_kube_credentials_clear(cr);
    int rc = kiln_kube_config_credentials(cr, cfg, &err);
    if (rc) {
        fprintf(stderr, "credentials: %s\n", err.msg);
        return NULL;
    }
    return cr->token;
}

/* ------------------------------------------------------------------------ */

static const char *file_one = "apiVersion: v1\n"
                              "kind: Config\n"
                              "current-context: ctx-a\n"
                              "contexts:\n"
                              "- name: ctx-a\n"
                              "  context: {cluster: c1, user: u1, namespace: team-a}\n"
                              "clusters:\n"
                              "- name: c1\n"
                              "  cluster: {server: 'https://one.example:6443/'}\n"
                              "users:\n"
                              "- name: u1\n"
                              "  user: {token: tok-one}\n";

static const char *file_two = "apiVersion: v1\n"
                              "kind: Config\n"
                              "current-context: ctx-b\n"
                              "contexts:\n"
                              "- name: ctx-a\n"
                              "  context: {cluster: c2, user: u2}\n"
                              "- name: ctx-b\n"
                              "  context: {cluster: c2, user: u1}\n"
                              "clusters:\n"
                              "- name: c1\n"
                              "  cluster: {server: 'https://two.example'}\n"
                              "- name: c2\n"
                              "  cluster: {server: 'http://two-only.example:8080'}\n"
                              "users:\n"
                              "- name: u1\n"
                              "  user: {token: tok-two}\n";

static void test_config__kubeconfig_list_first_file_wins(void **state)
{
    char *one = write_file("one/config", file_one, 0600);
    char *two = write_file("two/config", file_two, 0600);
    char *missing = kiln_xasprintf("%s/nope/config", tmpdir);
    char *list = kiln_xasprintf("%s:%s:%s:%s", missing, one, two, one);
    kiln_kube_config *cfg = NULL;
    kiln_kube_credentials cr = {0};
    kiln_err err = {0};

    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, list, NULL, &err), 0);
    assert_string_equal(cfg->context, "ctx-a");
    assert_string_equal(cfg->server, "https://one.example:6443");
    assert_string_equal(cfg->namespace, "team-a");
    assert_string_equal(token_of(cfg, &cr), "tok-one");
    kiln_kube_config_free(cfg);

    /* --context picks a context only the second file has; its user u1 still
     * comes from the first file, which defines u1 first. */
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, list, "ctx-b", &err), 0);
    assert_string_equal(cfg->server, "http://two-only.example:8080");
    assert_string_equal(cfg->namespace, "default");
    assert_string_equal(token_of(cfg, &cr), "tok-one");
    kiln_kube_config_free(cfg);

    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, list, "ctx-z", &err), KILN_ENOTFOUND);
    char *msg = kiln_xasprintf("context \"ctx-z\" not found in kubeconfig %s", one);
    assert_string_equal(err.msg, msg);
    assert_null(cfg);

    /* KUBECONFIG is honoured by kiln_kube_config_load; an explicit path wins. */
    setenv("KUBECONFIG", list, 1);
    kiln_kube_load_opts lo = {0};
    assert_int_equal(kiln_kube_config_load(&cfg, &lo, &err), 0);
    assert_string_equal(cfg->context, "ctx-a");
    kiln_kube_config_free(cfg);
    lo.kubeconfig = two;
    assert_int_equal(kiln_kube_config_load(&cfg, &lo, &err), 0);
    assert_string_equal(cfg->context, "ctx-b");
    assert_string_equal(cfg->source + strlen("kubeconfig "), two);
    kiln_kube_config_free(cfg);
    unsetenv("KUBECONFIG");

    kiln_kube_credentials_clear(&cr);
    kiln_xfree(msg);
    kiln_xfree(one);
    kiln_xfree(two);
    kiln_xfree(missing);
    kiln_xfree(list);
}

static void test_config__data_blobs_are_decoded_in_memory(void **state)
{
    /* base64 of "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n" etc. */
    const char *text =
        "current-context: c\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters:\n"
        "- name: k\n"
        "  cluster:\n"
        "    server: https://k8s.test\n"
        "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5E\n"
        "      IENFUlRJRklDQVRFLS0tLS0K\n"
        "users:\n"
        "- name: u\n"
        "  user:\n"
        "    client-certificate-data: Q0VSVA==\n"
        "    client-key-data: S0VZIQ\n";
    char *path = write_file("blobs/config", text, 0600);
    kiln_kube_config *cfg = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), 0);
    assert_string_equal(cfg->ca_pem,
                        "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n");
    assert_int_equal(cfg->ca_len, strlen(cfg->ca_pem));
    assert_string_equal(cfg->cert_pem, "CERT");
    assert_int_equal(cfg->cert_len, 4);
    assert_string_equal(cfg->key_pem, "KEY!");
    assert_false(cfg->insecure);
    kiln_kube_credentials cr = {0};
    assert_int_equal(kiln_kube_config_credentials(&cr, cfg, &err), 0);
    assert_null(cr.token);
    assert_string_equal(cr.cert_pem, "CERT");
    assert_string_equal(cr.key_pem, "KEY!");
    kiln_kube_credentials_clear(&cr);
    kiln_kube_config_free(cfg);
    kiln_xfree(path);

    path = write_file("bad/config",
                      "current-context: c\n"
                      "contexts: [{name: c, context: {cluster: k}}]\n"
                      "clusters: [{name: k, cluster: {server: 'https://x', "
                      "certificate-authority-data: 'not*base64'}}]\n",
                      0600);
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), KILN_EINVAL);
    char *msg = kiln_xasprintf("%s: clusters[name=k].cluster.certificate-authority-data: invalid "
                               "base64 at offset 3",
                               path);
    assert_string_equal(err.msg, msg);
    kiln_xfree(msg);
    kiln_xfree(path);
}

static void test_config__relative_paths_resolve_against_the_file(void **state)
{
    char *ca = write_file("rel/pki/ca.crt", "CA-PEM", 0600);
    char *tok = write_file("rel/token", "  file-token\n", 0600);
    char *path = write_file("rel/config",
                            "current-context: c\n"
                            "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                            "clusters: [{name: k, cluster: {server: 'https://x', "
                            "certificate-authority: pki/ca.crt}}]\n"
                            "users: [{name: u, user: {tokenFile: token}}]\n",
                            0600);
    kiln_kube_config *cfg = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), 0);
    assert_string_equal(cfg->ca_pem, "CA-PEM");
    assert_string_equal(cfg->token_file, tok);
    kiln_kube_credentials cr = {0};
    assert_string_equal(token_of(cfg, &cr), "file-token");
    kiln_kube_credentials_clear(&cr);
    kiln_kube_config_free(cfg);

    char *bad = write_file("rel2/config",
                           "current-context: c\n"
                           "contexts: [{name: c, context: {cluster: k}}]\n"
                           "clusters: [{name: k, cluster: {server: 'https://x', "
                           "certificate-authority: missing.crt}}]\n",
                           0600);
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, bad, NULL, &err), KILN_EIO);
    char *msg = kiln_xasprintf("%s: clusters[name=k].cluster.certificate-authority: %s/rel2/"
                               "missing.crt: No such file or directory",
                               bad, tmpdir);
    assert_string_equal(err.msg, msg);
    kiln_xfree(msg);
    kiln_xfree(bad);
    kiln_xfree(ca);
    kiln_xfree(tok);
    kiln_xfree(path);
}

static void test_config__field_errors_name_file_and_field(void **state)
{
    struct {
        const char *text;
        const char *suffix;
    } cases[] = {
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://x', insecure-skip-tls-verify: true, "
         "certificate-authority-data: Q0E=}}]\n",
         "clusters[name=k].cluster: specifying a root certificates file with the insecure flag "
         "is not allowed"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: 42}}]\n",
         "clusters[name=k].cluster.server: expected a string, got integer"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: 'ftp://x'}}]\n",
         "clusters[name=k].cluster.server: \"ftp://x\" is not an http(s) URL"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
         "users: [{name: u, user: {client-certificate-data: Q0E=}}]\n",
         "users[name=u].user: client-certificate and client-key must be given together"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
         "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, "
         "command: x}}}]\n",
         "users[name=u].user.exec.interactiveMode: required for client.authentication.k8s.io/v1"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
         "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, "
         "command: x}}}]\n",
         "users[name=u].user.exec.apiVersion: \"client.authentication.k8s.io/v1alpha1\" is not "
         "supported (use client.authentication.k8s.io/v1 or v1beta1)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "errs/%zu", i);
        char *path = write_file(name, cases[i].text, 0600);
        kiln_kube_config *cfg = NULL;
        kiln_err err = {0};
        assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), KILN_EINVAL);
        char *msg = kiln_xasprintf("%s: %s", path, cases[i].suffix);
        assert_string_equal(err.msg, msg);
        assert_null(cfg);
        kiln_xfree(msg);
        kiln_xfree(path);
    }
}

static void test_config__token_file_reread_after_a_minute_and_401(void **state)
{
    fake_clock clk = {.now_ms = 1000};
    char *tok = write_file("tf/token", "first\n", 0600);
    kiln_kube_config *cfg = kiln_kube_config_new("https://x");
    cfg->token_file = kiln_xstrdup(tok);
    cfg->clock = fake_clock_ops(&clk);
    kiln_kube_credentials cr = {0};
    assert_string_equal(token_of(cfg, &cr), "first");
    kiln_xfree(write_file("tf/token", "second\n", 0600));
    clk.now_ms += 10000;
    assert_string_equal(token_of(cfg, &cr), "first");
    clk.now_ms += 40000; /* 50 s after the read: client-go's period less leeway */
    assert_string_equal(token_of(cfg, &cr), "second");
    kiln_xfree(write_file("tf/token", "third\n", 0600));
    /* A 401 for a request started before the last read drops the copy. */
    assert_false(kiln_kube_config_invalidate(cfg, clk.now_ms - 1));
    assert_string_equal(token_of(cfg, &cr), "second");
    assert_true(kiln_kube_config_invalidate(cfg, clk.now_ms));
    assert_string_equal(token_of(cfg, &cr), "third");
    /* A vanished file keeps the last good token (kubelet swaps it atomically). */
    remove(tok);
    clk.now_ms += 60000;
    assert_string_equal(token_of(cfg, &cr), "third");
    kiln_kube_credentials_clear(&cr);
    kiln_kube_config_free(cfg);
    kiln_xfree(tok);
}

static const char *plugin =
    "#!/bin/sh\n"
    "dir=$(dirname \"$0\")\n"
    "echo run >> \"$dir/runs\"\n"
    "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > \"$dir/info\"\n"
    "if [ \"$FAIL\" = 1 ]; then echo boom >&2; exit 3; fi\n"
    "n=$(wc -l < \"$dir/runs\" | tr -d ' ')\n"
    "printf "
    "'{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%%s-%%s-%%s\","
    "\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}' \"$1\" \"$PLUGIN_ENV\" \"$n\"\n";

static kiln_kube_config *exec_config(const char *api, const char *extra)
{
    char *script_text = kiln_xasprintf(plugin, api);
    kiln_xfree(write_file("exec/bin/plugin.sh", script_text, 0755));
    kiln_xfree(script_text);
    char *text = kiln_xasprintf("current-context: c\n"
                                "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                                "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
                                "users:\n"
                                "- name: u\n"
                                "  user:\n"
                                "    exec:\n"
                                "      apiVersion: client.authentication.k8s.io/v1\n"
                                "      command: ./bin/plugin.sh\n"
                                "      args: [arg1]\n"
                                "      env: [{name: PLUGIN_ENV, value: from-env}%s]\n"
                                "      interactiveMode: Never\n",
                                extra);
    char *path = write_file("exec/config", text, 0600);
    kiln_kube_config *cfg = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), 0);
    kiln_xfree(text);
    kiln_xfree(path);
    return cfg;
}

static void test_config__exec_plugin_runs_caches_until_expiry_and_401(void **state)
{
    fake_clock clk = {.now_ms = 0, .wall_s = 1767225600 /* 2026-01-01 */};
    kiln_kube_config *cfg = exec_config("client.authentication.k8s.io/v1", "");
    cfg->clock = fake_clock_ops(&clk);
    kiln_kube_credentials cr = {0};
    assert_string_equal(token_of(cfg, &cr), "arg1-from-env-1");
    char *info = read_text("exec/bin/info");
    assert_string_equal(info, "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client."
                              "authentication.k8s.io/v1\",\"spec\":{\"interactive\":false}}");
    kiln_xfree(info);
    assert_string_equal(token_of(cfg, &cr), "arg1-from-env-1");
    /* 2030-01-01T00:00:00Z is 1893456000: at that second it has expired. */
    clk.wall_s = 1893456000;
    assert_string_equal(token_of(cfg, &cr), "arg1-from-env-2");
    clk.now_ms = 10;
    assert_true(kiln_kube_config_invalidate(cfg, 10));
    assert_string_equal(token_of(cfg, &cr), "arg1-from-env-3");
    char *runs = read_text("exec/bin/runs");
    assert_string_equal(runs, "run\nrun\nrun\n");
    kiln_xfree(runs);
    kiln_kube_credentials_clear(&cr);
    kiln_kube_config_free(cfg);
}

static void test_config__exec_plugin_failures_are_reported(void **state)
{
    kiln_kube_config *cfg = exec_config("client.authentication.k8s.io/v1beta1", "");
    kiln_kube_credentials cr = {0};
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_credentials(&cr, cfg, &err), KILN_EINVAL);
    char *msg = kiln_xasprintf("exec plugin \"%s/exec/./bin/plugin.sh\": output apiVersion "
                               "\"client.authentication.k8s.io/v1beta1\" does not match "
                               "\"client.authentication.k8s.io/v1\"",
                               tmpdir);
    assert_string_equal(err.msg, msg);
    kiln_xfree(msg);
    kiln_kube_config_free(cfg);

    /* A plugin that never answers is killed at its deadline. */
    kiln_xfree(write_file("slow/plugin.sh", "#!/bin/sh\nexec sleep 30\n", 0755));
    char *slow = kiln_xasprintf("%s/slow/plugin.sh", tmpdir);
    cfg = kiln_kube_config_new("https://x");
    cfg->exec = kiln_xcalloc(1, sizeof(*cfg->exec));
    cfg->exec->api_version = kiln_xstrdup("client.authentication.k8s.io/v1");
    cfg->exec->command = kiln_xstrdup(slow);
    cfg->exec->argv = kiln_xcalloc(2, sizeof(char *));
    cfg->exec->argv[0] = kiln_xstrdup(slow);
    cfg->exec->env = kiln_xcalloc(1, sizeof(char *));
    cfg->exec->timeout_ms = 200;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(kiln_kube_config_credentials(&cr, cfg, &err), KILN_ETIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    msg = kiln_xasprintf("exec plugin \"%s\": no answer within 200 ms", slow);
    assert_string_equal(err.msg, msg);
    assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 5000);
    kiln_xfree(msg);
    kiln_xfree(slow);
    kiln_kube_config_free(cfg);

    cfg = exec_config("client.authentication.k8s.io/v1", ", {name: FAIL, value: '1'}");
    assert_int_equal(kiln_kube_config_credentials(&cr, cfg, &err), KILN_EIO);
    msg = kiln_xasprintf("exec plugin \"%s/exec/./bin/plugin.sh\": exited with status 3", tmpdir);
    assert_string_equal(err.msg, msg);
    assert_null(cr.token);
    kiln_xfree(msg);
    kiln_kube_config_free(cfg);
}

static void test_config__exec_plugin_client_certificate_and_cluster_info(void **state)
{
    kiln_xfree(write_file("certexec/plugin.sh",
                          "#!/bin/sh\n"
                          "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$(dirname \"$0\")/info\"\n"
                          "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
                          "\"ExecCredential\",\"status\":{\"clientCertificateData\":\"CERT-PEM\","
                          "\"clientKeyData\":\"KEY-PEM\"}}'\n",
                          0755));
    char *path = write_file("certexec/config",
                            "current-context: c\n"
                            "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                            "clusters: [{name: k, cluster: {server: 'https://k8s.test:6443', "
                            "certificate-authority-data: Q0E=}}]\n"
                            "users: [{name: u, user: {exec: {apiVersion: "
                            "client.authentication.k8s.io/v1beta1, command: ./plugin.sh, "
                            "provideClusterInfo: true}}}]\n",
                            0600);
    kiln_kube_config *cfg = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), 0);
    kiln_kube_credentials cr = {0};
    assert_int_equal(kiln_kube_config_credentials(&cr, cfg, &err), 0);
    assert_null(cr.token);
    assert_string_equal(cr.cert_pem, "CERT-PEM");
    assert_int_equal(cr.cert_len, 8);
    assert_string_equal(cr.key_pem, "KEY-PEM");
    char *info = read_text("certexec/info");
    json_t *j = json_loads(info, 0, NULL);
    assert_non_null(j);
    assert_string_equal(kiln_json_get_string(j, "spec.cluster.server"), "https://k8s.test:6443");
    assert_string_equal(kiln_json_get_string(j, "spec.cluster.certificate-authority-data"), "Q0E=");
    assert_string_equal(kiln_json_get_string(j, "apiVersion"),
                        "client.authentication.k8s.io/v1beta1");
    json_decref(j);
    kiln_xfree(info);
    kiln_kube_credentials_clear(&cr);
    kiln_kube_config_free(cfg);
    kiln_xfree(path);
}

static void test_config__home_kubeconfig_is_the_last_resort(void **state)
{
    char *path = write_file("home/.kube/config", file_one, 0600);
    char *home = kiln_xasprintf("%s/home", tmpdir);
    char *old = getenv("HOME") ? kiln_xstrdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    kiln_kube_config *cfg = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_load(&cfg, NULL, &err), 0);
    assert_string_equal(cfg->server, "https://one.example:6443");
    kiln_kube_config_free(cfg);
    kiln_kube_load_opts lo = {.context = "nope"};
    assert_int_equal(kiln_kube_config_load(&cfg, &lo, &err), KILN_ENOTFOUND);
    char *msg = kiln_xasprintf("context \"nope\" not found in kubeconfig %s", path);
    assert_string_equal(err.msg, msg);
    if (old)
        setenv("HOME", old, 1);
    kiln_xfree(old);
    kiln_xfree(msg);
    kiln_xfree(home);
    kiln_xfree(path);
}

static void test_config__in_cluster_reads_service_account(void **state)
{
    kiln_xfree(
        write_file("pod/var/run/secrets/kubernetes.io/serviceaccount/token", "sa-tok\n", 0600));
    kiln_xfree(write_file("pod/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "CA!", 0600));
    kiln_xfree(write_file("pod/var/run/secrets/kubernetes.io/serviceaccount/namespace",
                          "kiln-system\n", 0600));
    char *root = kiln_xasprintf("%s/pod", tmpdir);
    kiln_kube_config *cfg = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_in_cluster(&cfg, root, &err), KILN_ENOTFOUND);
    assert_string_equal(err.msg, "not running in a cluster: KUBERNETES_SERVICE_HOST and "
                                 "KUBERNETES_SERVICE_PORT must be set");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    kiln_kube_load_opts lo = {.in_cluster_root = root};
    assert_int_equal(kiln_kube_config_load(&cfg, &lo, &err), 0);
    assert_string_equal(cfg->server, "https://10.96.0.1:443");
    assert_string_equal(cfg->namespace, "kiln-system");
    assert_string_equal(cfg->ca_pem, "CA!");
    assert_string_equal(cfg->source, "in-cluster");
    kiln_kube_credentials cr = {0};
    assert_string_equal(token_of(cfg, &cr), "sa-tok");
    kiln_kube_credentials_clear(&cr);
    kiln_kube_config_free(cfg);

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_int_equal(kiln_kube_config_in_cluster(&cfg, root, &err), 0);
    assert_string_equal(cfg->server, "https://[fd00::1]:443");
    kiln_kube_config_free(cfg);

    char *tokpath = kiln_xasprintf("%s/var/run/secrets/kubernetes.io/serviceaccount/token", root);
    remove(tokpath);
    assert_int_equal(kiln_kube_config_in_cluster(&cfg, root, &err), KILN_EIO);
    char *msg = kiln_xasprintf("%s: No such file or directory", tokpath);
    assert_string_equal(err.msg, msg);
    kiln_xfree(msg);
    kiln_xfree(tokpath);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    kiln_xfree(root);
}

static void test_config__client_reauths_once_after_401(void **state)
{
    fake_clock clk = {.now_ms = 1000};
    char *tok = write_file("re/token", "old", 0600);
    kiln_kube_config *cfg = kiln_kube_config_new("https://k8s.test");
    cfg->token_file = kiln_xstrdup(tok);
    cfg->clock = fake_clock_ops(&clk);
    kiln_kube_client_opts o = {.qps = -1, .clock = fake_clock_ops(&clk)};
    fake *f;
    kiln_kube_client *c = fake_client(&f, cfg, &o);
    const char *unauth = "{\"kind\":\"Status\",\"message\":\"Unauthorized\",\"reason\":"
                         "\"Unauthorized\",\"code\":401}";
    fake_push(f, 200, "{}");
    fake_push(f, 401, unauth);
    fake_push(f, 200, "{\"kind\":\"Pod\"}");
    fake_push(f, 401, unauth);
    fake_push(f, 401, unauth);
    kiln_kube_ref ref = {"", "v1", "pods", "ns", "p", NULL};
    json_t *out = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), 0);
    json_decref(out);
    kiln_xfree(write_file("re/token", "new", 0600));
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), 0);
    assert_string_equal(kiln_json_get_string(out, "kind"), "Pod");
    json_decref(out);
    assert_string_equal(f->reqs[0].token, "old");
    assert_string_equal(f->reqs[1].token, "old");
    assert_string_equal(f->reqs[2].token, "new");
    /* Still 401 with a fresh token: one retry only, then the error. */
    clk.now_ms += 1;
    assert_int_equal(kiln_kube_get(&out, c, &ref, &err), KILN_EIO);
    assert_string_equal(err.msg, "Unauthorized");
    assert_string_equal(kiln_kube_last_status()->reason, "Unauthorized");
    assert_int_equal(f->nreqs, 5);
    kiln_kube_client_free(c);
    kiln_xfree(tok);
}

static void test_config__impersonation_headers(void **state)
{
    char *path = write_file("imp/config",
                            "current-context: c\n"
                            "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                            "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
                            "users:\n"
                            "- name: u\n"
                            "  user:\n"
                            "    token: t\n"
                            "    as: jane\n"
                            "    as-uid: '42'\n"
                            "    as-groups: [devs, 'system:authenticated']\n"
                            "    as-user-extra: {scopes.example.com/team: [a, b]}\n",
                            0600);
    kiln_kube_config *cfg = NULL;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), 0);
    const char *want[] = {"Impersonate-User: jane",
                          "Impersonate-Uid: 42",
                          "Impersonate-Group: devs",
                          "Impersonate-Group: system:authenticated",
                          "Impersonate-Extra-scopes.example.com%2Fteam: a",
                          "Impersonate-Extra-scopes.example.com%2Fteam: b",
                          NULL};
    for (size_t i = 0; want[i]; i++)
        assert_string_equal(cfg->impersonate[i], want[i]);
    assert_null(cfg->impersonate[6]);
    kiln_kube_config_free(cfg);
    kiln_xfree(path);

    path = write_file("imp2/config",
                      "current-context: c\n"
                      "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                      "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
                      "users: [{name: u, user: {as-groups: [devs]}}]\n",
                      0600);
    assert_int_equal(kiln_kube_config_from_kubeconfig(&cfg, path, NULL, &err), KILN_EINVAL);
    char *msg = kiln_xasprintf("%s: users[name=u].user.as: required when impersonating", path);
    assert_string_equal(err.msg, msg);
    kiln_xfree(msg);
    kiln_xfree(path);
}

static void test_config__base64(void **state)
{
    char *out = NULL;
    size_t n = 0;
    kiln_err err = {0};
    assert_int_equal(kiln_kube_base64_decode(&out, &n, "aGVsbG8=", 8, &err), 0);
    assert_string_equal(out, "hello");
    assert_int_equal(n, 5);
    kiln_xfree(out);
    assert_int_equal(kiln_kube_base64_decode(&out, &n, "aGVs\nbG8", 8, &err), 0);
    assert_string_equal(out, "hello");
    kiln_xfree(out);
    assert_int_equal(kiln_kube_base64_decode(&out, &n, "aGVsb", 5, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "invalid base64: truncated input");
    assert_null(out);
    assert_int_equal(kiln_kube_base64_decode(&out, &n, "aG=Vs", 5, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "invalid base64 at offset 3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config__kubeconfig_list_first_file_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config__data_blobs_are_decoded_in_memory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config__relative_paths_resolve_against_the_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config__field_errors_name_file_and_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config__token_file_reread_after_a_minute_and_401,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_config__exec_plugin_runs_caches_until_expiry_and_401,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_config__exec_plugin_failures_are_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_config__exec_plugin_client_certificate_and_cluster_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config__home_kubeconfig_is_the_last_resort, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config__in_cluster_reads_service_account, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config__client_reauths_once_after_401, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config__impersonation_headers, setup, teardown),
        cmocka_unit_test(test_config__base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
