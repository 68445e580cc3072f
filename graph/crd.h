/* graph/crd.h: the CustomResourceDefinition of a generated kind, and kiln's
 * own CRDs.
 *
 * kiln_crd_synthesize builds the apiextensions.k8s.io/v1 CRD an RGD declares:
 * one served+storage version, the status subresource, a schema whose spec is
 * the SimpleSchema conversion and whose status is the kstatus shape kiln
 * writes (observedGeneration, conditions, state, resources, validation) plus
 * the RGD's projected fields, and printer columns (Ready, State, Age unless
 * the RGD gives its own).
 *
 * Ownership: everything in kiln_crd_spec is borrowed for the call; every
 * json_t * a function returns or stores in *out is a new reference.
 */
#ifndef KILN_GRAPH_CRD_H
#define KILN_GRAPH_CRD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define KILN_CRD_DEFAULT_GROUP "kiln.dev"
/* Most bytes of a plural or singular name (a DNS label), plus the NUL. */
#define KILN_CRD_NAME_MAX 64

typedef struct kiln_crd_spec {
    const char *group;   /* NULL -> KILN_CRD_DEFAULT_GROUP */
    const char *version; /* "v1alpha1" */
    const char *kind;    /* "WebApp" */
    const char *scope;   /* "Namespaced" | "Cluster"; NULL -> "Namespaced" */
    /* OpenAPI object schema of spec (from kiln_simpleschema_to_openapi).
     * NULL -> {type: object, x-kubernetes-preserve-unknown-fields: true}. */
    const json_t *spec_schema;
    /* OpenAPI object schema whose properties are the projected status fields
     * (may be NULL). kiln's own status fields win over projections with the
     * same name (observedGeneration, conditions, state, resources,
     * validation), as kro does for state and conditions. */
    const json_t *status_schema;
    /* additionalPrinterColumns, copied as given; NULL or [] -> Ready, State, Age. */
    const json_t *printer_columns;
    const json_t *short_names; /* array of strings, may be NULL */
    const json_t *categories;  /* array of strings, may be NULL */
    const json_t *labels;      /* object, may be NULL; merged over kiln's labels */
    const json_t *annotations; /* object, may be NULL */
    const char *rgd_name;      /* the RGD's metadata.name, for the kiln.dev/rgd label */
} kiln_crd_spec;

/* Builds the CRD (*out new) named <plural>.<group>, labelled
 * app.kubernetes.io/managed-by: kiln and kiln.dev/rgd: <rgd_name> (spec labels
 * merged over them, except that those two are kiln's). Checks kind, version,
 * group and scope (KILN_EINVAL naming the field: "spec.schema.kind: ..."). */
int kiln_crd_synthesize(json_t **out, const kiln_crd_spec *spec, kiln_err *err);

/* The plural of kind, lowercased, into out (n bytes): "WebApp" -> "webapps",
 * "Policy" -> "policies", "Ingress" -> "ingresses", "Box" -> "boxes",
 * "Day" -> "days". Rules: ends in s, x, z, ch or sh -> +es; consonant + y ->
 * ies; else +s. No irregular words. KILN_ELIMIT when out is too small,
 * KILN_EINVAL for an empty kind. */
int kiln_crd_plural(char *out, size_t n, const char *kind, kiln_err *err);

/* Name checks, as the CRD of ResourceGraphDefinition enforces them. */
bool kiln_crd_valid_kind(const char *kind);       /* ^[A-Z][a-zA-Z0-9]{0,62}$ */
bool kiln_crd_valid_version(const char *version); /* ^v[0-9]+((alpha|beta)[0-9]+)?$ */
bool kiln_crd_valid_group(const char *group);     /* DNS-1123 subdomain, <= 253 bytes */

/* The schema of status.conditions (metav1.Condition items, a list map keyed
 * by type). New reference. */
json_t *kiln_crd_conditions_schema(void);

/* The status schema kiln writes on every instance (kstatus shape):
 * {type: object, properties: {observedGeneration, conditions, state,
 * resources, validation}}. New reference. */
json_t *kiln_crd_instance_status_schema(void);

/* kiln's own CRDs, a JSON array (new reference); today one element, the
 * resourcegraphdefinitions.kiln.dev CRD (kiln.dev/v1alpha1, cluster-scoped,
 * short name rgd). `kiln crd --builtin` prints it; crds/ holds it checked in.
 * NULL only if the built-in text were broken, which the tests rule out. */
json_t *kiln_crd_builtin(void);

#endif
