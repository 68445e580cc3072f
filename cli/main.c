/* cli/main.c: the kiln command: global flags and dispatch to a subcommand.
 *
 * `--log-level LEVEL` is global and may appear anywhere before "--"; it is
 * taken out of argv before the subcommand parses its own flags, so
 * `kiln --log-level debug render ...` and `kiln render ... --log-level debug`
 * mean the same. Logs go to stderr through the text sink, never to stdout,
 * which belongs to the command's output.
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/log.h"

#ifndef KILN_HAVE_DEVCLUSTER
/* This build has no dev cluster library (cli/CMakeLists.txt leaves cmd_dev.c
 * out); say so instead of failing to link. */
int kiln_cmd_dev(int argc, char **argv)
{
    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "dev");
        return KILN_EXIT_OK;
    }
    fputs("kiln dev: this build has no dev cluster (the devcluster library was not built)\n",
          stderr);
    return KILN_EXIT_USAGE;
}
#endif

#if !defined(KILN_HAVE_CONTROLLER) || !defined(KILN_HAVE_RECIPES)
/* The same for the controller and the recipe catalog, which are separate
 * libraries a partial build may lack. */
static int not_built(const char *cmd, int argc, char **argv)
{
    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, cmd);
        return KILN_EXIT_OK;
    }
    fprintf(stderr, "kiln %s: this build does not include it\n", cmd);
    return KILN_EXIT_USAGE;
}
#endif

#ifndef KILN_HAVE_CONTROLLER
int kiln_cmd_controller(int argc, char **argv)
{
    return not_built("controller", argc, argv);
}
#endif

#ifndef KILN_HAVE_RECIPES
int kiln_cmd_recipe(int argc, char **argv)
{
    return not_built("recipe", argc, argv);
}
#endif

int kiln_cli_log_level = -1;

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"render", kiln_cmd_render},
    {"graph", kiln_cmd_graph},
    {"lint", kiln_cmd_lint},
    {"crd", kiln_cmd_crd},
    {"dev", kiln_cmd_dev},
    {"version", kiln_cmd_version},
    {"controller", kiln_cmd_controller},
    {"recipe", kiln_cmd_recipe},
    {"help", kiln_cmd_help},
};

/* Removes every --log-level flag (and its value) from argv, applying the last
 * one. Returns the new argc, or -1 after printing a usage error. */
static int take_log_level(int argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], "--log-level") == 0) {
            if (i + 1 >= argc) {
                kiln_cli_usage_error(NULL, "flag --log-level needs a value");
                return -1;
            }
            value = argv[++i];
        } else if (strncmp(argv[i], "--log-level=", 12) == 0) {
            value = argv[i] + 12;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        int level = kiln_log_parse_level(value);
        if (level < 0) {
            kiln_cli_usage_error(
                NULL, "unknown log level \"%s\" (want debug, info, warn, error or off)", value);
            return -1;
        }
        kiln_log_set_level((kiln_log_level)level);
        kiln_cli_log_level = level;
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    kiln_log_set_sink(kiln_log_sink_text, stderr);
    kiln_log_set_level(KILN_LOG_WARN);
    argc = take_log_level(argc, argv);
    if (argc < 0)
        return KILN_EXIT_USAGE;
    if (argc < 2) {
        kiln_cli_help(stderr, NULL);
        return KILN_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        kiln_cli_help(stdout, NULL);
        return KILN_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0)
        return kiln_cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (name[0] == '-')
        return kiln_cli_usage_error(NULL, "unknown flag \"%s\"", name);
    return kiln_cli_usage_error(NULL, "unknown command \"%s\"", name);
}
