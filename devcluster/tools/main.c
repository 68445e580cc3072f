/* kiln-devcluster: the dev cluster alone, without the rest of kiln. */
#include "devcluster/devcluster.h"

int main(int argc, char **argv)
{
    return kiln_devcluster_main(argc, argv);
}
