/* cli/commands.h: the kiln subcommands. Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit status. */
#ifndef KILN_CLI_COMMANDS_H
#define KILN_CLI_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

int kiln_cmd_render(int argc, char **argv);
int kiln_cmd_graph(int argc, char **argv);
int kiln_cmd_lint(int argc, char **argv);
int kiln_cmd_crd(int argc, char **argv);
int kiln_cmd_version(int argc, char **argv);
int kiln_cmd_help(int argc, char **argv);
int kiln_cmd_dev(int argc, char **argv);
int kiln_cmd_controller(int argc, char **argv);
int kiln_cmd_recipe(int argc, char **argv);

/* The level given with the global --log-level, or -1 when none was given
 * (commands that run servers then choose their own default). */
extern int kiln_cli_log_level;

/* Exit statuses every command uses (docs/cli.md). */
enum {
    KILN_EXIT_OK = 0,
    KILN_EXIT_FAIL = 1,  /* the input is invalid or rendering failed */
    KILN_EXIT_USAGE = 2, /* unknown command or flag, missing argument */
};

/* Prints the full help of cmd (NULL: the overview of every command) to f.
 * Returns false when cmd is not a command kiln knows. */
bool kiln_cli_help(FILE *f, const char *cmd);

/* Reports a usage error for cmd on stderr: "kiln <cmd>: <message>", then the
 * command's usage lines and a pointer to `kiln help <cmd>`. Returns
 * KILN_EXIT_USAGE so callers can `return kiln_cli_usage_error(...)`. */
int kiln_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True when argv holds -h or --help before any "--"; commands print their help
 * on stdout and exit 0 then. */
bool kiln_cli_wants_help(int argc, char **argv);

#endif
