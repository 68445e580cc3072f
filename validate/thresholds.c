#include "validate/thresholds.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/mem.h"
#include "core/yaml.h"

const char *const kiln_validate_checks[KILN_VALIDATE_N_CHECKS] = {
    "device", "memory", "hbm-bandwidth", "gemm", "pcie", "p2p",
};

bool kiln_validate_is_check(const char *name)
{
    for (size_t i = 0; i < KILN_VALIDATE_N_CHECKS; i++)
        if (name && strcmp(name, kiln_validate_checks[i]) == 0)
            return true;
    return false;
}

/* The floor metrics a thresholds file must give, all of them: a requested
 * check must always be judgeable, so a file without one is malformed rather
 * than a silent pass. */
static const struct {
    const char *check, *name, *unit;
    bool per_pair;
} known_metrics[] = {
    {"hbm-bandwidth", "copyGBps", "GB/s", false},
    {"hbm-bandwidth", "triadGBps", "GB/s", false},
    {"hbm-bandwidth", "memcpyGBps", "GB/s", false},
    {"gemm", "bf16Tflops", "TFLOP/s", false},
    {"gemm", "fp32Tflops", "TFLOP/s", false},
    {"pcie", "h2dGBps", "GB/s", false},
    {"pcie", "d2hGBps", "GB/s", false},
    {"p2p", "peerGBps", "GB/s", true},
};
#define N_KNOWN (sizeof(known_metrics) / sizeof(known_metrics[0]))

/* A thresholds file is a few hundred bytes; 1 MiB means something is wrong. */
#define THRESHOLDS_FILE_LIMIT ((size_t)1 << 20)

void kiln_thresholds_normalize(char *out, size_t n, const char *name)
{
    if (n == 0)
        return;
    size_t j = 0;
    for (size_t i = 0; name && name[i] && j + 1 < n; i++) {
        char c = name[i];
        if (c == '_' || c == ' ')
            c = '-';
        out[j++] = (char)tolower((unsigned char)c);
    }
    out[j] = '\0';
    if (strncmp(out, "nvidia-", 7) == 0)
        memmove(out, out + 7, j - 7 + 1);
}

static void accel_free(kiln_threshold_accel *a)
{
    if (!a)
        return;
    kiln_xfree(a->name);
    kiln_xfree(a->description);
    kiln_xfree(a->source);
    for (size_t i = 0; i < a->n_aliases; i++)
        kiln_xfree(a->aliases[i]);
    kiln_xfree(a->aliases);
    for (size_t i = 0; i < a->n_products; i++)
        kiln_xfree(a->products[i]);
    kiln_xfree(a->products);
    for (size_t i = 0; i < a->n_metrics; i++) {
        kiln_xfree(a->metrics[i].check);
        kiln_xfree(a->metrics[i].name);
    }
    kiln_xfree(a->metrics);
    memset(a, 0, sizeof(*a));
}

void kiln_thresholds_free(kiln_thresholds *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->len; i++)
        accel_free(&cat->items[i]);
    kiln_xfree(cat->items);
    cat->items = NULL;
    cat->len = 0;
}

/* Rejects keys outside allowed (NULL-terminated), so a typo such as "flor" is
 * an error instead of a silently missing floor. */
static int check_keys(const json_t *obj, const char *const *allowed, const char *source,
                      const char *path, kiln_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = true;
        if (!ok)
            return kiln_err_set(err, KILN_EINVAL, "%s: %s%s%s: unknown field", source, path,
                                *path ? "." : "", key);
    }
    return 0;
}

static int get_string(const char **out, const json_t *obj, const char *key, bool required,
                      const char *source, const char *path, kiln_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (!required)
            return 0;
        return kiln_err_set(err, KILN_EINVAL, "%s: %s%s%s: required field is missing", source, path,
                            *path ? "." : "", key);
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return kiln_err_set(err, KILN_EINVAL, "%s: %s%s%s: expected a non-empty string, got %s",
                            source, path, *path ? "." : "", key,
                            json_is_string(v) ? "\"\"" : "another type");
    *out = json_string_value(v);
    return 0;
}

static int get_number(double *out, const json_t *obj, const char *key, const char *source,
                      const char *path, kiln_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return kiln_err_set(err, KILN_EINVAL, "%s: %s.%s: required field is missing", source, path,
                            key);
    if (!json_is_number(v))
        return kiln_err_set(err, KILN_EINVAL, "%s: %s.%s: expected a number", source, path, key);
    *out = json_number_value(v);
    if (!isfinite(*out))
        return kiln_err_set(err, KILN_EINVAL, "%s: %s.%s: not a finite number", source, path, key);
    return 0;
}

static int get_string_list(char ***out, size_t *n_out, const json_t *obj, const char *key,
                           bool nonempty, const char *source, const char *path, kiln_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    *n_out = 0;
    if (!v) {
        if (!nonempty)
            return 0;
        return kiln_err_set(err, KILN_EINVAL, "%s: %s%s%s: required field is missing", source, path,
                            *path ? "." : "", key);
    }
    if (!json_is_array(v))
        return kiln_err_set(err, KILN_EINVAL, "%s: %s%s%s: expected a list of strings", source,
                            path, *path ? "." : "", key);
    if (nonempty && json_array_size(v) == 0)
        return kiln_err_set(err, KILN_EINVAL, "%s: %s%s%s: must not be empty", source, path,
                            *path ? "." : "", key);
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) == 0)
            return kiln_err_set(err, KILN_EINVAL, "%s: %s%s%s[%zu]: expected a non-empty string",
                                source, path, *path ? "." : "", key, i);
    }
    *out = kiln_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        (*out)[i] = kiln_xstrdup(json_string_value(json_array_get(v, i)));
    *n_out = n;
    return 0;
}

static int parse_cc(int *major, int *minor, const char *s)
{
    char *end = NULL;
    errno = 0;
    long ma = strtol(s, &end, 10);
    if (errno || end == s || *end != '.' || ma < 1 || ma > 99)
        return -1;
    const char *p = end + 1;
    long mi = strtol(p, &end, 10);
    if (errno || end == p || *end != '\0' || mi < 0 || mi > 9)
        return -1;
    *major = (int)ma;
    *minor = (int)mi;
    return 0;
}

static bool name_taken(const kiln_thresholds *cat, const kiln_threshold_accel *self,
                       const char *name)
{
    for (size_t i = 0; i < cat->len; i++) {
        if (strcmp(cat->items[i].name, name) == 0)
            return true;
        for (size_t j = 0; j < cat->items[i].n_aliases; j++)
            if (strcmp(cat->items[i].aliases[j], name) == 0)
                return true;
    }
    if (self) {
        for (size_t j = 0; j < self->n_aliases; j++)
            if (self->aliases[j] && strcmp(self->aliases[j], name) == 0)
                return true;
    }
    return false;
}

/* A name or alias must already be in normalized form; otherwise it could never
 * be found. */
static int check_name(const char *name, const char *source, const char *field, kiln_err *err)
{
    char norm[128];
    if (strlen(name) >= sizeof(norm))
        return kiln_err_set(err, KILN_EINVAL, "%s: %s: name is longer than %zu characters", source,
                            field, sizeof(norm) - 1);
    kiln_thresholds_normalize(norm, sizeof(norm), name);
    if (strcmp(norm, name) != 0)
        return kiln_err_set(err, KILN_EINVAL,
                            "%s: %s: \"%s\" is not in normalized form (expected \"%s\")", source,
                            field, name, norm);
    return 0;
}

static int parse_metrics(kiln_threshold_accel *a, const json_t *metrics, const char *source,
                         kiln_err *err)
{
    int rc = 0;
    const char *check;
    json_t *group;
    if (!json_is_object(metrics))
        return kiln_err_set(err, KILN_EINVAL, "%s: metrics: expected a map of checks", source);
    json_object_foreach((json_t *)metrics, check, group)
    {
        bool known_check = false;
        for (size_t k = 0; k < N_KNOWN; k++)
            if (strcmp(known_metrics[k].check, check) == 0)
                known_check = true;
        if (!known_check)
            return kiln_err_set(err, KILN_EINVAL,
                                "%s: metrics.%s: unknown check (expected hbm-bandwidth, gemm, "
                                "pcie or p2p)",
                                source, check);
        if (!json_is_object(group))
            return kiln_err_set(err, KILN_EINVAL, "%s: metrics.%s: expected a map of metrics",
                                source, check);
        const char *name;
        json_t *m;
        json_object_foreach(group, name, m)
        {
            size_t k;
            for (k = 0; k < N_KNOWN; k++)
                if (strcmp(known_metrics[k].check, check) == 0 &&
                    strcmp(known_metrics[k].name, name) == 0)
                    break;
            if (k == N_KNOWN)
                return kiln_err_set(err, KILN_EINVAL, "%s: metrics.%s.%s: unknown metric", source,
                                    check, name);
            char path[96];
            snprintf(path, sizeof(path), "metrics.%s.%s", check, name);
            if (!json_is_object(m))
                return kiln_err_set(err, KILN_EINVAL,
                                    "%s: %s: expected {achievable, floor, typical}", source, path);
            static const char *const keys[] = {"achievable", "floor", "typical", NULL};
            if ((rc = check_keys(m, keys, source, path, err)))
                return rc;
            kiln_threshold_metric tm = {0};
            if ((rc = get_number(&tm.achievable, m, "achievable", source, path, err)) ||
                (rc = get_number(&tm.floor, m, "floor", source, path, err)) ||
                (rc = get_number(&tm.typical, m, "typical", source, path, err)))
                return rc;
            if (tm.achievable <= 0)
                return kiln_err_set(err, KILN_EINVAL, "%s: %s.achievable: must be positive", source,
                                    path);
            if (tm.floor <= 0 || tm.floor > 1)
                return kiln_err_set(err, KILN_EINVAL,
                                    "%s: %s.floor: %g is not a fraction in (0, 1]", source, path,
                                    tm.floor);
            if (tm.typical < tm.floor || tm.typical > 1.5)
                return kiln_err_set(err, KILN_EINVAL,
                                    "%s: %s.typical: %g must lie between floor (%g) and 1.5",
                                    source, path, tm.typical, tm.floor);
            tm.check = kiln_xstrdup(check);
            tm.name = kiln_xstrdup(name);
            tm.unit = known_metrics[k].unit;
            tm.per_pair = known_metrics[k].per_pair;
            a->metrics = kiln_xrealloc(a->metrics, (a->n_metrics + 1) * sizeof(*a->metrics));
            a->metrics[a->n_metrics++] = tm;
        }
    }
    for (size_t k = 0; k < N_KNOWN; k++) {
        bool found = false;
        for (size_t i = 0; i < a->n_metrics; i++)
            if (strcmp(a->metrics[i].check, known_metrics[k].check) == 0 &&
                strcmp(a->metrics[i].name, known_metrics[k].name) == 0)
                found = true;
        if (!found)
            return kiln_err_set(err, KILN_EINVAL, "%s: metrics.%s.%s: required metric is missing",
                                source, known_metrics[k].check, known_metrics[k].name);
    }
    return 0;
}

int kiln_thresholds_add_json(kiln_thresholds *cat, const json_t *doc, const char *source,
                             kiln_err *err)
{
    int rc = 0;
    kiln_threshold_accel a = {0};
    const char *name, *desc, *cc;
    if (!source)
        source = "<thresholds>";
    if (!json_is_object(doc)) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: expected a map at the top level", source);
        goto done;
    }
    static const char *const top[] = {"accelerator", "description", "aliases",
                                      "device",      "metrics",     NULL};
    if ((rc = check_keys(doc, top, source, "", err)))
        goto done;
    if ((rc = get_string(&name, doc, "accelerator", true, source, "", err)) ||
        (rc = get_string(&desc, doc, "description", false, source, "", err)))
        goto done;
    if ((rc = check_name(name, source, "accelerator", err)))
        goto done;
    a.name = kiln_xstrdup(name);
    a.description = kiln_xstrdup(desc ? desc : "");
    a.source = kiln_xstrdup(source);
    if ((rc = get_string_list(&a.aliases, &a.n_aliases, doc, "aliases", false, source, "", err)))
        goto done;
    for (size_t i = 0; i < a.n_aliases; i++) {
        char field[32];
        snprintf(field, sizeof(field), "aliases[%zu]", i);
        if ((rc = check_name(a.aliases[i], source, field, err)))
            goto done;
    }
    if (name_taken(cat, NULL, a.name)) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "%s: accelerator: \"%s\" is already defined (name or alias)", source,
                          a.name);
        goto done;
    }
    for (size_t i = 0; i < a.n_aliases; i++) {
        /* An alias may repeat neither the name, an earlier alias of this file,
         * nor anything of another file: lookups must have one answer. */
        bool dup = strcmp(a.aliases[i], a.name) == 0 || name_taken(cat, NULL, a.aliases[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a.aliases[j], a.aliases[i]) == 0)
                dup = true;
        if (dup) {
            rc = kiln_err_set(err, KILN_EINVAL,
                              "%s: aliases[%zu]: \"%s\" is already defined (name or alias)", source,
                              i, a.aliases[i]);
            goto done;
        }
    }

    json_t *dev = json_object_get(doc, "device");
    if (!dev) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: device: required field is missing", source);
        goto done;
    }
    if (!json_is_object(dev)) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: device: expected a map", source);
        goto done;
    }
    static const char *const devkeys[] = {"products", "computeCapability", "memoryGB",
                                          "memoryFloor", NULL};
    if ((rc = check_keys(dev, devkeys, source, "device", err)))
        goto done;
    if ((rc = get_string_list(&a.products, &a.n_products, dev, "products", true, source, "device",
                              err)))
        goto done;
    if ((rc = get_string(&cc, dev, "computeCapability", true, source, "device", err)))
        goto done;
    if (parse_cc(&a.cc_major, &a.cc_minor, cc) != 0) {
        rc = kiln_err_set(err, KILN_EINVAL,
                          "%s: device.computeCapability: \"%s\" is not MAJOR.MINOR (e.g. \"9.0\")",
                          source, cc);
        goto done;
    }
    if ((rc = get_number(&a.memory_gb, dev, "memoryGB", source, "device", err)) ||
        (rc = get_number(&a.memory_floor, dev, "memoryFloor", source, "device", err)))
        goto done;
    if (a.memory_gb <= 0) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: device.memoryGB: must be positive", source);
        goto done;
    }
    if (a.memory_floor <= 0 || a.memory_floor > 1) {
        rc =
            kiln_err_set(err, KILN_EINVAL, "%s: device.memoryFloor: %g is not a fraction in (0, 1]",
                         source, a.memory_floor);
        goto done;
    }
    json_t *metrics = json_object_get(doc, "metrics");
    if (!metrics) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: metrics: required field is missing", source);
        goto done;
    }
    if ((rc = parse_metrics(&a, metrics, source, err)))
        goto done;

    cat->items = kiln_xrealloc(cat->items, (cat->len + 1) * sizeof(*cat->items));
    cat->items[cat->len++] = a;
    memset(&a, 0, sizeof(a));
done:
    accel_free(&a);
    return rc;
}

int kiln_thresholds_add_yaml(kiln_thresholds *cat, const char *text, size_t len, const char *source,
                             kiln_err *err)
{
    json_t *docs = NULL;
    int rc = kiln_yaml_load(&docs, text, len, source, NULL, err);
    if (rc)
        goto done;
    if (json_array_size(docs) != 1) {
        rc = kiln_err_set(err, KILN_EINVAL, "%s: expected one YAML document, found %zu",
                          source ? source : "<thresholds>", json_array_size(docs));
        goto done;
    }
    rc = kiln_thresholds_add_json(cat, json_array_get(docs, 0), source, err);
done:
    json_decref(docs);
    return rc;
}

int kiln_thresholds_load_builtin(kiln_thresholds *cat, kiln_err *err)
{
    int rc = 0;
    cat->items = NULL;
    cat->len = 0;
    for (size_t i = 0; kiln_thresholds_builtin_files[i].name; i++) {
        const kiln_thresholds_file *f = &kiln_thresholds_builtin_files[i];
        if ((rc = kiln_thresholds_add_yaml(cat, f->text, strlen(f->text), f->name, err)))
            goto done;
    }
    if (cat->len == 0)
        rc = kiln_err_set(err, KILN_ENOTFOUND, "no thresholds were compiled in");
done:
    if (rc)
        kiln_thresholds_free(cat);
    return rc;
}

static int add_file(kiln_thresholds *cat, const char *path, const char *display, kiln_err *err)
{
    kiln_buf b;
    kiln_buf_init(&b, THRESHOLDS_FILE_LIMIT);
    int rc = kiln_buf_read_file(&b, path, err);
    if (rc) {
        kiln_err_prefix(err, "%s", display);
        goto done;
    }
    rc = kiln_thresholds_add_yaml(cat, b.data ? b.data : "", b.len, display, err);
done:
    kiln_buf_free(&b);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int kiln_thresholds_load_path(kiln_thresholds *cat, const char *path, kiln_err *err)
{
    int rc = 0;
    DIR *d = NULL;
    char **names = NULL;
    size_t n = 0;
    struct stat st;
    cat->items = NULL;
    cat->len = 0;
    if (stat(path, &st) != 0) {
        rc = kiln_err_set(err, KILN_ENOTFOUND, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = add_file(cat, path, path, err);
        goto done;
    }
    d = opendir(path);
    if (!d) {
        rc = kiln_err_set(err, KILN_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0 && e->d_name[0] != '.') {
            names = kiln_xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = kiln_xstrdup(e->d_name);
        }
    }
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *full = kiln_xasprintf("%s/%s", path, names[i]);
        rc = add_file(cat, full, full, err);
        kiln_xfree(full);
        if (rc)
            goto done;
    }
    if (cat->len == 0)
        rc = kiln_err_set(err, KILN_ENOTFOUND, "%s: no *.yaml thresholds files", path);
done:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        kiln_xfree(names[i]);
    kiln_xfree(names);
    if (rc)
        kiln_thresholds_free(cat);
    return rc;
}

const kiln_threshold_accel *kiln_thresholds_find(const kiln_thresholds *cat, const char *name)
{
    char norm[128];
    if (!cat || !name || strlen(name) >= sizeof(norm))
        return NULL;
    kiln_thresholds_normalize(norm, sizeof(norm), name);
    for (size_t i = 0; i < cat->len; i++)
        if (strcmp(cat->items[i].name, norm) == 0)
            return &cat->items[i];
    for (size_t i = 0; i < cat->len; i++)
        for (size_t j = 0; j < cat->items[i].n_aliases; j++)
            if (strcmp(cat->items[i].aliases[j], norm) == 0)
                return &cat->items[i];
    return NULL;
}

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return false;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

bool kiln_thresholds_product_matches(const kiln_threshold_accel *acc, const char *device_name)
{
    if (!acc || !device_name)
        return false;
    for (size_t i = 0; i < acc->n_products; i++)
        if (contains_nocase(device_name, acc->products[i]))
            return true;
    return false;
}

const kiln_threshold_accel *kiln_thresholds_match_product(const kiln_thresholds *cat,
                                                          const char *device_name)
{
    const kiln_threshold_accel *found = NULL;
    for (size_t i = 0; cat && i < cat->len; i++) {
        if (kiln_thresholds_product_matches(&cat->items[i], device_name)) {
            if (found)
                return NULL;
            found = &cat->items[i];
        }
    }
    return found;
}

const kiln_threshold_metric *kiln_thresholds_metric(const kiln_threshold_accel *acc,
                                                    const char *check, const char *name)
{
    for (size_t i = 0; acc && i < acc->n_metrics; i++)
        if (strcmp(acc->metrics[i].check, check) == 0 && strcmp(acc->metrics[i].name, name) == 0)
            return &acc->metrics[i];
    return NULL;
}
