/* cli/cmd_lint.c: `kiln lint`: compile every RGD in the files and report
 * every error with its path.
 *
 * Lint keeps going after a bad file, so one run shows everything to fix. The
 * compile is the controller's own (kiln_graph_compile with its dry render), so
 * an RGD that lints clean is one the controller accepts, cluster-side OpenAPI
 * checks aside.
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/input.h"
#include "core/json.h"
#include "core/mem.h"
#include "graph/graph.h"

/* Lints the RGDs of one file; returns true when all of them compile. */
static bool lint_file(const char *file)
{
    kiln_cli_docs docs = {0};
    kiln_err err = {0};
    size_t nrgd = 0;
    bool ok = false;

    if (kiln_cli_docs_load(&docs, file, &err) < 0) {
        printf("%s\n", err.msg);
        goto out;
    }
    for (size_t i = 0; i < docs.len; i++)
        nrgd += kiln_cli_is_rgd(docs.items[i].obj);
    if (nrgd == 0) {
        printf("%s: no ResourceGraphDefinition (kiln.dev/v1alpha1) found\n", file);
        goto out;
    }
    ok = true;
    for (size_t i = 0; i < docs.len; i++) {
        const json_t *doc = docs.items[i].obj;
        if (!kiln_cli_is_rgd(doc))
            continue;
        kiln_graph *g = NULL;
        kiln_errs errs = {0};
        const char *name = kiln_json_get_string(doc, "metadata.name");
        /* With several RGDs in one file, say which one each error is about. */
        char where[300];
        if (nrgd > 1)
            snprintf(where, sizeof(where), "%s: %s", file, name ? name : "<no name>");
        else
            snprintf(where, sizeof(where), "%s", file);
        if (kiln_graph_compile(&g, doc, NULL, &errs) < 0) {
            ok = false;
            for (size_t k = 0; k < errs.len; k++)
                printf("%s: %s\n", where, errs.items[k].msg);
            if (errs.len == 0)
                printf("%s: does not compile\n", where);
        } else {
            printf("%s: %s: ok\n", file, kiln_graph_name(g));
        }
        kiln_graph_free(g);
        kiln_errs_free(&errs);
    }
out:
    kiln_cli_docs_free(&docs);
    return ok;
}

int kiln_cmd_lint(int argc, char **argv)
{
    /* Files after "--" may start with a dash. */
    const char **files = kiln_xcalloc((size_t)argc, sizeof(files[0]));
    int nfiles = 0;
    bool dashdash = false;
    int status = KILN_EXIT_OK;

    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "lint");
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        if (!dashdash && strcmp(argv[i], "--") == 0) {
            dashdash = true;
            continue;
        }
        if (!dashdash && argv[i][0] == '-' && argv[i][1] != '\0') {
            status = kiln_cli_usage_error("lint", "unknown flag \"%s\"", argv[i]);
            goto out;
        }
        files[nfiles++] = argv[i];
    }
    if (nfiles == 0) {
        status = kiln_cli_usage_error("lint", "no input: name one or more RGD files");
        goto out;
    }
    for (int i = 0; i < nfiles; i++)
        if (!lint_file(files[i]))
            status = KILN_EXIT_FAIL;
    fflush(stdout);
out:
    kiln_xfree(files);
    return status;
}
