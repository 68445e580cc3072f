/* cli/input.c: flags with values and YAML documents from files and
 * directories (see input.h). */
#include "cli/input.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/yaml.h"

/* stdin is a stream: a second "-f -" would silently read nothing. */
static bool stdin_used;

static void docs_push(kiln_cli_docs *docs, json_t *obj, const char *file, size_t index)
{
    if (docs->len == docs->cap) {
        docs->cap = docs->cap ? docs->cap * 2 : 8;
        docs->items = kiln_xrealloc(docs->items, docs->cap * sizeof(docs->items[0]));
    }
    docs->items[docs->len++] =
        (kiln_cli_doc){.obj = obj, .file = kiln_xstrdup(file), .index = index};
}

int kiln_cli_docs_load(kiln_cli_docs *docs, const char *path, kiln_err *err)
{
    json_t *all = NULL;
    int rc = 0;

    if (strcmp(path, "-") == 0) {
        if (stdin_used) {
            rc = kiln_err_set(err, KILN_EINVAL, "-: standard input can be read only once");
            goto out;
        }
        stdin_used = true;
    }
    rc = kiln_yaml_load_file(&all, path, NULL, err);
    if (rc < 0) {
        /* The YAML reader names the source with line and column already; add
         * the path only when it did not. */
        if (err && strncmp(err->msg, path, strlen(path)) != 0)
            kiln_err_prefix(err, "%s", path);
        goto out;
    }
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc)
    {
        if (!json_is_object(doc)) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "%s: document %zu: expected a mapping (a Kubernetes object), got %s",
                              path, i + 1, kiln_json_type_name(doc));
            goto out;
        }
    }
    json_array_foreach(all, i, doc)
    {
        docs_push(docs, json_incref(doc), path, i);
    }
out:
    json_decref(all);
    return rc;
}

static bool has_doc_suffix(const char *name)
{
    static const char *const suffixes[] = {".yaml", ".yml", ".json"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(name + n - k, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int kiln_cli_docs_load_dir(kiln_cli_docs *docs, const char *dir, kiln_err *err)
{
    DIR *d = NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    d = opendir(dir);
    if (!d) {
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", dir, strerror(errno));
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !has_doc_suffix(de->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = kiln_xrealloc(names, cap * sizeof(names[0]));
        }
        names[n++] = kiln_xasprintf("%s/%s", dir, de->d_name);
    }
    if (n > 0)
        qsort(names, n, sizeof(names[0]), cmp_names);
    for (size_t i = 0; i < n; i++) {
        rc = kiln_cli_docs_load(docs, names[i], err);
        if (rc < 0)
            goto out;
    }
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        kiln_xfree(names[i]);
    kiln_xfree(names);
    return rc;
}

void kiln_cli_docs_free(kiln_cli_docs *docs)
{
    if (!docs)
        return;
    for (size_t i = 0; i < docs->len; i++) {
        json_decref(docs->items[i].obj);
        kiln_xfree(docs->items[i].file);
    }
    kiln_xfree(docs->items);
    docs->items = NULL;
    docs->len = docs->cap = 0;
}

bool kiln_cli_is_rgd(const json_t *doc)
{
    const char *api = kiln_json_get_string(doc, "apiVersion");
    const char *kind = kiln_json_get_string(doc, "kind");
    return api && kind && strcmp(api, "kiln.dev/v1alpha1") == 0 &&
           strcmp(kind, "ResourceGraphDefinition") == 0;
}

int kiln_cli_load_one_rgd(json_t **out, const char *path, kiln_err *err)
{
    kiln_cli_docs docs = {0};
    json_t *found = NULL;
    int rc;

    *out = NULL;
    rc = kiln_cli_docs_load(&docs, path, err);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < docs.len; i++) {
        if (!kiln_cli_is_rgd(docs.items[i].obj))
            continue;
        if (found) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "%s: document %zu: a second ResourceGraphDefinition; expected one",
                              path, docs.items[i].index + 1);
            goto out;
        }
        found = docs.items[i].obj;
    }
    if (!found) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: no ResourceGraphDefinition (kiln.dev/v1alpha1)",
                          path);
        goto out;
    }
    *out = json_incref(found);
out:
    kiln_cli_docs_free(&docs);
    return rc;
}

int kiln_cli_compile_one_rgd(kiln_graph **out, const char *cmd, const char *path)
{
    json_t *rgd = NULL;
    kiln_errs errs = {0};
    kiln_err err = {0};
    int rc;

    *out = NULL;
    rc = kiln_cli_load_one_rgd(&rgd, path, &err);
    if (rc < 0) {
        fprintf(stderr, "kiln %s: %s\n", cmd, err.msg);
        goto out;
    }
    kiln_graph_options go = {.skip_dry_render = true};
    rc = kiln_graph_compile(out, rgd, &go, &errs);
    if (rc < 0) {
        for (size_t i = 0; i < errs.len; i++)
            fprintf(stderr, "kiln %s: %s: %s\n", cmd, path, errs.items[i].msg);
    }
out:
    json_decref(rgd);
    kiln_errs_free(&errs);
    return rc;
}

char *kiln_cli_doc_label(const json_t *doc)
{
    const char *api = kiln_json_get_string(doc, "apiVersion");
    const char *kind = kiln_json_get_string(doc, "kind");
    const char *ns = kiln_json_get_string(doc, "metadata.namespace");
    const char *name = kiln_json_get_string(doc, "metadata.name");
    return kiln_xasprintf("%s %s %s%s%s", api ? api : "<no apiVersion>", kind ? kind : "<no kind>",
                          ns ? ns : "", ns ? "/" : "", name ? name : "<no name>");
}

int kiln_cli_flag_value(const char *cmd, int argc, char **argv, int *i, const char *shortf,
                        const char *longf, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(longf);
    if (strncmp(arg, longf, n) == 0 && arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (strcmp(arg, longf) != 0 && (!shortf || strcmp(arg, shortf) != 0))
        return 0;
    if (*i + 1 >= argc) {
        kiln_cli_usage_error(cmd, "flag %s needs a value", arg);
        return -1;
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}
