/* Hostile Lua in one node fails that node alone, with a limit or script error
 * naming the resource; independent nodes render and the state stays usable. */
#include "graph_test.h"

static kiln_lua *L;

static int setup(void **state)
{
    kiln_lua_limits lim;
    kiln_lua_limits_default(&lim);
    /* Smaller than the defaults so the test stays fast; the mechanism is the same. */
    lim.instructions = 2000000;
    lim.memory = 32u << 20;
    L = kiln_lua_new(&lim);
    return 0;
}

static int teardown(void **state)
{
    kiln_lua_free(L);
    return 0;
}

#define HEAD                                                                                       \
    "apiVersion: kiln.dev/v1alpha1\n"                                                              \
    "kind: ResourceGraphDefinition\n"                                                              \
    "metadata: {name: hostile}\n"                                                                  \
    "spec:\n"                                                                                      \
    "  schema:\n"                                                                                  \
    "    apiVersion: v1alpha1\n"                                                                   \
    "    kind: Hostile\n"                                                                          \
    "  resources:\n"                                                                               \
    "    - id: good\n"                                                                             \
    "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: good}}\n"

#define INST "apiVersion: kiln.dev/v1alpha1\nkind: Hostile\nmetadata: {name: h, namespace: ns}\n"

typedef struct hostile_case {
    const char *what;
    const char *node; /* YAML of the node "bad", after "- id: bad\n" */
    int code;         /* expected code; 0: ELIMIT or ESCRIPT */
    const char *part; /* expected in the message */
} hostile_case;

static const hostile_case cases[] = {
    {"infinite loop", "      script: 'while true do end'\n", KILN_ELIMIT,
     "spec.resources[1].script"},
    {"pcall swallowing the budget",
     "      script: |\n"
     "        for i = 1, 1e9 do pcall(function() while true do end end) end\n"
     "        return {}\n",
     KILN_ELIMIT, "spec.resources[1].script"},
    {"string.rep bomb", "      script: \"return {s = string.rep('x', 1e10)}\"\n", KILN_ELIMIT,
     "spec.resources[1].script"},
    {"deep recursion",
     "      script: |\n"
     "        local function f(n) return f(n + 1) + 1 end\n"
     "        return f(1)\n",
     0, "spec.resources[1].script"},
    {"huge table",
     "      script: |\n"
     "        local t = {}\n"
     "        for i = 1, 1e8 do t[i] = {i} end\n"
     "        return t\n",
     KILN_ELIMIT, "spec.resources[1].script"},
    {"os through _ENV", "      script: \"return _ENV.os.execute('id')\"\n", KILN_ESCRIPT,
     "spec.resources[1].script"},
    {"load through rawget", "      script: \"return rawget(_ENV, 'load')('return 1')\"\n",
     KILN_ESCRIPT, "spec.resources[1].script"},
    {"require through _ENV", "      script: \"return _ENV.require('os')\"\n", KILN_ESCRIPT,
     "spec.resources[1].script"},
    {"io through _ENV", "      script: \"return _ENV.io.open('/etc/passwd')\"\n", KILN_ESCRIPT,
     "spec.resources[1].script"},
    {"string.dump", "      script: \"return {s = string.dump(tostring)}\"\n", KILN_ESCRIPT,
     "spec.resources[1].script"},
    {"loop in a template expression",
     "      template:\n"
     "        apiVersion: v1\n"
     "        kind: ConfigMap\n"
     "        metadata: {name: x}\n"
     "        data: {v: \"${(function() while true do end end)()}\"}\n",
     KILN_ELIMIT, "spec.resources[1].template.data.v"},
};

static void run_case(const hostile_case *hc)
{
    char yaml[4096];
    kiln_graph_options o = {.skip_dry_render = true};
    snprintf(yaml, sizeof yaml,
             HEAD "    - id: bad\n%s"
                  "    - id: after\n"
                  "      template: {apiVersion: v1, kind: ConfigMap, metadata: {name: after}}\n",
             hc->node);
    kiln_graph *g = gt_compile(yaml, &o);
    kiln_render_result *r = gt_render(g, L, INST, NULL, true);
    const kiln_render_node *bad = gt_node(r, "bad");
    if (bad->state != KILN_NODE_ERROR)
        fail_msg("%s: state %s", hc->what, kiln_node_state_name(bad->state));
    if (hc->code ? bad->code != hc->code : (bad->code != KILN_ELIMIT && bad->code != KILN_ESCRIPT))
        fail_msg("%s: code %s (%s)", hc->what, kiln_err_name(bad->code), bad->message);
    if (!strstr(bad->message, hc->part))
        fail_msg("%s: message %s", hc->what, bad->message);
    fprintf(stderr, "# %s: %s %s\n", hc->what, kiln_err_name(bad->code), bad->message);
    assert_null(bad->desired);
    gt_assert_state(r, "good", KILN_NODE_READY);
    gt_assert_state(r, "after", KILN_NODE_READY);
    kiln_render_result_free(r);

    /* the same state renders again, hostile node and all */
    r = gt_render(g, L, INST, NULL, true);
    gt_assert_state(r, "good", KILN_NODE_READY);
    assert_int_equal(gt_node(r, "bad")->state, KILN_NODE_ERROR);
    kiln_render_result_free(r);
    kiln_graph_unbind(g, L);
    kiln_graph_free(g);
}

static void test_hostile__each_attack_fails_only_its_node(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
}

static void test_hostile__dependents_of_a_failed_node_wait(void **state)
{
    kiln_graph_options o = {.skip_dry_render = true};
    kiln_graph *g = gt_compile(HEAD "    - id: bad\n"
                                    "      script: 'while true do end'\n"
                                    "    - id: child\n"
                                    "      template: {apiVersion: v1, kind: ConfigMap, "
                                    "metadata: {name: \"${bad.metadata.name}-c\"}}\n",
                               &o);
    kiln_render_result *r = gt_render(g, L, INST, NULL, true);
    gt_assert_state(r, "bad", KILN_NODE_ERROR);
    assert_int_equal(gt_node(r, "bad")->code, KILN_ELIMIT);
    gt_assert_state(r, "child", KILN_NODE_WAITING);
    assert_string_equal(gt_node(r, "child")->message, "waiting for \"bad\"");
    kiln_render_result_free(r);
    kiln_graph_unbind(g, L);
    kiln_graph_free(g);
}

static void test_hostile__sandbox_names_are_unknown_at_compile_time(void **state)
{
    gt_expect_error(HEAD "    - id: bad\n"
                         "      script: \"return os.getenv('HOME')\"\n",
                    "spec.resources[1].script: unknown identifier \"os\"");
    gt_expect_error(HEAD "    - id: bad\n"
                         "      script: \"return load('return 1')()\"\n",
                    "spec.resources[1].script: unknown identifier \"load\"");
    gt_expect_error(HEAD "    - id: bad\n"
                         "      script: \"return require('io')\"\n",
                    "spec.resources[1].script: unknown identifier \"require\"");
}

static void test_hostile__dry_render_reports_an_always_failing_script(void **state)
{
    kiln_errs errs = {0};
    kiln_graph *g = NULL;
    kiln_graph_options o = {.lua = L};
    int rc =
        gt_compile_errs(&g, HEAD "    - id: bad\n      script: 'while true do end'\n", &o, &errs);
    assert_int_equal(rc, KILN_ELIMIT);
    assert_null(g);
    assert_int_equal(errs.len, 1);
    assert_non_null(strstr(errs.items[0].msg, "spec.resources[1].script"));
    kiln_errs_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile__each_attack_fails_only_its_node),
        cmocka_unit_test(test_hostile__dependents_of_a_failed_node_wait),
        cmocka_unit_test(test_hostile__sandbox_names_are_unknown_at_compile_time),
        cmocka_unit_test(test_hostile__dry_render_reports_an_always_failing_script),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
