/* graph/crd.c: the CRD of a kind an RGD declares (see graph/crd.h). */
#include "graph/crd.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

/* kiln_err_set with the message cleaned (see kiln_utf8_clean). */
static int set_err(kiln_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(kiln_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_err_vset(err, code, fmt, ap);
    va_end(ap);
    if (err)
        kiln_utf8_clean(err->msg);
    return code;
}

bool kiln_crd_valid_kind(const char *kind)
{
    size_t n = kind ? strlen(kind) : 0;
    if (n == 0 || n > 63 || !isupper((unsigned char)kind[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)kind[i]))
            return false;
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool kiln_crd_valid_version(const char *v)
{
    if (!v || v[0] != 'v')
        return false;
    const char *p = v + 1;
    size_t n = strspn(p, "0123456789");
    if (n == 0)
        return false;
    p += n;
    if (!*p)
        return true;
    if (!strncmp(p, "alpha", 5))
        p += 5;
    else if (!strncmp(p, "beta", 4))
        p += 4;
    else
        return false;
    return all_digits(p, strlen(p));
}

/* A DNS-1123 label: lowercase alphanumerics and '-', alphanumeric at both
 * ends, at most 63 bytes. */
static bool dns_label(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

bool kiln_crd_valid_group(const char *group)
{
    size_t n = group ? strlen(group) : 0;
    if (n == 0 || n > 253)
        return false;
    /* The API server wants at least one dot in a CRD's group. */
    if (!strchr(group, '.'))
        return false;
    const char *p = group;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!dns_label(p, len))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

int kiln_crd_plural(char *out, size_t n, const char *kind, kiln_err *err)
{
    size_t len = kind ? strlen(kind) : 0;
    if (len == 0)
        return set_err(err, KILN_EINVAL, "kind is empty");
    /* lower + at most "es" + NUL */
    if (len + 3 > n)
        return set_err(err, KILN_ELIMIT, "kind \"%.64s\" is too long for a plural name", kind);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)kind[i]);
    out[len] = '\0';
    char last = out[len - 1];
    char before = len > 1 ? out[len - 2] : '\0';
    if (last == 's' || last == 'x' || last == 'z' ||
        (last == 'h' && (before == 'c' || before == 's'))) {
        strcpy(out + len, "es");
    } else if (last == 'y' && len > 1 && !strchr("aeiou", before)) {
        strcpy(out + len - 1, "ies");
    } else {
        strcpy(out + len, "s");
    }
    return 0;
}

static json_t *string_schema(void)
{
    return json_pack("{s:s}", "type", "string");
}

json_t *kiln_crd_conditions_schema(void)
{
    json_t *props =
        json_pack("{s:o, s:o, s:o, s:o, s:{s:s, s:s}, s:{s:s, s:s}}", "type", string_schema(),
                  "status", string_schema(), "reason", string_schema(), "message", string_schema(),
                  "lastTransitionTime", "type", "string", "format", "date-time",
                  "observedGeneration", "type", "integer", "format", "int64");
    return json_pack("{s:s, s:s, s:[s], s:{s:s, s:[s, s], s:o}}", "type", "array",
                     "x-kubernetes-list-type", "map", "x-kubernetes-list-map-keys", "type", "items",
                     "type", "object", "required", "type", "status", "properties", props);
}

json_t *kiln_crd_instance_status_schema(void)
{
    json_t *resource =
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "id", string_schema(), "kind", string_schema(),
                  "name", string_schema(), "namespace", string_schema(), "state", string_schema(),
                  "message", string_schema());
    return json_pack("{s:s, s:{s:{s:s, s:s}, s:o, s:o, s:{s:s, s:{s:s, s:o}}, s:{s:s, s:b}}}",
                     "type", "object", "properties", "observedGeneration", "type", "integer",
                     "format", "int64", "conditions", kiln_crd_conditions_schema(), "state",
                     string_schema(), "resources", "type", "array", "items", "type", "object",
                     "properties", resource, "validation", "type", "object",
                     "x-kubernetes-preserve-unknown-fields", 1);
}

static json_t *default_printer_columns(void)
{
    return json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]", "name", "Ready", "type",
                     "string", "jsonPath", ".status.conditions[?(@.type==\"Ready\")].status",
                     "name", "State", "type", "string", "jsonPath", ".status.state", "name", "Age",
                     "type", "date", "jsonPath", ".metadata.creationTimestamp");
}

/* shortNames and categories: lists of DNS labels, as the API server wants. */
static int check_names(const json_t *list, const char *what, kiln_err *err)
{
    size_t i;
    const json_t *v;
    if (!json_is_array(list))
        return set_err(err, KILN_EINVAL, "spec.schema.%s: expected a list of strings", what);
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || !dns_label(s, strlen(s)))
            return set_err(err, KILN_EINVAL,
                           "spec.schema.%s[%zu]: must be a lowercase DNS label (letters, "
                           "digits, -; at most 63)",
                           what, i);
    }
    return 0;
}

static int check_string_map(const json_t *map, const char *what, kiln_err *err)
{
    const char *k;
    const json_t *v;
    if (!json_is_object(map))
        return set_err(err, KILN_EINVAL, "spec.schema.metadata.%s: expected a map of strings",
                       what);
    json_object_foreach((json_t *)map, k, v)
    {
        if (!json_is_string(v))
            return set_err(err, KILN_EINVAL, "spec.schema.metadata.%s.%s: expected a string value",
                           what, k);
    }
    return 0;
}

static int check_printer_columns(const json_t *cols, kiln_err *err)
{
    static const char *const types[] = {"integer", "number", "string", "boolean", "date"};
    size_t i;
    const json_t *c;
    if (!json_is_array(cols))
        return set_err(err, KILN_EINVAL, "spec.schema.printerColumns: expected a list");
    json_array_foreach(cols, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *path = json_string_value(json_object_get(c, "jsonPath"));
        bool known = false;
        for (size_t t = 0; type && t < sizeof(types) / sizeof(*types); t++)
            known = known || !strcmp(type, types[t]);
        if (!name || !name[0])
            return set_err(err, KILN_EINVAL, "spec.schema.printerColumns[%zu].name: Required", i);
        if (!path || !path[0])
            return set_err(err, KILN_EINVAL, "spec.schema.printerColumns[%zu].jsonPath: Required",
                           i);
        if (!known)
            return set_err(err, KILN_EINVAL,
                           "spec.schema.printerColumns[%zu].type: must be integer, number, "
                           "string, boolean or date",
                           i);
    }
    return 0;
}

int kiln_crd_synthesize(json_t **out, const kiln_crd_spec *spec, kiln_err *err)
{
    char plural[KILN_CRD_NAME_MAX + 2];
    char *singular = NULL, *list_kind = NULL, *name = NULL;
    json_t *crd = NULL, *status = NULL, *labels = NULL, *names = NULL;
    const char *group = spec->group ? spec->group : KILN_CRD_DEFAULT_GROUP;
    const char *scope = spec->scope ? spec->scope : "Namespaced";
    int rc = 0;
    *out = NULL;

    if (!kiln_crd_valid_kind(spec->kind)) {
        rc = set_err(err, KILN_EINVAL,
                     "spec.schema.kind: \"%.64s\" is not a valid kind: must match "
                     "^[A-Z][a-zA-Z0-9]{0,62}$",
                     spec->kind ? spec->kind : "");
        goto out;
    }
    if (!kiln_crd_valid_version(spec->version)) {
        rc = set_err(err, KILN_EINVAL,
                     "spec.schema.apiVersion: \"%.64s\" is not a valid version: must match "
                     "^v[0-9]+((alpha|beta)[0-9]+)?$",
                     spec->version ? spec->version : "");
        goto out;
    }
    if (!kiln_crd_valid_group(group)) {
        rc = set_err(err, KILN_EINVAL,
                     "spec.schema.group: \"%.64s\" is not a valid group: must be a lowercase "
                     "DNS subdomain with at least one dot",
                     group);
        goto out;
    }
    if (strcmp(scope, "Namespaced") && strcmp(scope, "Cluster")) {
        rc = set_err(err, KILN_EINVAL,
                     "spec.schema.scope: must be Namespaced or Cluster, got \"%.64s\"", scope);
        goto out;
    }
    if ((rc = kiln_crd_plural(plural, sizeof(plural), spec->kind, err)) != 0)
        goto out;
    if (strlen(plural) > 63) {
        rc = set_err(err, KILN_EINVAL,
                     "spec.schema.kind: plural \"%s\" is longer than 63 characters", plural);
        goto out;
    }
    if (spec->spec_schema && !json_is_object(spec->spec_schema)) {
        rc = set_err(err, KILN_EINVAL, "spec.schema.spec: expected an OpenAPI object schema");
        goto out;
    }
    if (spec->status_schema && !json_is_null(spec->status_schema) &&
        !json_is_object(spec->status_schema)) {
        rc = set_err(err, KILN_EINVAL, "spec.schema.status: expected an OpenAPI object schema");
        goto out;
    }
    if ((spec->short_names && (rc = check_names(spec->short_names, "shortNames", err))) ||
        (spec->categories && (rc = check_names(spec->categories, "categories", err))) ||
        (spec->labels && (rc = check_string_map(spec->labels, "labels", err))) ||
        (spec->annotations && (rc = check_string_map(spec->annotations, "annotations", err))) ||
        (spec->printer_columns && (rc = check_printer_columns(spec->printer_columns, err))))
        goto out;
    /* The kiln.dev/rgd label carries the RGD's name, and label values stop
     * at 63 bytes. */
    if (spec->rgd_name && strlen(spec->rgd_name) > 63) {
        rc = set_err(err, KILN_EINVAL,
                     "metadata.name: \"%.64s...\" is longer than 63 characters, the most a "
                     "label value (kiln.dev/rgd) can hold",
                     spec->rgd_name);
        goto out;
    }

    singular = kiln_xstrdup(plural);
    for (size_t i = 0; spec->kind[i]; i++)
        singular[i] = (char)tolower((unsigned char)spec->kind[i]);
    singular[strlen(spec->kind)] = '\0';
    list_kind = kiln_xasprintf("%sList", spec->kind);
    name = kiln_xasprintf("%s.%s", plural, group);

    /* Projections first, kiln's own fields over them. */
    status = json_pack("{s:s, s:{}}", "type", "object", "properties");
    json_t *status_props = json_object_get(status, "properties");
    if (json_is_object(spec->status_schema))
        json_object_update(status_props, json_object_get(spec->status_schema, "properties"));
    json_t *own = kiln_crd_instance_status_schema();
    json_object_update(status_props, json_object_get(own, "properties"));
    json_decref(own);

    labels = json_object();
    if (spec->labels)
        json_object_update(labels, (json_t *)spec->labels);
    json_object_set_new(labels, "app.kubernetes.io/managed-by", json_string("kiln"));
    if (spec->rgd_name)
        json_object_set_new(labels, "kiln.dev/rgd", json_string(spec->rgd_name));

    names = json_pack("{s:s, s:s, s:s, s:s}", "kind", spec->kind, "listKind", list_kind, "plural",
                      plural, "singular", singular);
    if (json_array_size(spec->short_names))
        json_object_set_new(names, "shortNames", json_deep_copy(spec->short_names));
    if (json_array_size(spec->categories))
        json_object_set_new(names, "categories", json_deep_copy(spec->categories));

    json_t *spec_schema = spec->spec_schema ? json_deep_copy(spec->spec_schema)
                                            : json_pack("{s:s, s:b}", "type", "object",
                                                        "x-kubernetes-preserve-unknown-fields", 1);
    json_t *columns = json_array_size(spec->printer_columns) ? json_deep_copy(spec->printer_columns)
                                                             : default_printer_columns();
    json_t *schema =
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:o, s:O}}", "type", "object", "properties",
                  "apiVersion", "type", "string", "kind", "type", "string", "metadata", "type",
                  "object", "spec", spec_schema, "status", status);
    json_t *version = json_pack("{s:s, s:b, s:b, s:{s:o}, s:{s:{}}, s:o}", "name", spec->version,
                                "served", 1, "storage", 1, "schema", "openAPIV3Schema", schema,
                                "subresources", "status", "additionalPrinterColumns", columns);
    json_t *metadata = json_pack("{s:s, s:O}", "name", name, "labels", labels);
    if (json_object_size(spec->annotations))
        json_object_set_new(metadata, "annotations", json_deep_copy(spec->annotations));
    crd = json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:O, s:[o]}}", "apiVersion",
                    "apiextensions.k8s.io/v1", "kind", "CustomResourceDefinition", "metadata",
                    metadata, "spec", "group", group, "scope", scope, "names", names, "versions",
                    version);
    *out = crd;
out:
    json_decref(status);
    json_decref(labels);
    json_decref(names);
    kiln_xfree(singular);
    kiln_xfree(list_kind);
    kiln_xfree(name);
    return rc;
}
