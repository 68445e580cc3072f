/* recipes/recipes.c: loading the lock data and resolving criteria.
 *
 * The data is small (tens of components, a few dozen overlays), so the
 * resolver favours plain loops over indexes: every quadratic step is bounded
 * by those counts.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/yaml.h"
#include "recipes/recipes.h"

const char *const kiln_recipes_criteria[KILN_RECIPES_NCRITERIA] = {"service", "accelerator", "os",
                                                                   "intent", "platform"};

#define API_VERSION "recipes.kiln.dev/v1alpha1"
/* Longer criterion values than this are refused before they reach a message. */
#define VALUE_MAX 63
/* Longest chain of bases, root included; checked at load so resolving can
 * walk a chain into a fixed array. */
#define CHAIN_MAX 64

struct kiln_recipes {
    json_t *criteria;   /* registry criteria: name -> {required, values, aliases} */
    json_t *components; /* registry: name -> component object */
    json_t *order;      /* component names in registry order */
    json_t *overlays;   /* [{name, base, criteria, description, constraints, components,
                           validation}] in file order */
};

void kiln_recipes_free(kiln_recipes *r)
{
    if (r == NULL)
        return;
    json_decref(r->criteria);
    json_decref(r->components);
    json_decref(r->order);
    json_decref(r->overlays);
    kiln_xfree(r);
}

static bool str_in(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* Appends the strings of list joined by ", " to buf (size n). */
static void join(char *buf, size_t n, const json_t *list)
{
    size_t i, used = strlen(buf);
    json_t *v;
    json_array_foreach(list, i, v)
    {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", json_string_value(v));
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
    }
}

static json_t *overlay_named(const kiln_recipes *r, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(r->overlays, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return o;
    }
    return NULL;
}

static const char *ov_name(const json_t *o)
{
    return json_string_value(json_object_get(o, "name"));
}

static const char *ov_base(const json_t *o)
{
    return json_string_value(json_object_get(o, "base")); /* NULL for the root */
}

/* ---- loading ---- */

static int check_string_list(const json_t *v, const char *what, kiln_err *err)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v))
        return kiln_err_set(err, KILN_EINVAL, "%s: expected a list of strings", what);
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s))
            return kiln_err_set(err, KILN_EINVAL, "%s[%zu]: expected string", what, i);
    }
    return 0;
}

static int load_criteria(kiln_recipes *r, const json_t *crit, kiln_err *err)
{
    if (!json_is_object(crit))
        return kiln_err_set(err, KILN_EINVAL, "ComponentRegistry.criteria: expected a map");
    const char *key;
    json_t *c;
    json_object_foreach((json_t *)crit, key, c)
    {
        bool known = false;
        for (int i = 0; i < KILN_RECIPES_NCRITERIA; i++)
            known = known || strcmp(key, kiln_recipes_criteria[i]) == 0;
        if (!known)
            return kiln_err_set(err, KILN_EINVAL,
                                "ComponentRegistry.criteria.%s: unknown criterion", key);
    }
    for (int i = 0; i < KILN_RECIPES_NCRITERIA; i++) {
        const char *name = kiln_recipes_criteria[i];
        char what[96];
        c = json_object_get(crit, name);
        if (!json_is_object(c))
            return kiln_err_set(err, KILN_EINVAL, "ComponentRegistry.criteria.%s: missing", name);
        snprintf(what, sizeof what, "ComponentRegistry.criteria.%s.values", name);
        int rc = check_string_list(json_object_get(c, "values"), what, err);
        if (rc < 0)
            return rc;
        json_t *aliases = json_object_get(c, "aliases");
        json_t *target;
        const char *alias;
        if (aliases && !json_is_object(aliases))
            return kiln_err_set(err, KILN_EINVAL,
                                "ComponentRegistry.criteria.%s.aliases: expected a map", name);
        json_object_foreach(aliases, alias, target)
        {
            if (!json_is_string(target) ||
                !str_in(json_object_get(c, "values"), json_string_value(target)))
                return kiln_err_set(
                    err, KILN_EINVAL,
                    "ComponentRegistry.criteria.%s.aliases.%s: not one of the values", name, alias);
        }
    }
    r->criteria = json_deep_copy(crit);
    return 0;
}

/* The fields of a component; an overlay's component entry may also say
 * enabled. A misspelt field is an error, not a silently ignored pin. */
static const char *const component_fields[] = {
    "name",   "type",         "repository", "chart",      "path",    "version", "namespace",
    "values", "dependencies", "health",     "scheduling", "enabled", NULL};

static const char *unknown_field(const json_t *obj, bool overlay)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool known = false;
        for (const char *const *f = component_fields; *f; f++)
            known = known || (strcmp(key, *f) == 0 && (overlay || strcmp(*f, "enabled") != 0));
        if (!known)
            return key;
    }
    return NULL;
}

static int load_component(kiln_recipes *r, const json_t *c, size_t idx, kiln_err *err)
{
    const char *name = kiln_json_get_string(c, "name");
    if (!json_is_object(c) || name == NULL || name[0] == '\0')
        return kiln_err_set(err, KILN_EINVAL, "ComponentRegistry.components[%zu]: needs a name",
                            idx);
    const char *bad = unknown_field(c, false);
    if (bad)
        return kiln_err_set(err, KILN_EINVAL, "component %s: %.60s: unknown field", name, bad);
    if (json_object_get(r->components, name))
        return kiln_err_set(err, KILN_EINVAL, "ComponentRegistry.components[%zu]: duplicate \"%s\"",
                            idx, name);
    const char *type = kiln_json_get_string(c, "type");
    if (type == NULL || (strcmp(type, "helm") != 0 && strcmp(type, "git") != 0))
        return kiln_err_set(err, KILN_EINVAL, "component %s: type must be helm or git", name);
    static const char *const required[] = {"repository", "version", "namespace"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        if (kiln_json_get_string(c, required[i]) == NULL)
            return kiln_err_set(err, KILN_EINVAL, "component %s: %s is required", name,
                                required[i]);
    }
    const char *src = strcmp(type, "helm") == 0 ? "chart" : "path";
    if (kiln_json_get_string(c, src) == NULL)
        return kiln_err_set(err, KILN_EINVAL, "component %s: a %s component needs %s", name, type,
                            src);
    json_t *deps = json_object_get(c, "dependencies");
    if (deps) {
        char what[128];
        snprintf(what, sizeof what, "component %s: dependencies", name);
        int rc = check_string_list(deps, what, err);
        if (rc < 0)
            return rc;
    }
    json_t *values = json_object_get(c, "values");
    if (values && !json_is_object(values))
        return kiln_err_set(err, KILN_EINVAL, "component %s: values must be a map", name);
    json_object_set_new(r->components, name, json_deep_copy(c));
    json_array_append_new(r->order, json_string(name));
    return 0;
}

/* Checks a criteria map of an overlay: known names, known values. */
static int check_overlay_criteria(const kiln_recipes *r, const char *ov, const json_t *crit,
                                  kiln_err *err)
{
    const char *key;
    json_t *v;
    if (!json_is_object(crit))
        return kiln_err_set(err, KILN_EINVAL, "overlay %s: criteria must be a map", ov);
    json_object_foreach((json_t *)crit, key, v)
    {
        json_t *c = json_object_get(r->criteria, key);
        if (c == NULL)
            return kiln_err_set(err, KILN_EINVAL, "overlay %s: unknown criterion \"%s\"", ov, key);
        if (!json_is_string(v) || !str_in(json_object_get(c, "values"), json_string_value(v)))
            return kiln_err_set(err, KILN_EINVAL, "overlay %s: criteria.%s is not a known value",
                                ov, key);
    }
    return 0;
}

static int load_overlay(kiln_recipes *r, const json_t *doc, kiln_err *err)
{
    const char *name = kiln_json_get_string(doc, "metadata.name");
    const json_t *spec = json_object_get(doc, "spec");
    if (name == NULL || name[0] == '\0')
        return kiln_err_set(err, KILN_EINVAL, "RecipeOverlay without metadata.name");
    if (spec && !json_is_object(spec))
        return kiln_err_set(err, KILN_EINVAL, "overlay %s: spec must be a map", name);
    if (overlay_named(r, name))
        return kiln_err_set(err, KILN_EINVAL, "overlay %s: defined twice", name);
    static const char *const fields[] = {"base",        "criteria",   "description",
                                         "constraints", "components", "validation"};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)spec, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
            known = known || strcmp(key, fields[i]) == 0;
        if (!known)
            return kiln_err_set(err, KILN_EINVAL, "overlay %s: spec.%s: unknown field", name, key);
    }
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    const char *base = kiln_json_get_string(spec, "base");
    if (strcmp(name, "base") != 0)
        json_object_set_new(o, "base", json_string(base ? base : "base"));
    else if (base || json_object_size(json_object_get(spec, "criteria")) > 0) {
        json_decref(o);
        return kiln_err_set(err, KILN_EINVAL,
                            "overlay base: the root has no parent and no criteria");
    }
    json_t *crit = json_object_get(spec, "criteria");
    int rc = crit ? check_overlay_criteria(r, name, crit, err) : 0;
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    json_object_set_new(o, "criteria", crit ? json_deep_copy(crit) : json_object());
    const char *desc = kiln_json_get_string(spec, "description");
    json_object_set_new(o, "description", json_string(desc ? desc : ""));
    json_t *cons = json_object_get(spec, "constraints");
    json_t *comps = json_object_get(spec, "components");
    json_t *val = json_object_get(spec, "validation");
    size_t i;
    json_t *item;
    if ((cons && !json_is_array(cons)) || (comps && !json_is_array(comps)) ||
        (val && !json_is_object(val))) {
        json_decref(o);
        return kiln_err_set(err, KILN_EINVAL,
                            "overlay %s: constraints and components are lists, validation a map",
                            name);
    }
    json_array_foreach(cons, i, item)
    {
        if (!json_is_string(json_object_get(item, "name")) ||
            !json_is_string(json_object_get(item, "value"))) {
            json_decref(o);
            return kiln_err_set(err, KILN_EINVAL,
                                "overlay %s: constraints[%zu] needs a name and a string value",
                                name, i);
        }
    }
    json_array_foreach(comps, i, item)
    {
        const char *cn = kiln_json_get_string(item, "name");
        if (cn == NULL || json_object_get(r->components, cn) == NULL) {
            json_decref(o);
            return kiln_err_set(err, KILN_EINVAL,
                                "overlay %s: components[%zu]: \"%s\" is not in the registry", name,
                                i, cn ? cn : "");
        }
        const char *bad = unknown_field(item, true);
        if (bad) {
            json_decref(o);
            return kiln_err_set(err, KILN_EINVAL,
                                "overlay %s: components[%zu].%.60s: unknown field", name, i, bad);
        }
        json_t *values = json_object_get(item, "values");
        json_t *en = json_object_get(item, "enabled");
        if ((values && !json_is_object(values)) || (en && !json_is_boolean(en))) {
            json_decref(o);
            return kiln_err_set(
                err, KILN_EINVAL,
                "overlay %s: components[%zu]: values must be a map, enabled a boolean", name, i);
        }
    }
    json_object_set_new(o, "constraints", cons ? json_deep_copy(cons) : json_array());
    json_object_set_new(o, "components", comps ? json_deep_copy(comps) : json_array());
    json_object_set_new(o, "validation", val ? json_deep_copy(val) : json_object());
    json_array_append_new(r->overlays, o);
    return 0;
}

/* Every parent exists and no chain loops; at most one step per overlay. */
static int check_chains(const kiln_recipes *r, kiln_err *err)
{
    size_t i, n = json_array_size(r->overlays);
    json_t *o;
    if (overlay_named(r, "base") == NULL)
        return kiln_err_set(err, KILN_EINVAL, "lock data has no overlay named base");
    json_array_foreach(r->overlays, i, o)
    {
        const json_t *cur = o;
        size_t steps = 0;
        while (ov_base(cur)) {
            const json_t *parent = overlay_named(r, ov_base(cur));
            if (parent == NULL)
                return kiln_err_set(err, KILN_EINVAL, "overlay %s: base \"%s\" does not exist",
                                    ov_name(cur), ov_base(cur));
            if (++steps > n)
                return kiln_err_set(err, KILN_EINVAL, "overlay %s: its chain of bases loops",
                                    ov_name(o));
            if (steps >= CHAIN_MAX)
                return kiln_err_set(err, KILN_EINVAL,
                                    "overlay %s: its chain of bases is longer than %d", ov_name(o),
                                    CHAIN_MAX);
            cur = parent;
        }
    }
    return 0;
}

static int check_dependencies(const kiln_recipes *r, kiln_err *err)
{
    const char *name;
    json_t *c;
    json_object_foreach(r->components, name, c)
    {
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(c, "dependencies"), i, d)
        {
            if (json_object_get(r->components, json_string_value(d)) == NULL)
                return kiln_err_set(err, KILN_EINVAL,
                                    "component %s: dependency \"%s\" is not in the registry", name,
                                    json_string_value(d));
        }
    }
    return 0;
}

int kiln_recipes_load(kiln_recipes **out, const json_t *docs, kiln_err *err)
{
    kiln_recipes *r = kiln_xcalloc(1, sizeof *r);
    const json_t *registry = NULL;
    size_t i;
    json_t *doc;
    int rc = 0;

    *out = NULL;
    r->components = json_object();
    r->order = json_array();
    r->overlays = json_array();
    if (!json_is_array(docs)) {
        rc = kiln_err_set(err, KILN_EINVAL, "lock data: expected a list of documents");
        goto out;
    }
    json_array_foreach(docs, i, doc)
    {
        const char *api = kiln_json_get_string(doc, "apiVersion");
        const char *kind = kiln_json_get_string(doc, "kind");
        if (api == NULL || strcmp(api, API_VERSION) != 0 || kind == NULL) {
            rc = kiln_err_set(err, KILN_EINVAL, "lock data document %zu: apiVersion must be %s", i,
                              API_VERSION);
            goto out;
        }
        if (strcmp(kind, "ComponentRegistry") == 0) {
            if (registry) {
                rc =
                    kiln_err_set(err, KILN_EINVAL, "lock data has two ComponentRegistry documents");
                goto out;
            }
            registry = doc;
        } else if (strcmp(kind, "RecipeOverlay") != 0) {
            rc = kiln_err_set(err, KILN_EINVAL, "lock data document %zu: unknown kind \"%s\"", i,
                              kind);
            goto out;
        }
    }
    if (registry == NULL) {
        rc = kiln_err_set(err, KILN_EINVAL, "lock data has no ComponentRegistry");
        goto out;
    }
    if ((rc = load_criteria(r, json_object_get(registry, "criteria"), err)) < 0)
        goto out;
    json_t *comps = json_object_get(registry, "components");
    if (!json_is_array(comps)) {
        rc = kiln_err_set(err, KILN_EINVAL, "ComponentRegistry.components: expected a list");
        goto out;
    }
    json_array_foreach(comps, i, doc)
    {
        if ((rc = load_component(r, doc, i, err)) < 0)
            goto out;
    }
    if ((rc = check_dependencies(r, err)) < 0)
        goto out;
    json_array_foreach(docs, i, doc)
    {
        if (strcmp(kiln_json_get_string(doc, "kind"), "RecipeOverlay") == 0 &&
            (rc = load_overlay(r, doc, err)) < 0)
            goto out;
    }
    rc = check_chains(r, err);
out:
    if (rc < 0)
        kiln_recipes_free(r);
    else
        *out = r;
    return rc;
}

/* ---- the built-in data ---- */

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static kiln_recipes *builtin;
static kiln_err builtin_err;

static void load_builtin(void)
{
    json_t *all = json_array();
    for (const kiln_recipes_file *f = kiln_recipes_builtin_files; f->name; f++) {
        json_t *docs = NULL;
        if (kiln_yaml_load(&docs, f->text, strlen(f->text), f->name, NULL, &builtin_err) < 0)
            goto out;
        json_array_extend(all, docs);
        json_decref(docs);
    }
    if (kiln_recipes_load(&builtin, all, &builtin_err) < 0)
        kiln_err_prefix(&builtin_err, "embedded lock data");
out:
    json_decref(all);
}

const kiln_recipes *kiln_recipes_builtin(kiln_err *err)
{
    pthread_once(&builtin_once, load_builtin);
    if (builtin == NULL && err)
        *err = builtin_err;
    return builtin;
}

/* ---- resolving ---- */

/* Deep merge of src (borrowed) into dst: maps merge key by key, anything
 * else (lists, scalars, null) replaces. */
static void deep_merge(json_t *dst, const json_t *src)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v)
    {
        json_t *cur = json_object_get(dst, key);
        if (json_is_object(cur) && json_is_object(v))
            deep_merge(cur, v);
        else
            json_object_set_new(dst, key, json_deep_copy(v));
    }
}

/* Normalises the query into q (criterion -> value; absent when not given). */
static int normalise(json_t *q, const kiln_recipes *r, const json_t *criteria, kiln_err *err)
{
    const char *key;
    json_t *v;
    if (!json_is_object(criteria))
        return kiln_err_set(err, KILN_EINVAL, "criteria: expected a map");
    json_object_foreach((json_t *)criteria, key, v)
    {
        if (json_object_get(r->criteria, key) == NULL)
            return kiln_err_set(err, KILN_EINVAL,
                                "unknown criterion \"%.40s\" (known: service, accelerator, os, "
                                "intent, platform)",
                                key);
        if (!json_is_string(v) && !json_is_null(v))
            return kiln_err_set(err, KILN_EINVAL, "criterion %s: expected a string, got %s", key,
                                kiln_json_type_name(v));
    }
    for (int i = 0; i < KILN_RECIPES_NCRITERIA; i++) {
        const char *name = kiln_recipes_criteria[i];
        const json_t *c = json_object_get(r->criteria, name);
        const char *given = json_string_value(json_object_get(criteria, name));
        char known[160] = "";
        join(known, sizeof known, json_object_get(c, "values"));
        if (given == NULL || given[0] == '\0' || strcmp(given, "any") == 0) {
            if (json_is_true(json_object_get(c, "required")))
                return kiln_err_set(err, KILN_EINVAL, "criterion %s is required (one of: %s)", name,
                                    known);
            continue;
        }
        char low[VALUE_MAX + 1];
        size_t n = strlen(given);
        if (n > VALUE_MAX)
            return kiln_err_set(err, KILN_EINVAL, "criterion %s: value is longer than %d bytes",
                                name, VALUE_MAX);
        for (size_t k = 0; k <= n; k++)
            low[k] = (char)tolower((unsigned char)given[k]);
        const char *alias = kiln_json_get_string(json_object_get(c, "aliases"), low);
        const char *value = alias ? alias : low;
        if (!str_in(json_object_get(c, "values"), value))
            return kiln_err_set(err, KILN_EINVAL, "criterion %s: unknown value \"%s\" (known: %s)",
                                name, given, known);
        json_object_set_new(q, name, json_string(value));
    }
    return 0;
}

/* An overlay matches when each criterion it names equals the query's; a
 * criterion the query leaves out matches only overlays that leave it out
 * too (AICR's asymmetric rule). The root never "matches": it comes with
 * every chain. */
static bool matches(const json_t *o, const json_t *q)
{
    const char *key;
    json_t *v;
    if (ov_base(o) == NULL)
        return false;
    json_object_foreach(json_object_get(o, "criteria"), key, v)
    {
        const char *want = json_string_value(json_object_get(q, key));
        if (want == NULL || strcmp(want, json_string_value(v)) != 0)
            return false;
    }
    return true;
}

/* "service=eks accelerator=h100" for an overlay's criteria, in the fixed order. */
static void describe_criteria(char *buf, size_t n, const json_t *crit)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < KILN_RECIPES_NCRITERIA; i++) {
        const char *v = json_string_value(json_object_get(crit, kiln_recipes_criteria[i]));
        if (v == NULL)
            continue;
        int w =
            snprintf(buf + used, n - used, "%s%s=%s", used ? " " : "", kiln_recipes_criteria[i], v);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
    }
    if (used == 0)
        snprintf(buf, n, "every query");
}

/* A criterion the query gives that no matched overlay names: the error says
 * which overlays name that value and what kept them out. */
static int unmatched(const kiln_recipes *r, const json_t *q, const char *name, const char *value,
                     kiln_err *err)
{
    char why[200] = "";
    size_t used = 0, i;
    json_t *o;
    json_t *named = json_array();
    json_array_foreach(r->overlays, i, o)
    {
        const char *v = json_string_value(json_object_get(json_object_get(o, "criteria"), name));
        if (v == NULL)
            continue;
        if (!str_in(named, v))
            json_array_append_new(named, json_string(v));
        if (strcmp(v, value) != 0)
            continue;
        /* The first criterion of this overlay that the query does not meet. */
        for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
            const char *c = kiln_recipes_criteria[k];
            const char *need =
                json_string_value(json_object_get(json_object_get(o, "criteria"), c));
            const char *have = json_string_value(json_object_get(q, c));
            if (need && (have == NULL || strcmp(need, have) != 0)) {
                int w = snprintf(why + used, sizeof why - used, "%s%s needs %s=%s",
                                 used ? "; " : "", ov_name(o), c, need);
                if (w > 0 && (size_t)w < sizeof why - used)
                    used += (size_t)w;
                break;
            }
        }
    }
    int rc;
    if (used > 0) {
        rc = kiln_err_set(err, KILN_ENOTFOUND, "criterion %s=%s matched no overlay (%s)", name,
                          value, why);
    } else {
        char have[160] = "";
        join(have, sizeof have, named);
        rc = kiln_err_set(err, KILN_ENOTFOUND,
                          "criterion %s=%s matched no overlay (overlays exist for %s: %s)", name,
                          value, name, have[0] ? have : "none");
    }
    json_decref(named);
    return rc;
}

static bool in_chain(const kiln_recipes *r, const json_t *o, const char *name)
{
    for (const json_t *cur = o; cur; cur = ov_base(cur) ? overlay_named(r, ov_base(cur)) : NULL) {
        if (strcmp(ov_name(cur), name) == 0)
            return true;
    }
    return false;
}

/* Two matched overlays, neither in the other's chain, cannot both decide
 * something: the same criteria, or a different pin of one component. */
static int check_ambiguity(const kiln_recipes *r, const json_t *matched, kiln_err *err)
{
    static const char *const pins[] = {"version", "chart", "repository", "path", "namespace"};
    size_t i, j, n = json_array_size(matched);
    for (i = 0; i < n; i++) {
        const json_t *a = json_array_get(matched, i);
        for (j = i + 1; j < n; j++) {
            const json_t *b = json_array_get(matched, j);
            if (in_chain(r, a, ov_name(b)) || in_chain(r, b, ov_name(a)))
                continue;
            char ca[96], cb[96];
            describe_criteria(ca, sizeof ca, json_object_get(a, "criteria"));
            describe_criteria(cb, sizeof cb, json_object_get(b, "criteria"));
            if (kiln_json_equal(json_object_get(a, "criteria"), json_object_get(b, "criteria")))
                return kiln_err_set(err, KILN_ECONFLICT,
                                    "criteria are ambiguous: overlays %s and %s both match %s",
                                    ov_name(a), ov_name(b), ca);
            size_t x, y;
            json_t *ea, *eb;
            json_array_foreach(json_object_get(a, "components"), x, ea)
            {
                json_array_foreach(json_object_get(b, "components"), y, eb)
                {
                    if (strcmp(kiln_json_get_string(ea, "name"), kiln_json_get_string(eb, "name")))
                        continue;
                    for (size_t p = 0; p < sizeof pins / sizeof *pins; p++) {
                        const char *va = kiln_json_get_string(ea, pins[p]);
                        const char *vb = kiln_json_get_string(eb, pins[p]);
                        if (va && vb && strcmp(va, vb) != 0)
                            return kiln_err_set(
                                err, KILN_ECONFLICT,
                                "criteria are ambiguous: overlay %s (%s) pins %s %s %s and "
                                "overlay %s (%s) pins %s",
                                ov_name(a), ca, kiln_json_get_string(ea, "name"), pins[p], va,
                                ov_name(b), cb, vb);
                    }
                }
            }
        }
    }
    return 0;
}

/* Orders matched overlays by how many criteria they name, then by name, so
 * general overlays apply before specific ones. */
static int by_specificity(const void *pa, const void *pb)
{
    const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
    size_t na = json_object_size(json_object_get(a, "criteria"));
    size_t nb = json_object_size(json_object_get(b, "criteria"));
    if (na != nb)
        return na < nb ? -1 : 1;
    return strcmp(ov_name(a), ov_name(b));
}

typedef struct state {
    json_t *comps;       /* name -> merged component */
    json_t *order;       /* names in first-seen order */
    json_t *constraints; /* name -> value */
    json_t *validation;
    json_t *applied; /* [{name, reason}] */
} state;

static void apply(const kiln_recipes *r, state *s, const json_t *o, const char *reason)
{
    size_t i;
    json_t *item;
    json_t *entry = json_object();
    json_object_set_new(entry, "name", json_string(ov_name(o)));
    json_object_set_new(entry, "reason", json_string(reason));
    json_array_append_new(s->applied, entry);
    json_array_foreach(json_object_get(o, "constraints"), i, item)
    {
        json_object_set(s->constraints, kiln_json_get_string(item, "name"),
                        json_object_get(item, "value"));
    }
    json_array_foreach(json_object_get(o, "components"), i, item)
    {
        const char *name = kiln_json_get_string(item, "name");
        json_t *c = json_object_get(s->comps, name);
        if (c == NULL) {
            c = json_deep_copy(json_object_get(r->components, name));
            json_object_set_new(s->comps, name, c);
            json_array_append_new(s->order, json_string(name));
        }
        const char *key;
        json_t *v;
        json_object_foreach(item, key, v)
        {
            if (strcmp(key, "name") == 0)
                continue;
            if (strcmp(key, "values") == 0) {
                json_t *cur = json_object_get(c, "values");
                if (cur == NULL) {
                    cur = json_object();
                    json_object_set_new(c, "values", cur);
                }
                deep_merge(cur, v);
            } else {
                json_object_set_new(c, key, json_deep_copy(v));
            }
        }
    }
    deep_merge(s->validation, json_object_get(o, "validation"));
}

/* Kahn's algorithm; among ready components the alphabetically first goes
 * next (AICR's tie-break), so the order is deterministic. */
static int topo_sort(json_t *sorted, const json_t *comps, kiln_err *err)
{
    size_t n = json_object_size(comps);
    while (json_array_size(sorted) < n) {
        const char *pick = NULL, *name;
        json_t *c;
        json_object_foreach((json_t *)comps, name, c)
        {
            if (str_in(sorted, name))
                continue;
            bool ready = true;
            size_t i;
            json_t *d;
            json_array_foreach(json_object_get(c, "dependencies"), i, d)
            {
                ready = ready && str_in(sorted, json_string_value(d));
            }
            if (ready && (pick == NULL || strcmp(name, pick) < 0))
                pick = name;
        }
        if (pick == NULL)
            return kiln_err_set(err, KILN_EINVAL, "component dependencies form a cycle");
        json_array_append_new(sorted, json_string(pick));
    }
    return 0;
}

int kiln_recipes_resolve(json_t **out, const kiln_recipes *r, const json_t *criteria, kiln_err *err)
{
    json_t *q = json_object();
    json_t *matched = json_array();
    json_t *sorted = json_array();
    json_t *result = NULL;
    const json_t **list = NULL;
    state s = {json_object(), json_array(), json_object(), json_object(), json_array()};
    size_t i;
    json_t *o;
    int rc;

    *out = NULL;
    if ((rc = normalise(q, r, criteria, err)) < 0)
        goto out;
    json_array_foreach(r->overlays, i, o)
    {
        if (matches(o, q))
            json_array_append(matched, o);
    }
    /* Fail closed: every criterion given must have been decided by an overlay
     * that names it, or the query would silently get a more general recipe. */
    for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
        const char *name = kiln_recipes_criteria[k];
        const char *value = json_string_value(json_object_get(q, name));
        bool hit = value == NULL;
        json_array_foreach(matched, i, o)
        {
            hit = hit || json_object_get(json_object_get(o, "criteria"), name) != NULL;
        }
        if (!hit) {
            rc = unmatched(r, q, name, value, err);
            goto out;
        }
    }
    if ((rc = check_ambiguity(r, matched, err)) < 0)
        goto out;

    size_t n = json_array_size(matched);
    list = kiln_xcalloc(n ? n : 1, sizeof *list);
    for (i = 0; i < n; i++)
        list[i] = json_array_get(matched, i);
    qsort(list, n, sizeof *list, by_specificity);
    for (i = 0; i < n; i++) {
        /* The chain root first: collect, then apply in reverse. */
        const json_t *chain[CHAIN_MAX];
        size_t len = 0;
        for (const json_t *cur = list[i]; cur && len < CHAIN_MAX;
             cur = ov_base(cur) ? overlay_named(r, ov_base(cur)) : NULL)
            chain[len++] = cur;
        while (len-- > 0) {
            const json_t *c = chain[len];
            size_t k;
            json_t *e;
            bool done = false;
            json_array_foreach(s.applied, k, e)
            {
                done = done || strcmp(kiln_json_get_string(e, "name"), ov_name(c)) == 0;
            }
            if (done)
                continue;
            char reason[160];
            if (c == list[i]) {
                char crit[120];
                describe_criteria(crit, sizeof crit, json_object_get(c, "criteria"));
                snprintf(reason, sizeof reason, "matches %s", crit);
            } else if (ov_base(c) == NULL) {
                snprintf(reason, sizeof reason, "root of every recipe");
            } else {
                snprintf(reason, sizeof reason, "base of %s", ov_name(chain[len - 1]));
            }
            apply(r, &s, c, reason);
        }
    }

    /* enabled: false drops a component; nothing may still depend on it. */
    const char *name;
    json_t *c, *tmp;
    json_object_foreach_safe(s.comps, tmp, name, c)
    {
        if (json_is_false(json_object_get(c, "enabled")))
            json_object_del(s.comps, name);
        else
            json_object_del(c, "enabled");
    }
    json_object_foreach(s.comps, name, c)
    {
        json_t *d;
        json_array_foreach(json_object_get(c, "dependencies"), i, d)
        {
            if (json_object_get(s.comps, json_string_value(d)) == NULL) {
                rc = kiln_err_set(err, KILN_EINVAL,
                                  "component %s depends on %s, which this recipe does not include",
                                  name, json_string_value(d));
                goto out;
            }
        }
    }
    if ((rc = topo_sort(sorted, s.comps, err)) < 0)
        goto out;

    result = json_object();
    json_object_set(result, "criteria", q);
    json_object_set(result, "overlays", s.applied);
    json_t *cons = json_array();
    size_t ncons = 0;
    const char **keys = kiln_json_sorted_keys(&ncons, s.constraints);
    for (i = 0; i < ncons; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(keys[i]));
        json_object_set(e, "value", json_object_get(s.constraints, keys[i]));
        json_array_append_new(cons, e);
    }
    kiln_xfree(keys);
    json_object_set_new(result, "constraints", cons);
    json_t *comps = json_array();
    json_array_foreach(sorted, i, o)
    {
        c = json_object_get(s.comps, json_string_value(o));
        if (json_object_get(c, "dependencies") == NULL)
            json_object_set_new(c, "dependencies", json_array());
        if (json_object_get(c, "values") == NULL)
            json_object_set_new(c, "values", json_object());
        json_array_append(comps, c);
    }
    json_object_set_new(result, "components", comps);
    json_object_set(result, "deploymentOrder", sorted);
    json_object_set(result, "validation", s.validation);
    *out = result;
    rc = 0;
out:
    kiln_xfree(list);
    json_decref(q);
    json_decref(matched);
    json_decref(sorted);
    json_decref(s.comps);
    json_decref(s.order);
    json_decref(s.constraints);
    json_decref(s.validation);
    json_decref(s.applied);
    return rc;
}

/* ---- the catalog ---- */

json_t *kiln_recipes_catalog(const kiln_recipes *r)
{
    json_t *cat = json_object();
    json_t *crit = json_object();
    for (int k = 0; k < KILN_RECIPES_NCRITERIA; k++) {
        const char *name = kiln_recipes_criteria[k];
        const json_t *c = json_object_get(r->criteria, name);
        json_t *e = json_object();
        json_t *resolvable = json_array();
        size_t i;
        json_t *v;
        json_object_set_new(e, "required",
                            json_boolean(json_is_true(json_object_get(c, "required"))));
        json_object_set_new(e, "values", json_deep_copy(json_object_get(c, "values")));
        json_object_set_new(e, "aliases",
                            json_object_get(c, "aliases")
                                ? json_deep_copy(json_object_get(c, "aliases"))
                                : json_object());
        json_array_foreach(json_object_get(c, "values"), i, v)
        {
            size_t j;
            json_t *o;
            bool named = false;
            json_array_foreach(r->overlays, j, o)
            {
                const char *ov =
                    json_string_value(json_object_get(json_object_get(o, "criteria"), name));
                named = named || (ov && strcmp(ov, json_string_value(v)) == 0);
            }
            if (named)
                json_array_append(resolvable, v);
        }
        json_object_set_new(e, "resolvable", resolvable);
        json_object_set_new(crit, name, e);
    }
    json_object_set_new(cat, "criteria", crit);
    json_t *ovs = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(r->overlays, i, o)
    {
        json_t *e = json_object();
        json_object_set(e, "name", json_object_get(o, "name"));
        if (ov_base(o))
            json_object_set(e, "base", json_object_get(o, "base"));
        json_object_set(e, "criteria", json_object_get(o, "criteria"));
        json_object_set(e, "description", json_object_get(o, "description"));
        json_array_append_new(ovs, e);
    }
    json_object_set_new(cat, "overlays", ovs);
    json_t *comps = json_array();
    json_array_foreach(r->order, i, o)
    {
        const json_t *c = json_object_get(r->components, json_string_value(o));
        static const char *const fields[] = {"name", "type",    "repository", "chart",
                                             "path", "version", "namespace"};
        json_t *e = json_object();
        for (size_t k = 0; k < sizeof fields / sizeof *fields; k++) {
            json_t *v = json_object_get(c, fields[k]);
            if (v)
                json_object_set(e, fields[k], v);
        }
        json_array_append_new(comps, e);
    }
    json_object_set_new(cat, "components", comps);
    return cat;
}
