/* graph/dag.h: a directed graph over vertices 0..n-1, cycle detection and a
 * deterministic topological order.
 *
 * Vertices are numbered in declaration order (spec.resources[i] is vertex i),
 * and an edge from -> to means "from depends on to". The order is Kahn's
 * algorithm with a min-heap keyed by vertex number, so among the vertices
 * whose dependencies are done the earliest-declared goes first: the author's
 * order is kept wherever the edges allow, and the result never depends on
 * hash order or insertion order of edges.
 *
 * Ownership: a kiln_dag owns its adjacency lists; names passed to the
 * functions are borrowed for the call.
 */
#ifndef KILN_GRAPH_DAG_H
#define KILN_GRAPH_DAG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

typedef struct kiln_dag kiln_dag;

/* New graph with n vertices and no edges. Aborts on OOM. */
kiln_dag *kiln_dag_new(size_t n);
void kiln_dag_free(kiln_dag *d);

size_t kiln_dag_size(const kiln_dag *d);

/* Adds the edge from -> to (from depends on to). Duplicates are ignored; a
 * self-edge is kept (and reported as a cycle). */
void kiln_dag_add_edge(kiln_dag *d, size_t from, size_t to);
bool kiln_dag_has_edge(const kiln_dag *d, size_t from, size_t to);

/* Finds a cycle. Returns 0 when there is none. Otherwise KILN_EINVAL with the
 * message "graph contains a cycle: a -> b -> a" in err, spelled with names[]
 * (borrowed) and starting at the earliest-declared vertex of the cycle found
 * (the cycle reachable first from the lowest vertex). *cycle (may be NULL)
 * receives the vertices (new; first repeated at the end), *ncycle their count. */
int kiln_dag_find_cycle(const kiln_dag *d, const char *const *names, size_t **cycle, size_t *ncycle,
                        kiln_err *err);

/* Writes the topological order (dependencies first) into order[0..n). Returns
 * 0, or the cycle error of kiln_dag_find_cycle. */
int kiln_dag_topo_order(const kiln_dag *d, const char *const *names, size_t *order, kiln_err *err);

#endif
