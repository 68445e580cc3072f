/* tests/graph/graph_test.h: shared helpers of the graph/ tests: YAML in, a
 * compiled graph out, and short ways to look at a render. Header-only so each
 * test stays one executable. */
#ifndef KILN_TESTS_GRAPH_TEST_H
#define KILN_TESTS_GRAPH_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/yaml.h"
#include "graph/graph.h"

/* The Lua state a whole test group shares: run the group with gt_lua_setup
 * and gt_lua_teardown, and reach the state with gt_lua(). */
static inline kiln_lua **gt_lua_slot(void)
{
    static kiln_lua *lua;
    return &lua;
}

static inline kiln_lua *gt_lua(void)
{
    return *gt_lua_slot();
}

static inline int gt_lua_setup(void **state)
{
    *gt_lua_slot() = kiln_lua_new(NULL);
    return 0;
}

static inline int gt_lua_teardown(void **state)
{
    kiln_lua_free(*gt_lua_slot());
    *gt_lua_slot() = NULL;
    return 0;
}

/* The one YAML document in text (new reference); fails the test otherwise. */
static inline json_t *gt_yaml(const char *text)
{
    json_t *docs = NULL, *doc;
    kiln_err err = {0};
    if (kiln_yaml_load(&docs, text, strlen(text), "test.yaml", NULL, &err) != 0)
        fail_msg("yaml: %s", err.msg);
    assert_int_equal(json_array_size(docs), 1);
    doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return doc;
}

static inline json_t *gt_json(const char *text)
{
    json_t *doc = NULL;
    kiln_err err = {0};
    if (kiln_json_load(&doc, text, strlen(text), &err) != 0)
        fail_msg("json: %s in %s", err.msg, text);
    return doc;
}

/* Compiles the RGD in yaml; *errs gets everything reported. */
static inline int gt_compile_errs(kiln_graph **g, const char *yaml, const kiln_graph_options *o,
                                  kiln_errs *errs)
{
    json_t *doc = gt_yaml(yaml);
    int rc = kiln_graph_compile(g, doc, o, errs);
    json_decref(doc);
    return rc;
}

/* Compiles and fails the test with every message when it does not compile. */
static inline kiln_graph *gt_compile(const char *yaml, const kiln_graph_options *o)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    if (gt_compile_errs(&g, yaml, o, &errs) != 0) {
        for (size_t i = 0; i < errs.len; i++)
            fprintf(stderr, "compile error: %s\n", errs.items[i].msg);
        kiln_errs_free(&errs);
        fail_msg("compile failed");
    }
    kiln_errs_free(&errs);
    assert_non_null(g);
    return g;
}

/* True when one of errs has exactly msg. */
static inline bool gt_has_error(const kiln_errs *errs, const char *msg)
{
    for (size_t i = 0; i < errs->len; i++)
        if (strcmp(errs->items[i].msg, msg) == 0)
            return true;
    return false;
}

static inline void gt_expect_error(const char *yaml, const char *msg)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    kiln_graph_options o = {.skip_dry_render = false};
    int rc = gt_compile_errs(&g, yaml, &o, &errs);
    if (rc == 0 || !gt_has_error(&errs, msg)) {
        for (size_t i = 0; i < errs.len; i++)
            fprintf(stderr, "got: %s\n", errs.items[i].msg);
        fail_msg("expected error: %s", msg);
    }
    assert_null(g);
    kiln_errs_free(&errs);
}

/* Asserts that v equals the JSON literal expected. */
static inline void gt_assert_json(const json_t *v, const char *expected)
{
    json_t *e = gt_json(expected);
    if (!kiln_json_equal(v, e)) {
        char *got = v ? kiln_json_canonical(v) : NULL;
        char *want = kiln_json_canonical(e);
        fprintf(stderr, "got:  %s\nwant: %s\n", got ? got : "(null)", want);
        free(got);
        free(want);
        json_decref(e);
        fail_msg("JSON differs");
    }
    json_decref(e);
}

/* Renders instance (YAML) with observed (JSON text or NULL). */
static inline kiln_render_result *gt_render(const kiln_graph *g, kiln_lua *L, const char *inst,
                                            const char *observed, bool offline)
{
    json_t *i = gt_yaml(inst);
    json_t *o = observed ? gt_json(observed) : NULL;
    kiln_render_options ro = {.offline = offline};
    kiln_render_result *r = NULL;
    kiln_err err = {0};
    if (kiln_graph_render(&r, g, L, i, o, &ro, &err) != 0)
        fail_msg("render: %s", err.msg);
    json_decref(i);
    json_decref(o);
    return r;
}

static inline const kiln_render_node *gt_node(const kiln_render_result *r, const char *id)
{
    const kiln_render_node *n = kiln_render_result_find(r, id);
    if (!n)
        fail_msg("no node %s", id);
    return n;
}

static inline void gt_assert_state(const kiln_render_result *r, const char *id,
                                   kiln_node_state want)
{
    const kiln_render_node *n = gt_node(r, id);
    if (n->state != want)
        fail_msg("%s: state %s, want %s (%s)", id, kiln_node_state_name(n->state),
                 kiln_node_state_name(want), n->message ? n->message : "");
}

/* The ids of r in order, joined with spaces. */
static inline void gt_assert_order(const kiln_render_result *r, const char *want)
{
    char buf[1024] = "";
    for (size_t i = 0; i < r->nnodes; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, r->nodes[i].id);
    }
    assert_string_equal(buf, want);
}

static inline bool gt_has_note(const kiln_render_result *r, const char *part)
{
    for (size_t i = 0; i < r->npending; i++)
        if (strstr(r->pending[i], part))
            return true;
    return false;
}

#endif
