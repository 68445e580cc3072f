/* cli/cmd_controller.h: `kiln controller`, the reconciling controller. */
#ifndef KILN_CLI_CMD_CONTROLLER_H
#define KILN_CLI_CMD_CONTROLLER_H

/* argv[0] is "controller". Returns the process exit status. */
int kiln_cmd_controller(int argc, char **argv);

#endif
