/* cli/cmd_controller.c: `kiln controller`, the controller as a process.
 *
 * Flags follow controller-runtime's names so Deployment manifests look
 * familiar. Logs are JSON lines on stderr by default. SIGTERM and SIGINT set
 * a flag the manager polls: it drains the work queue, stops the informers,
 * releases the Lease and frees everything before the process exits 0.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cmd_controller.h"
#include "cli/commands.h"
#include "controller/manager.h"
#include "core/log.h"
#include "kube/client.h"
#include "kube/config.h"

static atomic_int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, 1);
}

/* A DNS-1123 label, what the API server accepts as a namespace name:
 * lowercase alphanumerics and '-', alphanumeric at both ends, 1 to 63 bytes. */
static bool dns1123_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
            return false;
    return true;
}

/* Takes the value of --name VALUE or --name=VALUE at argv[*i]. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    *missing = false;
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int kiln_cmd_controller(int argc, char **argv)
{
    const char *kubeconfig = NULL, *context = NULL, *log_format = "json", *log_level = NULL;
    bool install_crds = false;
    /* controller-runtime disables the client-side limit and relies on API
     * priority and fairness; the work queue bounds the rate instead. */
    kiln_kube_client_opts co = {.qps = -1};
    kiln_manager_opts opts = {.workers = 4,
                              .metrics_addr = ":8080",
                              .health_addr = ":8081",
                              .leader_id = "kiln-controller"};
    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "controller");
        return KILN_EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        const char *arg = argv[i];
#define FLAG(name) ((v = flag_value(argc, argv, &i, name, &missing)) != NULL || missing)
        if (FLAG("--kubeconfig")) {
            kubeconfig = v;
        } else if (FLAG("--context")) {
            context = v;
        } else if (FLAG("--workers")) {
            char *end = NULL;
            long n = v ? strtol(v, &end, 10) : 0;
            if (!v || *end || n < 1 || n > 64)
                return kiln_cli_usage_error("controller", "--workers wants 1 to 64");
            opts.workers = (int)n;
        } else if (FLAG("--metrics-bind-address") || FLAG("--metrics-addr")) {
            opts.metrics_addr = v;
        } else if (FLAG("--health-probe-bind-address") || FLAG("--health-addr")) {
            opts.health_addr = v;
        } else if (FLAG("--qps")) {
            char *end = NULL;
            double q = v ? strtod(v, &end) : 0;
            if (!v || *end || q < 0 || q > 100000)
                return kiln_cli_usage_error("controller", "--qps wants 0 (no limit) to 100000");
            co.qps = q > 0 ? q : -1;
        } else if (FLAG("--burst")) {
            char *end = NULL;
            long n = v ? strtol(v, &end, 10) : 0;
            if (!v || *end || n < 1 || n > 100000)
                return kiln_cli_usage_error("controller", "--burst wants 1 to 100000");
            co.burst = (int)n;
        } else if (strcmp(arg, "--install-crds") == 0) {
            install_crds = true;
        } else if (strcmp(arg, "--leader-elect") == 0 || strcmp(arg, "--leader-elect=true") == 0) {
            opts.leader_elect = true;
        } else if (strcmp(arg, "--leader-elect=false") == 0) {
            opts.leader_elect = false;
        } else if (FLAG("--namespace")) {
            /* "" is every namespace, as controller-runtime reads an empty
             * WATCH_NAMESPACE, so a chart can template the flag unconditionally. */
            if (v && *v && !dns1123_label(v))
                return kiln_cli_usage_error("controller",
                                            "--namespace: \"%s\" is not a valid namespace name "
                                            "(a DNS-1123 label: at most 63 lowercase letters, "
                                            "digits and '-', starting and ending with a letter "
                                            "or digit)",
                                            v);
            opts.namespace = v;
        } else if (FLAG("--leader-election-namespace")) {
            opts.leader_namespace = v;
        } else if (FLAG("--leader-election-id")) {
            opts.leader_id = v;
        } else if (FLAG("--gpucheck-image")) {
            opts.gpucheck_image = v;
        } else if (FLAG("--log-format")) {
            log_format = v;
        } else if (FLAG("--log-level")) {
            log_level = v;
        } else {
            return kiln_cli_usage_error("controller", "unknown flag \"%s\"", arg);
        }
#undef FLAG
        if (missing)
            return kiln_cli_usage_error("controller", "flag %s needs a value", arg);
    }
    if (strcmp(log_format, "json") == 0)
        kiln_log_set_sink(kiln_log_sink_json, stderr);
    else if (strcmp(log_format, "text") == 0)
        kiln_log_set_sink(kiln_log_sink_text, stderr);
    else
        return kiln_cli_usage_error("controller", "--log-format wants json or text");
    /* A controller logs at info unless told otherwise; cli/main.c takes a
     * global --log-level out of argv and records it in kiln_cli_log_level. */
    if (!log_level && kiln_cli_log_level < 0)
        kiln_log_set_level(KILN_LOG_INFO);
    if (log_level) {
        int l = kiln_log_parse_level(log_level);
        if (l < 0)
            return kiln_cli_usage_error("controller", "unknown log level \"%s\"", log_level);
        kiln_log_set_level((kiln_log_level)l);
    }

    kiln_err err = {0};
    kiln_kube_config *cfg = NULL;
    kiln_kube_client *client = NULL;
    kiln_kube_load_opts lo = {.kubeconfig = kubeconfig, .context = context};
    if (kiln_kube_config_load(&cfg, &lo, &err) < 0) {
        KILN_LOG(KILN_LOG_ERROR, "loading the cluster config: %s", err.msg);
        fprintf(stderr, "kiln controller: %s\n", err.msg);
        return KILN_EXIT_FAIL;
    }
    if (kiln_kube_client_new_curl(&client, cfg, &co, &err) < 0) {
        fprintf(stderr, "kiln controller: %s\n", err.msg);
        return KILN_EXIT_FAIL;
    }
    if (install_crds && kiln_manager_install_crds(client, &err) < 0) {
        KILN_LOG(KILN_LOG_ERROR, "%s", err.msg);
        fprintf(stderr, "kiln controller: %s\n", err.msg);
        kiln_kube_client_free(client);
        return KILN_EXIT_FAIL;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = kiln_manager_run(client, &opts, &stop_flag, &err);
    kiln_kube_client_free(client);
    if (rc < 0) {
        KILN_LOG(KILN_LOG_ERROR, "controller stopped: %s", err.msg);
        fprintf(stderr, "kiln controller: %s\n", err.msg);
        return KILN_EXIT_FAIL;
    }
    KILN_LOG(KILN_LOG_INFO, "controller stopped cleanly");
    return KILN_EXIT_OK;
}
