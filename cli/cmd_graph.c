/* cli/cmd_graph.c: `kiln graph`: the DAG of an RGD as text, DOT or Mermaid.
 *
 * Every format lists nodes in topological order and edges from a dependency
 * to its dependent, so the output is stable and diffable.
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/input.h"
#include "core/buf.h"
#include "core/mem.h"
#include "graph/graph.h"

typedef enum graph_format { FORMAT_TEXT, FORMAT_DOT, FORMAT_MERMAID } graph_format;

/* "template", "template,forEach,readyWhen", ... New string. */
static char *node_kinds(const kiln_graph *g, size_t i)
{
    unsigned flags = kiln_graph_node_flags(g, i);
    return kiln_xasprintf("%s%s%s%s", kiln_graph_node_kind_name(kiln_graph_node_kind_of(g, i)),
                          flags & KILN_GRAPH_NODE_FOREACH ? ",forEach" : "",
                          flags & KILN_GRAPH_NODE_INCLUDE_WHEN ? ",includeWhen" : "",
                          flags & KILN_GRAPH_NODE_READY_WHEN ? ",readyWhen" : "");
}

/* "apps/v1 Deployment", or "-" when the node's object is not known before it
 * runs (script) or is not an object (validation). New string. */
static char *node_object(const kiln_graph *g, size_t i)
{
    const char *api = kiln_graph_node_object_api_version(g, i);
    const char *kind = kiln_graph_node_object_kind(g, i);
    if (!api && !kind)
        return kiln_xstrdup("-");
    return kiln_xasprintf("%s %s", api ? api : "?", kind ? kind : "?");
}

/* "a, b" or "-". New string. */
static char *node_deps(const kiln_graph *g, size_t i)
{
    kiln_buf b;
    kiln_buf_init(&b, KILN_BUF_DEFAULT_LIMIT);
    size_t n = kiln_graph_node_dep_count(g, i);
    for (size_t j = 0; j < n; j++)
        kiln_buf_printf(&b, NULL, "%s%s", j ? ", " : "",
                        kiln_graph_node_id(g, kiln_graph_node_dep(g, i, j)));
    if (n == 0)
        kiln_buf_puts(&b, "-", NULL);
    return kiln_buf_steal(&b);
}

/* Escapes text for a quoted DOT string or a quoted Mermaid label. */
static void put_escaped(kiln_buf *b, const char *s, graph_format format)
{
    for (; *s; s++) {
        if (format == FORMAT_DOT && (*s == '"' || *s == '\\'))
            kiln_buf_printf(b, NULL, "\\%c", *s);
        else if (format == FORMAT_MERMAID && *s == '"')
            kiln_buf_puts(b, "#quot;", NULL);
        else
            kiln_buf_append(b, s, 1, NULL);
    }
}

/* The node's name in Mermaid: its id, with "_" appended when the id is a word
 * Mermaid's flowchart grammar reserves (a node named `class` or `style` would
 * start a statement). */
static const char *mermaid_id(const char *id, char *buf, size_t n)
{
    static const char *const reserved[] = {"graph", "flowchart", "subgraph", "direction",
                                           "style", "class",     "classDef", "linkStyle",
                                           "click", "call",      "href",     "default"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(id, reserved[i]) == 0) {
            snprintf(buf, n, "%s_", id);
            return buf;
        }
    }
    return id;
}

static void emit_text(kiln_buf *b, const kiln_graph *g, const size_t *order, size_t n)
{
    static const char *const head[] = {"ORDER", "ID", "NODE", "OBJECT", "DEPENDS ON"};
    char **cells = kiln_xcalloc(n * 5, sizeof(cells[0]));
    size_t width[5];
    for (size_t k = 0; k < 5; k++)
        width[k] = strlen(head[k]);
    for (size_t r = 0; r < n; r++) {
        size_t i = order[r];
        cells[r * 5 + 0] = kiln_xasprintf("%zu", r + 1);
        cells[r * 5 + 1] = kiln_xstrdup(kiln_graph_node_id(g, i));
        cells[r * 5 + 2] = node_kinds(g, i);
        cells[r * 5 + 3] = node_object(g, i);
        cells[r * 5 + 4] = node_deps(g, i);
        for (size_t k = 0; k < 5; k++)
            if (strlen(cells[r * 5 + k]) > width[k])
                width[k] = strlen(cells[r * 5 + k]);
    }
    kiln_buf_printf(b, NULL, "%s: %s %s (%s), %zu resource%s\n", kiln_graph_name(g),
                    kiln_graph_api_version(g), kiln_graph_kind(g),
                    kiln_graph_cluster_scoped(g) ? "Cluster" : "Namespaced", n, n == 1 ? "" : "s");
    for (size_t r = 0; r <= n; r++) {
        for (size_t k = 0; k < 5; k++) {
            const char *cell = r == 0 ? head[k] : cells[(r - 1) * 5 + k];
            if (k == 4)
                kiln_buf_printf(b, NULL, "%s\n", cell);
            else
                kiln_buf_printf(b, NULL, "%-*s  ", (int)width[k], cell);
        }
    }
    for (size_t k = 0; k < n * 5; k++)
        kiln_xfree(cells[k]);
    kiln_xfree(cells);
}

static void emit_picture(kiln_buf *b, const kiln_graph *g, const size_t *order, size_t n,
                         graph_format format)
{
    const char *nl = format == FORMAT_DOT ? "\\n" : "<br/>";
    if (format == FORMAT_DOT) {
        kiln_buf_puts(b, "digraph \"", NULL);
        put_escaped(b, kiln_graph_name(g), format);
        kiln_buf_puts(b, "\" {\n  rankdir=LR;\n  node [shape=box];\n", NULL);
    } else {
        kiln_buf_puts(b, "flowchart LR\n", NULL);
    }
    for (size_t r = 0; r < n; r++) {
        size_t i = order[r];
        char *kinds = node_kinds(g, i);
        char *object = node_object(g, i);
        const char *id = kiln_graph_node_id(g, i);
        char mid[300];
        if (format == FORMAT_DOT)
            kiln_buf_printf(b, NULL, "  \"%s\" [label=\"", id);
        else
            kiln_buf_printf(b, NULL, "  %s[\"", mermaid_id(id, mid, sizeof(mid)));
        put_escaped(b, id, format);
        kiln_buf_puts(b, nl, NULL);
        put_escaped(b, kinds, format);
        if (strcmp(object, "-") != 0) {
            kiln_buf_puts(b, nl, NULL);
            put_escaped(b, object, format);
        }
        kiln_buf_puts(b, format == FORMAT_DOT ? "\"];\n" : "\"]\n", NULL);
        kiln_xfree(kinds);
        kiln_xfree(object);
    }
    for (size_t r = 0; r < n; r++) {
        size_t i = order[r];
        for (size_t j = 0; j < kiln_graph_node_dep_count(g, i); j++) {
            const char *from = kiln_graph_node_id(g, kiln_graph_node_dep(g, i, j));
            const char *to = kiln_graph_node_id(g, i);
            char mfrom[300], mto[300];
            if (format == FORMAT_DOT)
                kiln_buf_printf(b, NULL, "  \"%s\" -> \"%s\";\n", from, to);
            else
                kiln_buf_printf(b, NULL, "  %s --> %s\n", mermaid_id(from, mfrom, sizeof(mfrom)),
                                mermaid_id(to, mto, sizeof(mto)));
        }
    }
    if (format == FORMAT_DOT)
        kiln_buf_puts(b, "}\n", NULL);
}

int kiln_cmd_graph(int argc, char **argv)
{
    const char *file = NULL;
    const char *format_name = "text";
    graph_format format = FORMAT_TEXT;
    kiln_graph *g = NULL;
    kiln_buf out;
    int status = KILN_EXIT_FAIL;

    kiln_buf_init(&out, KILN_BUF_DEFAULT_LIMIT);
    if (kiln_cli_wants_help(argc, argv)) {
        kiln_cli_help(stdout, "graph");
        status = KILN_EXIT_OK;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m = kiln_cli_flag_value("graph", argc, argv, &i, NULL, "--format", &v);
        if (m < 0) {
            status = KILN_EXIT_USAGE;
            goto out;
        }
        if (m > 0) {
            format_name = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            status = kiln_cli_usage_error("graph", "unknown flag \"%s\"", argv[i]);
            goto out;
        } else if (file) {
            status = kiln_cli_usage_error("graph", "expected one FILE, got \"%s\" and \"%s\"", file,
                                          argv[i]);
            goto out;
        } else {
            file = argv[i];
        }
    }
    if (strcmp(format_name, "text") == 0) {
        format = FORMAT_TEXT;
    } else if (strcmp(format_name, "dot") == 0) {
        format = FORMAT_DOT;
    } else if (strcmp(format_name, "mermaid") == 0) {
        format = FORMAT_MERMAID;
    } else {
        status = kiln_cli_usage_error("graph", "unknown format \"%s\" (want text, dot or mermaid)",
                                      format_name);
        goto out;
    }
    if (!file) {
        status = kiln_cli_usage_error("graph", "no input: name the RGD file");
        goto out;
    }
    /* The picture needs the structure only; `kiln lint` dry-renders. */
    if (kiln_cli_compile_one_rgd(&g, "graph", file) < 0)
        goto out;
    size_t n = 0;
    const size_t *order = kiln_graph_topological_order(g, &n);
    if (format == FORMAT_TEXT)
        emit_text(&out, g, order, n);
    else
        emit_picture(&out, g, order, n, format);
    fputs(out.data ? out.data : "", stdout);
    status = KILN_EXIT_OK;
out:
    kiln_buf_free(&out);
    kiln_graph_free(g);
    return status;
}
