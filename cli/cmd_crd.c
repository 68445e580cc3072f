/* cli/cmd_crd.c: `kiln crd FILE` (the CRD an RGD generates) and
 * `kiln crd --builtin` (kiln's own CRDs, the source of crds/).
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/input.h"
#include "core/buf.h"
#include "core/yaml.h"
#include "graph/crd.h"
#include "graph/graph.h"

int kiln_cmd_crd(int argc, char **argv)
{
    const char *file = NULL;
    bool builtin = false;
    json_t *docs = NULL;
    kiln_graph *g = NULL;
    kiln_err err = {0};
    kiln_buf out;
    int status = KILN_EXIT_FAIL;

    kiln_buf_init(&out, KILN_BUF_DEFAULT_LIMIT);
    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "crd");
        status = KILN_EXIT_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--builtin") == 0) {
            builtin = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            status = kiln_cli_usage_error("crd", "unknown flag \"%s\"", argv[i]);
            goto out;
        } else if (file) {
            status = kiln_cli_usage_error("crd", "expected one FILE, got \"%s\" and \"%s\"", file,
                                          argv[i]);
            goto out;
        } else {
            file = argv[i];
        }
    }
    if (builtin == (file != NULL)) {
        status = kiln_cli_usage_error("crd", builtin ? "--builtin takes no FILE"
                                                     : "no input: name the RGD file or --builtin");
        goto out;
    }

    if (builtin) {
        docs = kiln_crd_builtin();
    } else {
        if (kiln_cli_compile_one_rgd(&g, "crd", file) < 0)
            goto out;
        docs = json_pack("[O]", kiln_graph_crd(g));
    }
    if (kiln_yaml_dump_all(&out, docs, &err) < 0) {
        fprintf(stderr, "kiln crd: %s\n", err.msg);
        goto out;
    }
    fputs(out.data ? out.data : "", stdout);
    status = KILN_EXIT_OK;
out:
    kiln_buf_free(&out);
    kiln_graph_free(g);
    json_decref(docs);
    return status;
}
