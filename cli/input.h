/* cli/input.h: what every kiln command reads: flags with values, and the YAML
 * documents of -f files and --observed directories.
 *
 * A kiln_cli_docs owns its documents (one JSON reference each) and the file
 * names they came from, so callers can report "FILE: PATH: MESSAGE" for any
 * document long after argv parsing.
 */
#ifndef KILN_CLI_INPUT_H
#define KILN_CLI_INPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "graph/graph.h"

typedef struct kiln_cli_doc {
    json_t *obj;  /* owned reference */
    char *file;   /* owned: the path as the user wrote it ("-" for stdin) */
    size_t index; /* 0-based position of the document within its file */
} kiln_cli_doc;

typedef struct kiln_cli_docs {
    kiln_cli_doc *items;
    size_t len;
    size_t cap;
} kiln_cli_docs;

/* Appends every non-empty document of path ("-" is stdin, which can be read
 * only once per process) to docs. Each document must be a mapping. Errors are
 * KILN_EINVAL/KILN_EIO with the message starting "<path>: ". */
int kiln_cli_docs_load(kiln_cli_docs *docs, const char *path, kiln_err *err);

/* Appends the documents of every *.yaml, *.yml and *.json file directly in
 * dir, files in byte order of their names (deterministic whatever readdir
 * returns). A missing or unreadable dir is KILN_EIO. */
int kiln_cli_docs_load_dir(kiln_cli_docs *docs, const char *dir, kiln_err *err);

void kiln_cli_docs_free(kiln_cli_docs *docs);

/* True for a kiln.dev/v1alpha1 ResourceGraphDefinition (doc borrowed). */
bool kiln_cli_is_rgd(const json_t *doc);

/* Loads path and returns its one ResourceGraphDefinition in *out (new
 * reference). None, or more than one, is KILN_EINVAL ("FILE: ..."). */
int kiln_cli_load_one_rgd(json_t **out, const char *path, kiln_err *err);

/* Loads path's one ResourceGraphDefinition and compiles its structure only
 * (no dry render) into *out (new; kiln_graph_free). Every problem goes to
 * stderr as "kiln <cmd>: ..."; returns 0 or the first error's code. */
int kiln_cli_compile_one_rgd(kiln_graph **out, const char *cmd, const char *path);

/* "apiVersion/kind namespace/name" style label for messages; new string. */
char *kiln_cli_doc_label(const json_t *doc);

/* Matches argv[*i] against a flag that takes a value: "-f X", "--file X" or
 * "--file=X" (short may be NULL). On a match sets *value (borrowed from argv),
 * advances *i past the value and returns 1; returns 0 when argv[*i] is another
 * argument. A flag without its value prints a usage error for cmd and returns
 * -1. */
int kiln_cli_flag_value(const char *cmd, int argc, char **argv, int *i, const char *shortf,
                        const char *longf, const char **value);

#endif
