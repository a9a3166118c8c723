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
    free(g->scratch);
    if (g->stream) dnnl_stream_destroy(g->stream);
    if (g->engine) dnnl_engine_destroy(g->engine);
    free(g);
}

/* ------------------------------------------------------------ copies */

static int *dup_ints(const int *v, int n);

static void *dup_mem(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n) memcpy(d, p, n);
    return d;
}

static nm_tensor *clone_attr_tensor(const nm_tensor *t)
{
    nm_tensor *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    *c = *t;
    c->grad = NULL;
    c->name = dup_str(t->name);
    c->data = t->data ? dup_mem(t->data, (size_t)(t->numel > 0 ? t->numel : 0) * nm_dtype_size(t->dtype)) : NULL;
    if (!c->name || (t->data && !c->data)) {
        free(c->name);
        free(c->data);
        free(c);
        return NULL;
    }
    return c;
}

static int clone_attrs(nm_node *d, const nm_node *s)
{
    if (!s->n_attrs) return 1;
    d->attrs = calloc((size_t)s->n_attrs, sizeof *d->attrs);
    if (!d->attrs) return 0;
    for (int i = 0; i < s->n_attrs; i++, d->n_attrs++) {
        const nm_attr *a = &s->attrs[i];
        nm_attr *c = &d->attrs[i];
        *c = *a;
        c->name = dup_str(a->name);
        c->s = a->s ? dup_str(a->s) : NULL;
        c->floats = a->floats ? dup_mem(a->floats, sizeof(float) * (size_t)a->n) : NULL;
        c->ints = a->ints ? dup_mem(a->ints, sizeof(int64_t) * (size_t)a->n) : NULL;
        c->t = a->t ? clone_attr_tensor(a->t) : NULL;
        if (!c->name || (a->s && !c->s) || (a->floats && !c->floats) || (a->ints && !c->ints) || (a->t && !c->t)) {
            d->n_attrs++;   /* freed with the node */
            return 0;
        }
    }
    return 1;
}

nm_graph *nm_graph_clone(const nm_graph *g)
{
    nm_graph *c = nm_graph_new(g->source);
    if (!c) return NULL;
    c->opset = g->opset;
    c->limits = g->limits;
    c->t = calloc((size_t)(g->n_t ? g->n_t : 1), sizeof *c->t);
    c->nodes = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *c->nodes);
    c->inputs = dup_mem(g->inputs, sizeof(int) * (size_t)g->n_inputs);
    c->outputs = dup_mem(g->outputs, sizeof(int) * (size_t)g->n_outputs);
    if (!c->t || !c->nodes || !c->inputs || !c->outputs) goto oom;
    c->cap_t = g->n_t ? g->n_t : 1;
    c->cap_nodes = g->n_nodes ? g->n_nodes : 1;
    c->n_inputs = g->n_inputs;
    c->n_outputs = g->n_outputs;
    for (int i = 0; i < g->n_t; i++, c->n_t++) {
        const nm_tensor *t = &g->t[i];
        nm_tensor *x = &c->t[i];
        *x = *t;
        x->data = NULL;
        x->grad = NULL;
        x->released = 0;
        x->name = dup_str(t->name);
        if (!x->name) goto oom;
    }
    for (int k = 0; k < g->n_nodes; k++, c->n_nodes++) {
        const nm_node *n = &g->nodes[k];
        nm_node *d = &c->nodes[k];
        memset(d, 0, sizeof *d);
        d->op = n->op;
        d->n_in = n->n_in;
        d->n_out = n->n_out;
        d->dead = n->dead;
        d->name = dup_str(n->name);
        d->op_type = dup_str(n->op_type);
        d->in = dup_ints(n->in, n->n_in);
        d->out = dup_ints(n->out, n->n_out);
        if (!d->name || !d->op_type || !d->in || !d->out || !clone_attrs(d, n)) {
            c->n_nodes++;   /* freed with the graph */
            goto oom;
        }
    }
    for (int i = 0; i < g->n_meta; i++)
        if (!nm_graph_add_meta(c, g->meta_key[i], g->meta_val[i])) goto oom;
    return c;
oom:
    nm_graph_free(c);
    return NULL;
}

nm_status nm_graph_const_read(nm_graph *g, int t, void *dst, nm_error *err)
{
    const nm_tensor *x = &g->t[t];
    size_t bytes = (size_t)(x->numel > 0 ? x->numel : 0) * nm_dtype_size(x->dtype);
    if (x->data) {
        if (bytes) memcpy(dst, x->data, bytes);
        return NM_OK;
    }
    for (int k = 0; x->released && k < g->n_nodes; k++) {
        nm_node *n = &g->nodes[k];
        if (n->dead || !n->state) continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] == t && nm_op_restore_const(g, n, i, dst) == NM_OK) return NM_OK;
    }
    return nm_fail(err, NM_ERR_INTERNAL, "%s: constant '%s' has no value", g->source, x->name);
}

nm_status nm_graph_const_copy(nm_graph *g, int t, void **out, nm_error *err)
{
    const nm_tensor *x = &g->t[t];
    size_t bytes = (size_t)(x->numel > 0 ? x->numel : 0) * nm_dtype_size(x->dtype);
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
    nm_status s = nm_graph_const_read(g, t, p, err);
    if (s) {
        free(p);
        return s;
    }
    *out = p;
    return NM_OK;
}

nm_status nm_graph_const_restore(nm_graph *g, int t, nm_error *err)
{
    nm_tensor *x = &g->t[t];
    if (!x->released || x->data) return NM_OK;
    nm_status s = nm_graph_const_copy(g, t, &x->data, err);
    if (!s) x->released = 0;
    return s;
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

double nm_node_flops(const nm_graph *g, const nm_node *n)
{
    const nm_tensor *out = n->n_out ? &g->t[n->out[0]] : NULL;
    if (!out || n->n_in < 2 || n->in[1] < 0) return 0;
    const nm_tensor *w = &g->t[n->in[1]];
    if (n->op == NM_OP_CONV && w->shape.ndim >= 3 && w->shape.dims[0] > 0)
        return 2.0 * (double)out->numel * (double)(w->numel / w->shape.dims[0]);
    if (n->op == NM_OP_GEMM || n->op == NM_OP_MATMUL) {
        const nm_tensor *a = &g->t[n->in[0]];
        int64_t k = a->shape.ndim ? a->shape.dims[a->shape.ndim - 1] : 1;
        if (n->op == NM_OP_GEMM && nm_attr_int(n, "transA", 0)) k = a->shape.dims[0];
        return 2.0 * (double)out->numel * (double)k;
    }
    return 0;
}
