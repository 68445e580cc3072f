/* recipes/recipes.h: version-locked cluster runtimes chosen by criteria.
 *
 * The lock data (recipes/runtime/ YAML files) has two kinds of documents: one
 * ComponentRegistry (the criteria kiln knows and what each component is: chart,
 * repository, pinned version, namespace, values, dependencies, health, node
 * scheduling paths) and RecipeOverlays (criteria, one parent, component
 * changes, constraints, validation settings). It is embedded in the library,
 * so a deployed binary needs no data files.
 *
 * Resolving criteria {service, accelerator, os, intent, platform} follows
 * NVIDIA AICR's model: an overlay matches when every criterion it names equals
 * the query's; each match brings its chain of parents root first; components
 * merge by name with values deep-merged; the result is ordered by Kahn's
 * algorithm with alphabetical ties. Unlike AICR it fails closed: a criterion
 * that no overlay matched, an unknown value, and two unrelated overlays that
 * pin one component differently are errors naming the criterion.
 *
 * A kiln_recipes is immutable once loaded; the built-in one is shared by every
 * thread and never freed.
 */
#ifndef KILN_RECIPES_RECIPES_H
#define KILN_RECIPES_RECIPES_H

#include <jansson.h>

#include "core/err.h"

/* One embedded file (recipes_builtin.c, generated at build time). */
typedef struct kiln_recipes_file {
    const char *name;
    const char *text;
} kiln_recipes_file;

/* Terminated by {NULL, NULL}. */
extern const kiln_recipes_file kiln_recipes_builtin_files[];

typedef struct kiln_recipes kiln_recipes;

/* The five criteria, in the order they are checked and printed. */
#define KILN_RECIPES_NCRITERIA 5
extern const char *const kiln_recipes_criteria[KILN_RECIPES_NCRITERIA];

/* Loads lock data from docs (borrowed: an array of parsed YAML documents; one
 * ComponentRegistry and any number of RecipeOverlays; other kinds are
 * errors). Checks every overlay's parent chain, component names and
 * criteria values. *out is new (kiln_recipes_free). */
int kiln_recipes_load(kiln_recipes **out, const json_t *docs, kiln_err *err);

/* The embedded lock data, loaded once (thread-safe) and shared: borrowed,
 * never freed. NULL with err set when the embedded data is broken. */
const kiln_recipes *kiln_recipes_builtin(kiln_err *err);

void kiln_recipes_free(kiln_recipes *r);

/* Resolves criteria (borrowed object: service, accelerator, os, intent and
 * optionally platform, strings; aliases accepted, case-insensitive). *out is
 * a new object:
 *   criteria    the normalised criteria
 *   overlays    [{name, reason}] in the order they were applied
 *   constraints [{name, value}] sorted by name
 *   components  [{name, type, repository, chart | path, version, namespace,
 *                values, dependencies, health, scheduling}] in deployment order
 *   deploymentOrder [names]
 *   validation  {accelerator, checks, nodeSelector, gpusPerNode, ...}
 * Errors: KILN_EINVAL for a missing, unknown or malformed criterion,
 * KILN_ENOTFOUND for a criterion no overlay matched, KILN_ECONFLICT for
 * ambiguous overlays; the message names the criterion. */
int kiln_recipes_resolve(json_t **out, const kiln_recipes *r, const json_t *criteria,
                         kiln_err *err);

/* What ships, for `kiln recipe list` and recipe.list(): a new object
 *   criteria   {name: {required, values, aliases, resolvable: [values an
 *              overlay names]}}
 *   overlays   [{name, base, criteria, description}] in file order
 *   components [{name, type, repository, chart | path, version, namespace}] */
json_t *kiln_recipes_catalog(const kiln_recipes *r);

#endif
