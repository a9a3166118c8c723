/* Building and freeing graphs; attribute look-up. */
#include "graph/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 1;
    int c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *p = realloc(*arr, (size_t)c * elem);
    if (!p) return 0;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
    *arr = p;
    *cap = c;
    return 1;
}

nm_graph *nm_graph_new(const char *source)
{
    nm_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->source = dup_str(source);
    if (!g->source) {
        free(g);
        return NULL;
    }
    return g;
}

static void free_tensor(nm_tensor *t)
{
    free(t->name);
    free(t->data);
    free(t->grad);
}

void nm_node_free(nm_node *n)
{
    const nm_op_impl *impl = nm_op_get(n->op);
    if (n->state && impl && impl->destroy) impl->destroy(n);
    for (int i = 0; i < n->n_attrs; i++) {
        nm_attr *a = &n->attrs[i];
        free(a->name);
        free(a->s);
        free(a->floats);
        free(a->ints);
        if (a->t) {
            free_tensor(a->t);
            free(a->t);
        }
    }
    free(n->attrs);
    free(n->name);
    free(n->op_type);
    free(n->in);
    free(n->out);
}

void nm_graph_free(nm_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) nm_node_free(&g->nodes[i]);
    nm_graph_free_plan(g);
    for (int i = 0; i < g->n_t; i++) free_tensor(&g->t[i]);
    for (int i = 0; i < g->n_meta; i++) {
        free(g->meta_key[i]);
        free(g->meta_val[i]);
    }
    free(g->meta_key);
    free(g->meta_val);
    free(g->nodes);
    free(g->t);
    free(g->inputs);
    free(g->outputs);
    free(g->source);
    if (g->stream) dnnl_stream_destroy(g->stream);
    if (g->engine) dnnl_engine_destroy(g->engine);
    free(g);
}

int nm_graph_find_tensor(const nm_graph *g, const char *name)
{
    for (int i = 0; i < g->n_t; i++)
        if (strcmp(g->t[i].name, name) == 0) return i;
    return -1;
}

int nm_graph_tensor(nm_graph *g, const char *name)
{
    int i = nm_graph_find_tensor(g, name);
    if (i >= 0) return i;
    if (!grow((void **)&g->t, &g->cap_t, g->n_t + 1, sizeof *g->t)) return -1;
    nm_tensor *t = &g->t[g->n_t];
    memset(t, 0, sizeof *t);
    t->name = dup_str(name);
    if (!t->name) return -1;
    t->producer = -1;
    return g->n_t++;
}

static int *dup_ints(const int *v, int n)
{
    int *d = malloc(sizeof *d * (size_t)(n ? n : 1));
    if (d && n) memcpy(d, v, sizeof *d * (size_t)n);
    return d;
}

int nm_graph_add_node(nm_graph *g, const char *op_type, const char *name,
                      int n_in, const int *in, int n_out, const int *out)
{
    if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) return -1;
    nm_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = nm_op_from_name(op_type);
    n->op_type = dup_str(op_type);
    n->name = dup_str(name);
    n->in = dup_ints(in, n_in);
    n->out = dup_ints(out, n_out);
    if (!n->op_type || !n->name || !n->in || !n->out) {
        nm_node_free(n);
        return -1;
    }
    n->n_in = n_in;
    n->n_out = n_out;
    return g->n_nodes++;
}

nm_attr *nm_node_add_attr(nm_node *n, const char *name, nm_attr_type type)
{
    nm_attr *a = realloc(n->attrs, sizeof *a * (size_t)(n->n_attrs + 1));
    if (!a) return NULL;
    n->attrs = a;
    a = &a[n->n_attrs];
    memset(a, 0, sizeof *a);
    a->name = dup_str(name);
    if (!a->name) return NULL;
    a->type = type;
    n->n_attrs++;
    return a;
}

static int push_index(int **arr, int *n, int v)
{
    int *p = realloc(*arr, sizeof *p * (size_t)(*n + 1));
    if (!p) return 0;
    p[(*n)++] = v;
    *arr = p;
    return 1;
}

int nm_graph_add_input(nm_graph *g, int tensor)
{
    g->t[tensor].is_input = 1;
    return push_index(&g->inputs, &g->n_inputs, tensor);
}

int nm_graph_add_output(nm_graph *g, int tensor)
{
    g->t[tensor].is_output = 1;
    return push_index(&g->outputs, &g->n_outputs, tensor);
}

int nm_graph_add_meta(nm_graph *g, const char *key, const char *val)
{
    char **k = realloc(g->meta_key, sizeof *k * (size_t)(g->n_meta + 1));
    if (!k) return 0;
    g->meta_key = k;
    char **v = realloc(g->meta_val, sizeof *v * (size_t)(g->n_meta + 1));
    if (!v) return 0;
    g->meta_val = v;
    k[g->n_meta] = dup_str(key);
    v[g->n_meta] = dup_str(val);
    g->n_meta++;
    return k[g->n_meta - 1] && v[g->n_meta - 1];
}

void nm_tensor_set_const(nm_tensor *t, nm_dtype dtype, const nm_shape *shape, void *data)
{
    free(t->data);
    t->dtype = dtype;
    t->shape = *shape;
    t->numel = nm_shape_numel(shape);
    t->data = data;
    t->is_const = 1;
}

const nm_attr *nm_attr_get(const nm_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t nm_attr_int(const nm_node *n, const char *name, int64_t def)
{
    const nm_attr *a = nm_attr_get(n, name);
    return (a && a->type == NM_ATTR_INT) ? a->i : def;
}

float nm_attr_float(const nm_node *n, const char *name, float def)
{
    const nm_attr *a = nm_attr_get(n, name);
    return (a && a->type == NM_ATTR_FLOAT) ? a->f : def;
}

const char *nm_attr_string(const nm_node *n, const char *name, const char *def)
{
    const nm_attr *a = nm_attr_get(n, name);
    return (a && a->type == NM_ATTR_STRING && a->s) ? a->s : def;
}

int nm_attr_ints(const nm_node *n, const char *name, int64_t *vals, int cap)
{
    const nm_attr *a = nm_attr_get(n, name);
    if (!a || a->type != NM_ATTR_INTS) return -1;
    for (int i = 0; i < a->n && i < cap; i++) vals[i] = a->ints[i];
    return a->n;
}

nm_status nm_node_fail(const nm_graph *g, const nm_node *n, nm_error *err, nm_status code, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nm_fail(err, code, "%s: %s node '%s': %s", g->source, n->op_type, n->name, what);
}
