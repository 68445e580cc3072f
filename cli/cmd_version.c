/* cli/cmd_version.c: `kiln version`. */
#include <stdio.h>

#include "cli/commands.h"

#ifndef KILN_VERSION
#error "KILN_VERSION must come from the build (add_compile_definitions in CMakeLists.txt)"
#endif

int kiln_cmd_version(int argc, char **argv)
{
    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "version");
        return KILN_EXIT_OK;
    }
    if (argc > 1)
        return kiln_cli_usage_error("version", "unexpected argument \"%s\"", argv[1]);
    printf("kiln %s\n", KILN_VERSION);
    return KILN_EXIT_OK;
}
