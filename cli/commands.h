/* cli/commands.h: the kiln subcommands. Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit status. */
#ifndef KILN_CLI_COMMANDS_H
#define KILN_CLI_COMMANDS_H

int kiln_cmd_render(int argc, char **argv);
int kiln_cmd_graph(int argc, char **argv);
int kiln_cmd_lint(int argc, char **argv);
int kiln_cmd_crd(int argc, char **argv);
int kiln_cmd_version(int argc, char **argv);
int kiln_cmd_help(int argc, char **argv);
int kiln_cmd_dev(int argc, char **argv);

#endif
