/* cli/cmd_dev.c: `kiln dev`, the embedded dev cluster (devcluster/) with the
 * controller (controller/) running against it in the same process.
 *
 * The dev cluster owns the flags, the kubeconfig and the signals; this file
 * adds `--no-controller` and `--workers N`, starts the controller on a thread
 * once the server listens (through the kubeconfig it wrote, so TLS and the
 * token work as for any client), and stops it before the server goes away.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/log.h"
#ifdef KILN_HAVE_DEVCLUSTER
#include "devcluster/devcluster.h"
#endif
#ifdef KILN_HAVE_CONTROLLER
#include "controller/manager.h"
#include "kube/client.h"
#include "kube/config.h"
#endif

#if defined(KILN_HAVE_DEVCLUSTER) && defined(KILN_HAVE_CONTROLLER)
typedef struct dev_controller {
    int workers;
    kiln_kube_client *client;
    pthread_t thread;
    bool running;
    atomic_int stop;
    int rc;
    kiln_err err;
} dev_controller;

static void *controller_thread(void *arg)
{
    dev_controller *dc = arg;
    /* No /metrics or probe listeners: several dev clusters may run side by side. */
    kiln_manager_opts opts = {.workers = dc->workers};
    dc->rc = kiln_manager_run(dc->client, &opts, &dc->stop, &dc->err);
    if (dc->rc < 0)
        KILN_LOG(KILN_LOG_ERROR, "controller stopped: %s", dc->err.msg);
    return NULL;
}

static int controller_start(kiln_devcluster *cluster, const char *kubeconfig, void *userdata,
                            kiln_err *err)
{
    dev_controller *dc = userdata;
    kiln_kube_config *cfg = NULL;
    kiln_kube_load_opts lo = {.kubeconfig = kubeconfig};
    if (kiln_kube_config_load(&cfg, &lo, err) < 0)
        return err->code;
    kiln_kube_client_opts co = {.qps = -1};
    if (kiln_kube_client_new_curl(&dc->client, cfg, &co, err) < 0)
        return err->code;
    if (kiln_manager_install_crds(dc->client, err) < 0) {
        kiln_kube_client_free(dc->client);
        dc->client = NULL;
        return err->code;
    }
    if (pthread_create(&dc->thread, NULL, controller_thread, dc) != 0) {
        kiln_kube_client_free(dc->client);
        dc->client = NULL;
        return kiln_err_set(err, KILN_EIO, "cannot start the controller thread");
    }
    dc->running = true;
    printf("controller running with %d workers\n"
           "point kubectl at it: export KUBECONFIG=%s\n",
           dc->workers, kubeconfig);
    fflush(stdout);
    return 0;
}

static void controller_stop(void *userdata)
{
    dev_controller *dc = userdata;
    if (!dc->running)
        return;
    atomic_store(&dc->stop, 1);
    pthread_join(dc->thread, NULL);
    kiln_kube_client_free(dc->client);
    dc->client = NULL;
    dc->running = false;
}

/* Takes --no-controller and --workers N out of argv (the dev cluster's parser
 * rejects flags it does not know). Returns the new argc, or -1 on a bad value. */
static int take_controller_flags(int argc, char **argv, bool *enabled, int *workers)
{
    int out = 0;
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], "--no-controller") == 0) {
            *enabled = false;
            continue;
        }
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            value = argv[++i];
        else if (strncmp(argv[i], "--workers=", 10) == 0)
            value = argv[i] + 10;
        if (!value) {
            argv[out++] = argv[i];
            continue;
        }
        char *end = NULL;
        long n = strtol(value, &end, 10);
        if (!*value || *end || n < 1 || n > 64) {
            fprintf(stderr, "kiln dev: --workers wants 1 to 64, got \"%s\"\n", value);
            return -1;
        }
        *workers = (int)n;
    }
    argv[out] = NULL;
    return out;
}
#endif

int kiln_cmd_dev(int argc, char **argv)
{
#if defined(KILN_HAVE_DEVCLUSTER) && defined(KILN_HAVE_CONTROLLER)
    if (kiln_cli_wants_help(argc, argv)) {
        int rc = kiln_devcluster_main(argc, argv);
        fputs("  --no-controller       run the dev cluster alone\n"
              "  --workers N           controller workers (default 2)\n",
              stdout);
        return rc;
    }
    bool enabled = true;
    dev_controller dc = {.workers = 2};
    argc = take_controller_flags(argc, argv, &enabled, &dc.workers);
    if (argc < 0)
        return KILN_EXIT_USAGE;
    /* Hand the global --log-level (cli/main.c took it out of argv) to the dev
     * cluster's own parser, which otherwise logs every request at info. */
    char level_flag[32];
    char *args[argc + 2];
    memcpy(args, argv, sizeof(char *) * (size_t)argc);
    if (kiln_cli_log_level >= 0) {
        snprintf(level_flag, sizeof(level_flag), "--log-level=%s",
                 kiln_log_level_name((kiln_log_level)kiln_cli_log_level));
        args[argc++] = level_flag;
    }
    args[argc] = NULL;
    argv = args;
    if (!enabled)
        return kiln_devcluster_main(argc, argv);
    kiln_devcluster_hooks hooks = {
        .started = controller_start, .stopping = controller_stop, .userdata = &dc};
    int rc = kiln_devcluster_main_hooked(argc, argv, &hooks);
    controller_stop(&dc);
    return rc;
#elif defined(KILN_HAVE_DEVCLUSTER)
    return kiln_devcluster_main(argc, argv);
#else
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln dev: this kiln was built without the dev cluster\n");
    return KILN_EXIT_USAGE;
#endif
}
