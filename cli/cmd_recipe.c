/* cli/cmd_recipe.c: `kiln recipe list` and `kiln recipe resolve`.
 *
 * Both read the lock data embedded in kiln_recipes, so they work on a machine
 * without the source tree. The text form is for people; -o yaml|json prints
 * the same data the `recipe` Lua module returns, for scripts and golden tests.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd_recipe.h"
#include "cli/commands.h"
#include "cli/input.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/yaml.h"
#include "recipes/recipes.h"

/* The RGDs that ship in recipes/ (tests/recipes checks that each path exists). */
static const struct {
    const char *kind, *path, *what;
} shipped_recipes[] = {
    {"ClusterRuntime", "recipes/runtime/cluster-runtime.rgd.yaml",
     "version-locked GPU cluster runtime by criteria, via Argo CD or Flux"},
    {"VLLMService", "recipes/inference/vllm-service",
     "plain vLLM Deployment, Service, HPA and PodMonitor, no gateway"},
    {"InferenceStack", "recipes/inference/inference-stack",
     "llm-d prefix-aware scheduling: InferencePool, endpoint picker, HTTPRoute"},
    {"PDStack", "recipes/inference/pd-disaggregation",
     "llm-d prefill/decode disaggregation with the routing sidecar and NIXL"},
    {"WideEPStack", "recipes/inference/wide-ep",
     "llm-d wide expert parallelism on LeaderWorkerSet"},
    {"KServeLLM", "recipes/inference/kserve",
     "a KServe LLMInferenceService with its scheduler and route"},
};

static int usage_error(const char *fmt, const char *arg)
{
    return kiln_cli_usage_error("recipe", fmt, arg);
}

static int dump(const json_t *doc, const char *format)
{
    kiln_buf out;
    kiln_err err = {0};
    int rc;
    kiln_buf_init(&out, KILN_BUF_DEFAULT_LIMIT);
    if (strcmp(format, "json") == 0) {
        rc = kiln_json_dump(&out, doc, KILN_JSON_PRETTY | KILN_JSON_SORTED, &err);
        if (rc == 0)
            rc = kiln_buf_puts(&out, "\n", &err);
    } else {
        rc = kiln_yaml_dump(&out, doc, &err);
    }
    if (rc < 0) {
        fprintf(stderr, "kiln recipe: %s\n", err.msg);
        kiln_buf_free(&out);
        return KILN_EXIT_FAIL;
    }
    fputs(out.data ? out.data : "", stdout);
    kiln_buf_free(&out);
    return KILN_EXIT_OK;
}

static void print_list(const json_t *list, const char *sep)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        printf("%s%s", i ? sep : "", json_string_value(v));
    }
}

static void print_criteria(const json_t *crit)
{
    bool first = true;
    for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
        const char *v = json_string_value(json_object_get(crit, kiln_recipes_criteria[k]));
        if (v)
            printf("%s%s=%s", first ? "" : " ", kiln_recipes_criteria[k], v);
        first = first && v == NULL;
    }
}

static int list_text(const json_t *cat)
{
    puts("Runtime criteria (ClusterRuntime, `kiln recipe resolve`):");
    for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
        const json_t *c =
            json_object_get(json_object_get(cat, "criteria"), kiln_recipes_criteria[k]);
        printf("  %-12s ", kiln_recipes_criteria[k]);
        print_list(json_object_get(c, "values"), " ");
        printf("%s\n", json_is_true(json_object_get(c, "required")) ? "" : "  (optional)");
        printf("  %-12s resolvable: ", "");
        print_list(json_object_get(c, "resolvable"), " ");
        putchar('\n');
        const json_t *aliases = json_object_get(c, "aliases");
        if (json_object_size(aliases) > 0) {
            size_t n;
            const char **keys = kiln_json_sorted_keys(&n, aliases);
            printf("  %-12s aliases:", "");
            for (size_t i = 0; i < n; i++)
                printf(" %s=%s", keys[i], json_string_value(json_object_get(aliases, keys[i])));
            putchar('\n');
            kiln_xfree(keys);
        }
    }
    puts("\nOverlays:");
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(cat, "overlays"), i, o)
    {
        const char *base = kiln_json_get_string(o, "base");
        printf("  %-20s ", kiln_json_get_string(o, "name"));
        if (json_object_size(json_object_get(o, "criteria")) == 0)
            printf("(root)");
        else
            print_criteria(json_object_get(o, "criteria"));
        if (base && strcmp(base, "base") != 0)
            printf(" [base %s]", base);
        printf("\n  %-20s %s\n", "", kiln_json_get_string(o, "description"));
    }
    puts("\nComponents:");
    json_array_foreach(json_object_get(cat, "components"), i, o)
    {
        const char *chart = kiln_json_get_string(o, "chart");
        printf("  %-25s %-9s %s %s%s -> %s\n", kiln_json_get_string(o, "name"),
               kiln_json_get_string(o, "version"), kiln_json_get_string(o, "repository"),
               chart ? "" : "path ", chart ? chart : kiln_json_get_string(o, "path"),
               kiln_json_get_string(o, "namespace"));
    }
    puts("\nRecipes:");
    for (size_t k = 0; k < sizeof shipped_recipes / sizeof *shipped_recipes; k++)
        printf("  %-15s %-41s %s\n", shipped_recipes[k].kind, shipped_recipes[k].path,
               shipped_recipes[k].what);
    return KILN_EXIT_OK;
}

static int resolve_text(const json_t *res)
{
    size_t i;
    json_t *o;
    printf("criteria: ");
    print_criteria(json_object_get(res, "criteria"));
    puts("\n\noverlays (in the order applied):");
    json_array_foreach(json_object_get(res, "overlays"), i, o)
    {
        printf("  %-20s %s\n", kiln_json_get_string(o, "name"), kiln_json_get_string(o, "reason"));
    }
    puts("\ncomponents (deployment order):");
    json_array_foreach(json_object_get(res, "components"), i, o)
    {
        const char *chart = kiln_json_get_string(o, "chart");
        printf("  %2zu. %-25s %-9s %s %s%s -> %s\n", i + 1, kiln_json_get_string(o, "name"),
               kiln_json_get_string(o, "version"), kiln_json_get_string(o, "repository"),
               chart ? "" : "path ", chart ? chart : kiln_json_get_string(o, "path"),
               kiln_json_get_string(o, "namespace"));
        if (json_array_size(json_object_get(o, "dependencies")) > 0) {
            printf("      after: ");
            print_list(json_object_get(o, "dependencies"), ", ");
            putchar('\n');
        }
    }
    puts("\nconstraints:");
    json_array_foreach(json_object_get(res, "constraints"), i, o)
    {
        printf("  %s %s\n", kiln_json_get_string(o, "name"), kiln_json_get_string(o, "value"));
    }
    const json_t *v = json_object_get(res, "validation");
    const char *acc = kiln_json_get_string(v, "accelerator");
    printf("\nvalidation: accelerator %s", acc ? acc : "(none)");
    if (json_is_integer(json_object_get(v, "gpusPerNode")))
        printf(", %lld GPUs a node",
               (long long)json_integer_value(json_object_get(v, "gpusPerNode")));
    printf(", checks ");
    print_list(json_object_get(v, "checks"), " ");
    puts("\n\nvalues: kiln recipe resolve ... -o yaml");
    return KILN_EXIT_OK;
}

int kiln_cmd_recipe(int argc, char **argv)
{
    const char *format = "text";
    const char *sub = argc > 1 ? argv[1] : NULL;
    json_t *crit = json_object();
    json_t *doc = NULL;
    kiln_err err = {0};
    int status = KILN_EXIT_USAGE;

    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "recipe");
        status = KILN_EXIT_OK;
        goto out;
    }
    if (sub == NULL || (strcmp(sub, "list") != 0 && strcmp(sub, "resolve") != 0)) {
        status = usage_error("expected list or resolve, got \"%s\"", sub ? sub : "nothing");
        goto out;
    }
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int m = kiln_cli_flag_value("recipe", argc, argv, &i, "-o", "--output", &v);
        if (m < 0)
            goto out;
        if (m > 0) {
            format = v;
            continue;
        }
        bool matched = false;
        for (int k = 0; k < KILN_RECIPES_NCRITERIA && !matched; k++) {
            char flag[32];
            snprintf(flag, sizeof flag, "--%s", kiln_recipes_criteria[k]);
            m = kiln_cli_flag_value("recipe", argc, argv, &i, NULL, flag, &v);
            if (m < 0)
                goto out;
            if (m > 0) {
                if (strcmp(sub, "resolve") != 0) {
                    status = usage_error("%s: criteria go with resolve", flag);
                    goto out;
                }
                json_object_set_new(crit, kiln_recipes_criteria[k], json_string(v));
                matched = true;
            }
        }
        if (!matched) {
            status = usage_error("unknown argument \"%s\"", argv[i]);
            goto out;
        }
    }
    if (strcmp(format, "text") != 0 && strcmp(format, "yaml") != 0 && strcmp(format, "json") != 0) {
        status = usage_error("unknown output format \"%s\" (want text, yaml or json)", format);
        goto out;
    }
    status = KILN_EXIT_FAIL;
    const kiln_recipes *r = kiln_recipes_builtin(&err);
    if (r == NULL) {
        fprintf(stderr, "kiln recipe: %s\n", err.msg);
        goto out;
    }
    if (strcmp(sub, "list") == 0) {
        doc = kiln_recipes_catalog(r);
        status = strcmp(format, "text") == 0 ? list_text(doc) : dump(doc, format);
        goto out;
    }
    if (kiln_recipes_resolve(&doc, r, crit, &err) < 0) {
        fprintf(stderr, "kiln recipe resolve: %s\n", err.msg);
        goto out;
    }
    status = strcmp(format, "text") == 0 ? resolve_text(doc) : dump(doc, format);
out:
    json_decref(crit);
    json_decref(doc);
    return status;
}
