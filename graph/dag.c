/* graph/dag.c: adjacency lists, DFS cycle search, Kahn order with a min-heap. */
#include "graph/dag.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

typedef struct vec {
    size_t *v;
    size_t n, cap;
} vec;

struct kiln_dag {
    size_t n;
    vec *deps;       /* deps[i]: what i depends on, ascending */
    vec *dependents; /* dependents[i]: who depends on i */
};

static void vec_insert_sorted(vec *a, size_t x)
{
    size_t i = a->n;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4;
        a->v = kiln_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    while (i > 0 && a->v[i - 1] > x) {
        a->v[i] = a->v[i - 1];
        i--;
    }
    a->v[i] = x;
    a->n++;
}

static bool vec_has(const vec *a, size_t x)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i] == x)
            return true;
    return false;
}

kiln_dag *kiln_dag_new(size_t n)
{
    kiln_dag *d = kiln_xcalloc(1, sizeof *d);
    d->n = n;
    d->deps = kiln_xcalloc(n ? n : 1, sizeof *d->deps);
    d->dependents = kiln_xcalloc(n ? n : 1, sizeof *d->dependents);
    return d;
}

void kiln_dag_free(kiln_dag *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        kiln_xfree(d->deps[i].v);
        kiln_xfree(d->dependents[i].v);
    }
    kiln_xfree(d->deps);
    kiln_xfree(d->dependents);
    kiln_xfree(d);
}

size_t kiln_dag_size(const kiln_dag *d)
{
    return d->n;
}

void kiln_dag_add_edge(kiln_dag *d, size_t from, size_t to)
{
    if (from >= d->n || to >= d->n || vec_has(&d->deps[from], to))
        return;
    vec_insert_sorted(&d->deps[from], to);
    vec_insert_sorted(&d->dependents[to], from);
}

bool kiln_dag_has_edge(const kiln_dag *d, size_t from, size_t to)
{
    return from < d->n && to < d->n && vec_has(&d->deps[from], to);
}

enum { WHITE = 0, GREY = 1, BLACK = 2 };

int kiln_dag_find_cycle(const kiln_dag *d, const char *const *names, size_t **cycle, size_t *ncycle,
                        kiln_err *err)
{
    int rc = 0;
    unsigned char *color = kiln_xcalloc(d->n ? d->n : 1, 1);
    /* Iterative DFS: graphs come from user input and may be deep chains. */
    size_t *stack = kiln_xmalloc((d->n ? d->n : 1) * sizeof *stack);
    size_t *next = kiln_xcalloc(d->n ? d->n : 1, sizeof *next);
    size_t *found = NULL, nfound = 0;
    kiln_buf msg;
    kiln_buf_init(&msg, KILN_BUF_DEFAULT_LIMIT);

    if (cycle)
        *cycle = NULL;
    if (ncycle)
        *ncycle = 0;
    for (size_t root = 0; root < d->n && !found; root++) {
        size_t top = 0;
        if (color[root] != WHITE)
            continue;
        stack[top++] = root;
        color[root] = GREY;
        next[root] = 0;
        while (top > 0 && !found) {
            size_t u = stack[top - 1];
            if (next[u] == d->deps[u].n) {
                color[u] = BLACK;
                top--;
                continue;
            }
            size_t v = d->deps[u].v[next[u]++];
            if (color[v] == WHITE) {
                color[v] = GREY;
                next[v] = 0;
                stack[top++] = v;
            } else if (color[v] == GREY) {
                /* The cycle is the stack from v up to u; spell it from its
                 * earliest-declared vertex so the message is stable. */
                size_t start = 0, len, min_at = 0;
                while (stack[start] != v)
                    start++;
                len = top - start;
                for (size_t i = 0; i < len; i++)
                    if (stack[start + i] < stack[start + min_at])
                        min_at = i;
                found = kiln_xmalloc((len + 1) * sizeof *found);
                for (size_t i = 0; i < len; i++)
                    found[i] = stack[start + (min_at + i) % len];
                found[len] = found[0];
                nfound = len + 1;
            }
        }
    }
    if (found) {
        kiln_buf_puts(&msg, "graph contains a cycle: ", NULL);
        for (size_t i = 0; i < nfound; i++) {
            if (i)
                kiln_buf_puts(&msg, " -> ", NULL);
            kiln_buf_puts(&msg, names ? names[found[i]] : "?", NULL);
        }
        rc = kiln_err_set(err, KILN_EINVAL, "%s", msg.data);
        if (cycle) {
            *cycle = found;
            found = NULL;
        }
        if (ncycle)
            *ncycle = nfound;
    }
    kiln_buf_free(&msg);
    kiln_xfree(found);
    kiln_xfree(next);
    kiln_xfree(stack);
    kiln_xfree(color);
    return rc;
}

/* Min-heap of vertex numbers: the ready vertex declared first goes first. */
static void heap_push(size_t *h, size_t *n, size_t x)
{
    size_t i = (*n)++;
    h[i] = x;
    while (i > 0 && h[(i - 1) / 2] > h[i]) {
        size_t p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static size_t heap_pop(size_t *h, size_t *n)
{
    size_t top = h[0], i = 0;
    h[0] = h[--(*n)];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m])
            m = l;
        if (r < *n && h[r] < h[m])
            m = r;
        if (m == i)
            break;
        size_t t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
    return top;
}

int kiln_dag_topo_order(const kiln_dag *d, const char *const *names, size_t *order, kiln_err *err)
{
    int rc = kiln_dag_find_cycle(d, names, NULL, NULL, err);
    size_t *indeg = NULL, *heap = NULL, nheap = 0, nout = 0;

    if (rc < 0)
        goto out;
    indeg = kiln_xcalloc(d->n ? d->n : 1, sizeof *indeg);
    heap = kiln_xmalloc((d->n ? d->n : 1) * sizeof *heap);
    for (size_t i = 0; i < d->n; i++) {
        indeg[i] = d->deps[i].n;
        if (indeg[i] == 0)
            heap_push(heap, &nheap, i);
    }
    while (nheap > 0) {
        size_t u = heap_pop(heap, &nheap);
        order[nout++] = u;
        for (size_t j = 0; j < d->dependents[u].n; j++) {
            size_t w = d->dependents[u].v[j];
            if (--indeg[w] == 0)
                heap_push(heap, &nheap, w);
        }
    }
out:
    kiln_xfree(heap);
    kiln_xfree(indeg);
    return rc;
}
