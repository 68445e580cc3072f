#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "graph/dag.h"

static const char *const names[] = {"a", "b", "c", "d", "e"};

static void assert_order(const kiln_dag *d, const char *want)
{
    size_t order[5];
    char buf[64] = "";
    kiln_err err = {0};
    assert_int_equal(kiln_dag_topo_order(d, names, order, &err), 0);
    for (size_t i = 0; i < kiln_dag_size(d); i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, names[order[i]]);
    }
    assert_string_equal(buf, want);
}

static void test_dag__no_edges_keeps_declaration_order(void **state)
{
    kiln_dag *d = kiln_dag_new(5);
    assert_order(d, "a b c d e");
    kiln_dag_free(d);
}

static void test_dag__dependencies_first_then_earliest_declared(void **state)
{
    kiln_dag *d = kiln_dag_new(5);
    kiln_dag_add_edge(d, 0, 3); /* a depends on d */
    kiln_dag_add_edge(d, 1, 0); /* b depends on a */
    /* c and d are ready at once; d unblocks a before e is considered, and the
     * heap always takes the earliest-declared ready vertex. */
    assert_order(d, "c d a b e");
    kiln_dag_free(d);
}

static void test_dag__order_does_not_depend_on_edge_insertion_order(void **state)
{
    kiln_dag *x = kiln_dag_new(5), *y = kiln_dag_new(5);
    kiln_dag_add_edge(x, 4, 1);
    kiln_dag_add_edge(x, 4, 2);
    kiln_dag_add_edge(x, 0, 4);
    kiln_dag_add_edge(y, 0, 4);
    kiln_dag_add_edge(y, 4, 2);
    kiln_dag_add_edge(y, 4, 1);
    kiln_dag_add_edge(y, 4, 1); /* duplicates are ignored */
    assert_true(kiln_dag_has_edge(y, 4, 1));
    assert_false(kiln_dag_has_edge(y, 1, 4));
    assert_order(x, "b c d e a");
    assert_order(y, "b c d e a");
    kiln_dag_free(x);
    kiln_dag_free(y);
}

static void test_dag__cycle_is_spelled_from_its_earliest_vertex(void **state)
{
    kiln_dag *d = kiln_dag_new(5);
    kiln_err err = {0};
    size_t *cycle = NULL, n = 0, order[5];
    /* The search enters the cycle at c (from a), but the message starts at b. */
    kiln_dag_add_edge(d, 0, 2);
    kiln_dag_add_edge(d, 2, 1);
    kiln_dag_add_edge(d, 1, 3);
    kiln_dag_add_edge(d, 3, 2);
    assert_int_equal(kiln_dag_find_cycle(d, names, &cycle, &n, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "graph contains a cycle: b -> d -> c -> b");
    assert_int_equal(n, 4);
    assert_int_equal(cycle[0], 1);
    assert_int_equal(cycle[3], 1);
    kiln_xfree(cycle);
    memset(&err, 0, sizeof err);
    assert_int_equal(kiln_dag_topo_order(d, names, order, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "graph contains a cycle: b -> d -> c -> b");
    kiln_dag_free(d);
}

static void test_dag__two_node_cycle_and_self_edge(void **state)
{
    kiln_dag *d = kiln_dag_new(2), *s = kiln_dag_new(1);
    kiln_err err = {0};
    kiln_dag_add_edge(d, 1, 0);
    kiln_dag_add_edge(d, 0, 1);
    assert_int_equal(kiln_dag_find_cycle(d, names, NULL, NULL, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "graph contains a cycle: a -> b -> a");
    kiln_dag_add_edge(s, 0, 0);
    assert_int_equal(kiln_dag_find_cycle(s, names, NULL, NULL, &err), KILN_EINVAL);
    assert_string_equal(err.msg, "graph contains a cycle: a -> a");
    kiln_dag_free(d);
    kiln_dag_free(s);
}

static void test_dag__long_chain_needs_no_deep_recursion(void **state)
{
    size_t n = 200000, *order = malloc(n * sizeof *order);
    kiln_dag *d = kiln_dag_new(n);
    kiln_err err = {0};
    /* Vertex i depends on i + 1: the order is the reverse of declaration. */
    for (size_t i = 0; i + 1 < n; i++)
        kiln_dag_add_edge(d, i, i + 1);
    assert_int_equal(kiln_dag_topo_order(d, NULL, order, &err), 0);
    assert_int_equal(order[0], n - 1);
    assert_int_equal(order[n - 1], 0);
    kiln_dag_add_edge(d, n - 1, 0);
    assert_int_equal(kiln_dag_find_cycle(d, NULL, NULL, NULL, &err), KILN_EINVAL);
    free(order);
    kiln_dag_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dag__no_edges_keeps_declaration_order),
        cmocka_unit_test(test_dag__dependencies_first_then_earliest_declared),
        cmocka_unit_test(test_dag__order_does_not_depend_on_edge_insertion_order),
        cmocka_unit_test(test_dag__cycle_is_spelled_from_its_earliest_vertex),
        cmocka_unit_test(test_dag__two_node_cycle_and_self_edge),
        cmocka_unit_test(test_dag__long_chain_needs_no_deep_recursion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
