/* cli/cmd_dev.c: `kiln dev`, the embedded dev cluster (devcluster/). */
#include <stdio.h>

#include "cli/commands.h"
#ifdef KILN_HAVE_DEVCLUSTER
#include "devcluster/devcluster.h"
#endif

int kiln_cmd_dev(int argc, char **argv)
{
#ifdef KILN_HAVE_DEVCLUSTER
    return kiln_devcluster_main(argc, argv);
#else
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln dev: this kiln was built without the dev cluster\n");
    return 1;
#endif
}
