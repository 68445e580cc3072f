/* validate/thresholds.h: what a healthy GPU of each accelerator type measures.
 *
 * Thresholds are data (one YAML file per accelerator in validate/thresholds/,
 * format in docs/gpu-validation.md). Each file names the accelerator, its
 * aliases, what the device check expects (product name, compute capability,
 * memory) and, per check and metric, the achievable figure with a floor given
 * as a fraction of it. A smaller card is judged against its own figures, never
 * against one fixed number.
 *
 * The files are compiled into the library (kiln_thresholds_load_builtin), so
 * the controller and kiln-gpucheck agree without shipping a data directory;
 * kiln_thresholds_load_path reads a file or a directory instead.
 *
 * Names resolve through kiln_thresholds_find: the requested name is lowered,
 * '_' and ' ' become '-', and one leading "nvidia-" is dropped (so the GPU
 * feature discovery label NVIDIA-H100-80GB-HBM3 works); then it must equal an
 * accelerator's name or one of its aliases. Names and aliases are unique
 * across a catalog; loading fails otherwise.
 *
 * A catalog owns everything it points to; kiln_thresholds_free releases it.
 * Pointers returned by the lookup functions are borrowed from the catalog.
 */
#ifndef KILN_VALIDATE_THRESHOLDS_H
#define KILN_VALIDATE_THRESHOLDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* Check names, in the order kiln-gpucheck runs them. */
#define KILN_VALIDATE_N_CHECKS 6
extern const char *const kiln_validate_checks[KILN_VALIDATE_N_CHECKS];

/* True when name is one of kiln_validate_checks. */
bool kiln_validate_is_check(const char *name);

/* A floor metric: passes when value >= achievable * floor. */
typedef struct kiln_threshold_metric {
    char *check;       /* "gemm" */
    char *name;        /* "bf16Tflops" */
    const char *unit;  /* static: "GB/s", "TFLOP/s" */
    bool per_pair;     /* measured per GPU pair (p2p) rather than per GPU */
    double achievable; /* what a healthy card reaches, in unit */
    double floor;      /* fraction of achievable, (0, 1] */
    double typical;    /* fraction a healthy card shows; --simulate uses it */
} kiln_threshold_metric;

typedef struct kiln_threshold_accel {
    char *name;        /* "h100-sxm" */
    char *description; /* may be "" */
    char *source;      /* file the entry came from, for messages */
    char **aliases;
    size_t n_aliases;
    char **products; /* substrings of the CUDA device name; one must match */
    size_t n_products;
    int cc_major, cc_minor;
    double memory_gb;    /* nominal, 10^9 bytes */
    double memory_floor; /* fraction of memory_gb the device must report */
    kiln_threshold_metric *metrics;
    size_t n_metrics;
} kiln_threshold_accel;

typedef struct kiln_thresholds {
    kiln_threshold_accel *items;
    size_t len;
} kiln_thresholds;

/* Appends the accelerator described by doc (borrowed; one parsed thresholds
 * document) to cat. source names the document in messages. Every unknown key,
 * missing field, wrong type, fraction outside (0, 1] (typical: (0, 1.5]) or
 * duplicate name/alias fails with KILN_EINVAL and a message naming source and
 * the field; cat is unchanged then. */
int kiln_thresholds_add_json(kiln_thresholds *cat, const json_t *doc, const char *source,
                             kiln_err *err);

/* Parses YAML text (one document) and adds it, as kiln_thresholds_add_json. */
int kiln_thresholds_add_yaml(kiln_thresholds *cat, const char *text, size_t len, const char *source,
                             kiln_err *err);

/* Loads the thresholds compiled into the library into *cat (caller frees with
 * kiln_thresholds_free). */
int kiln_thresholds_load_builtin(kiln_thresholds *cat, kiln_err *err);

/* Loads one YAML file, or every *.yaml file of a directory (sorted by name). */
int kiln_thresholds_load_path(kiln_thresholds *cat, const char *path, kiln_err *err);

void kiln_thresholds_free(kiln_thresholds *cat);

/* The accelerator a requested name resolves to (rule above), or NULL. */
const kiln_threshold_accel *kiln_thresholds_find(const kiln_thresholds *cat, const char *name);

/* The accelerator whose product list matches a CUDA device name, or NULL when
 * none or more than one does (so a guess never picks the wrong floors). */
const kiln_threshold_accel *kiln_thresholds_match_product(const kiln_thresholds *cat,
                                                          const char *device_name);

/* True when one of acc's product substrings occurs in device_name, ignoring
 * case. */
bool kiln_thresholds_product_matches(const kiln_threshold_accel *acc, const char *device_name);

/* The metric check/name of acc, or NULL. */
const kiln_threshold_metric *kiln_thresholds_metric(const kiln_threshold_accel *acc,
                                                    const char *check, const char *name);

/* Writes the normalized form of name (rule above) into out (size n). */
void kiln_thresholds_normalize(char *out, size_t n, const char *name);

/* The embedded thresholds files, NULL-terminated; generated at build time. */
typedef struct kiln_thresholds_file {
    const char *name; /* "h100-sxm.yaml" */
    const char *text;
} kiln_thresholds_file;
extern const kiln_thresholds_file kiln_thresholds_builtin_files[];

#endif
