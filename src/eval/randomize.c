/* Cascading model randomisation (Adebayo et al. 2018, "Sanity checks for
 * saliency maps"): the weights of the top n layers are replaced by Gaussian
 * values with each tensor's own standard deviation. Restoring means
 * rebuilding the graph from the model's template, which keeps the original
 * of every re-drawn tensor (nm_model_keep_original). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "graph/model.h"

/* A constant float tensor with a value (maybe held in its operator's layout). */
static int const_float(const nm_tensor *t)
{
    return t && t->is_const && t->dtype == NM_FLOAT && (t->data || t->released);
}

/* A layer: Conv, Gemm or MatMul reading a constant float tensor. */
static int is_layer(nm_graph *g, const nm_node *n)
{
    if (n->op != NM_OP_CONV && n->op != NM_OP_GEMM && n->op != NM_OP_MATMUL) return 0;
    for (int i = 0; i < n->n_in; i++)
        if (const_float(nm_in(g, n, i))) return 1;
    return 0;
}

int nm_model_layer_count(const nm_model *m)
{
    int count = 0;
    for (int i = 0; i < m->g->n_nodes; i++) count += is_layer(m->g, &m->g->nodes[i]);
    return count;
}

/* splitmix64: a small, seedable generator with independent streams. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform_open(uint64_t *s)   /* (0, 1) */
{
    return ((double)(splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double tensor_std(const float *v, int64_t n)
{
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += v[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    return sqrt(var / (double)n);
}

/* Box-Muller normal values N(0, std^2). */
static void fill_gaussian(float *v, int64_t n, double std, uint64_t *state)
{
    for (int64_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform_open(state))), a = 2.0 * M_PI * uniform_open(state);
        v[i] = (float)(std * r * cos(a));
        if (i + 1 < n) v[i + 1] = (float)(std * r * sin(a));
    }
}

/* Re-draw every constant float input of node n (layer number `layer`), then
 * let the op rebuild what it derived from them (e.g. reordered weights). */
static nm_status randomize_node(nm_model *m, nm_node *n, int layer, uint64_t seed, nm_error *err)
{
    nm_graph *g = m->g;
    for (int i = 0; i < n->n_in; i++) {
        nm_tensor *t = nm_in(g, n, i);
        if (!const_float(t) || t->numel < 1) continue;
        nm_status s = nm_model_keep_original(m, n->in[i], err);
        if (!s) s = nm_graph_const_restore(g, n->in[i], err);
        if (s) return s;
        uint64_t state = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(layer + 1)) ^ ((uint64_t)i << 56);
        splitmix64(&state);
        fill_gaussian(nm_f32(t), t->numel, tensor_std(nm_f32(t), t->numel), &state);
    }
    nm_status s = nm_op_get(n->op)->reshape(g, n, err);
    if (s) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return nm_fail(err, s, "%s: randomising layer '%s': %s", g->source, n->name, msg);
    }
    return NM_OK;
}

nm_status nm_model_apply_randomization(nm_model *m, nm_error *err)
{
    nm_graph *g = m->g;
    int count = nm_model_layer_count(m), layer = count;
    for (int i = g->n_nodes - 1; i >= 0 && layer > count - m->random_layers && layer > 0; i--) {
        nm_node *n = &g->nodes[i];
        if (!is_layer(g, n)) continue;
        layer--;
        nm_status s = randomize_node(m, n, layer, m->random_seed, err);
        if (s) return s;
    }
    return NM_OK;
}

/* The randomisation is part of the model's state, so a later rebuild (a new
 * batch size) keeps it. */
nm_status nm_model_randomize(nm_model *m, int n_layers, uint64_t seed, nm_error *err)
{
    m->random_layers = n_layers > 0 ? n_layers : 0;
    m->random_seed = seed;
    return nm_model_rebuild(m, err);
}
