/* The public model API: a prepared graph plus the template it was prepared
 * from (the imported graph after the batch-independent passes); a new batch
 * size prepares a fresh copy of the template. The weights are held once: in
 * the prepared graph (see give_constants). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <omp.h>

#include "core/cpu_load.h"
#include "core/read_file.h"
#include "graph/model.h"
#include "onnx/onnx_import.h"
#include "ops/dnnl_util.h"

static nm_status check_classifier_io(nm_graph *g, nm_error *err)
{
    char buf[160];
    if (g->n_inputs < 1 || g->n_outputs < 1)
        return nm_fail(err, NM_ERR_PARSE, "%s: model has no input or no output", g->source);
    /* Only the first input is fed: another one that a node reads would be zeros. */
    for (int i = 1; i < g->n_inputs; i++)
        for (int k = 0; k < g->n_nodes; k++)
            for (int j = 0; j < g->nodes[k].n_in; j++)
                if (g->nodes[k].in[j] == g->inputs[i])
                    return nm_fail(err, NM_ERR_UNSUPPORTED,
                                   "%s: model has %d inputs ('%s', '%s'%s); neuromask needs exactly one image input",
                                   g->source, g->n_inputs, g->t[g->inputs[0]].name, g->t[g->inputs[i]].name,
                                   g->n_inputs > 2 ? ", ..." : "");
    nm_tensor *in = &g->t[g->inputs[0]];
    if (in->dtype != NM_FLOAT || in->shape.ndim != 4)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: input '%s' is %s %s; neuromask needs a float [N,C,H,W] image input",
                       g->source, in->name, in->dtype == NM_FLOAT ? "float" : "non-float",
                       nm_shape_str(&in->shape, buf, sizeof buf));
    return NM_OK;
}

static nm_status set_batch_dim(nm_graph *g, int batch, nm_error *err)
{
    char buf[160];
    nm_tensor *in = &g->t[g->inputs[0]];
    if (batch > 0) in->shape.dims[0] = batch;
    else if (in->shape.dims[0] <= 0) in->shape.dims[0] = 1;
    for (int i = 1; i < in->shape.ndim; i++)
        if (in->shape.dims[i] <= 0)
            return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: input '%s' has %s dimension %s", g->source, in->name,
                           in->shape.dims[i] == 0 ? "an empty" : "an unknown", nm_shape_str(&in->shape, buf, sizeof buf));
    return NM_OK;
}

/* A NaN or Inf weight would poison every output: refuse the model at load,
 * naming the initializer (or the Constant node) that holds it. */
static nm_status check_finite_weights(const nm_graph *g, nm_error *err)
{
    char what[512];
    for (int i = 0; i < g->n_t; i++) {
        const nm_tensor *t = &g->t[i];
        if (!t->is_const || t->dtype != NM_FLOAT || !t->data) continue;
        snprintf(what, sizeof what, "%s: initializer '%s'", g->source, t->name);
        if (nm_check_finite(nm_f32(t), (size_t)t->numel, what, err)) return NM_ERR_NUMERIC;
    }
    for (int k = 0; k < g->n_nodes; k++)
        for (int a = 0; a < g->nodes[k].n_attrs; a++) {
            const nm_tensor *t = g->nodes[k].attrs[a].t;
            if (!t || t->dtype != NM_FLOAT || !t->data) continue;
            snprintf(what, sizeof what, "%s: %s node '%s': tensor '%s'", g->source, g->nodes[k].op_type,
                     g->nodes[k].name, t->name);
            if (nm_check_finite(nm_f32(t), (size_t)t->numel, what, err)) return NM_ERR_NUMERIC;
        }
    return NM_OK;
}

/* A float activation without elements (a Conv with 0 output channels, say)
 * makes the logits constant: no classifier, nothing to explain. */
static nm_status check_nonempty_activations(nm_graph *g, nm_error *err)
{
    char buf[160];
    for (int k = 0; k < g->n_nodes; k++)
        for (int o = 0; o < g->nodes[k].n_out; o++) {
            const nm_tensor *t = nm_out(g, &g->nodes[k], o);
            if (t && t->dtype == NM_FLOAT && !t->is_const && t->numel == 0)
                return nm_fail(err, NM_ERR_SHAPE, "%s: tensor '%s' of shape %s has no elements", g->source, t->name,
                               nm_shape_str(&t->shape, buf, sizeof buf));
        }
    return NM_OK;
}

/* The passes that do not depend on the batch size, once, on the imported
 * graph: it becomes the template every build prepares a copy of. */
static nm_status make_template(nm_model *m, nm_graph *t, nm_error *err)
{
    m->tmpl = t;
    t->limits = m->opt;
    nm_status s = check_finite_weights(t, err);
    if (!s) s = check_classifier_io(t, err);
    if (!s) s = nm_graph_sort(t, err);
    if (!s) s = nm_graph_remove_identities(t, err);
    if (!s) s = nm_graph_fold_batchnorm(t, err);
    return s;
}

/* The template's constants for a new graph g: moved at the first build (the
 * template keeps them released), later copied from the template where it
 * kept them (nm_model_keep_original) or else from the current graph, which
 * holds them in the same tensor slots (possibly only in an operator's
 * layout: nm_graph_const_read). */
static nm_status give_constants(nm_model *m, nm_graph *g, nm_error *err)
{
    nm_graph *t = m->tmpl;
    for (int i = 0; i < t->n_t; i++) {
        nm_tensor *c = &t->t[i], *x = &g->t[i];
        if (!c->is_const || c->dtype == NM_UNDEFINED) continue;
        if (c->data && !m->g) {
            x->data = c->data;
            c->data = NULL;
            c->released = 1;
            continue;
        }
        const nm_tensor *old = m->g && i < m->g->n_t ? &m->g->t[i] : NULL;
        if (!c->data && (!old || old->dtype != c->dtype || old->numel != c->numel || strcmp(old->name, c->name)))
            return nm_fail(err, NM_ERR_INTERNAL, "%s: constant '%s' lost its value", m->source, c->name);
        nm_status s = nm_graph_const_copy(c->data ? t : m->g, i, &x->data, err);
        if (s) return s;
    }
    return NM_OK;
}

/* Originals the template kept for a randomised graph go once a graph
 * without randomisation holds them again. */
static void release_kept(nm_model *m)
{
    for (int i = 0; m->random_layers == 0 && i < m->tmpl->n_t; i++) {
        nm_tensor *c = &m->tmpl->t[i];
        if (!c->is_const || !c->data || c->dtype == NM_UNDEFINED) continue;
        free(c->data);
        c->data = NULL;
        c->released = 1;
    }
}

static nm_status build_graph(nm_model *m, int batch, nm_error *err)
{
    nm_graph *g = nm_graph_clone(m->tmpl);
    if (!g) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", m->source);
    g->release_consts = 1;   /* read back with nm_graph_const_read (give_constants) */
    nm_status s = give_constants(m, g, err);
    if (!s) s = set_batch_dim(g, batch, err);
    /* oneDNN sizes each primitive's work split for the thread count at its
     * creation and runs it so: the graph is built for m->threads. */
    int saved = nm_dnnl_threads_begin(m->threads);
    if (!s) s = nm_graph_prepare(g, 1u, err);
    nm_dnnl_threads_end(saved);
    if (!s) s = check_nonempty_activations(g, err);
    if (!s && g->t[g->outputs[0]].dtype != NM_FLOAT)
        s = nm_fail(err, NM_ERR_UNSUPPORTED, "%s: output '%s' is not float", g->source, g->t[g->outputs[0]].name);
    if (s) {
        nm_graph_free(g);
        return s;
    }
    nm_graph_free(m->g);
    m->g = g;
    release_kept(m);
    return m->random_layers > 0 ? nm_model_apply_randomization(m, err) : NM_OK;
}

nm_status nm_model_keep_original(nm_model *m, int t, nm_error *err)
{
    nm_tensor *c = t >= 0 && t < m->tmpl->n_t ? &m->tmpl->t[t] : NULL;
    if (!c || !c->is_const || c->data || c->dtype == NM_UNDEFINED) return NM_OK;
    nm_status s = nm_graph_const_copy(m->g, t, &c->data, err);
    if (!s) c->released = 0;
    return s;
}

/* A model from an imported graph (or the import's failure). */
static nm_status load_imported(nm_model *m, nm_status s, nm_graph *t, nm_model **out, nm_error *err)
{
    if (!s) s = make_template(m, t, err);
    else nm_graph_free(t);
    if (!s) s = build_graph(m, m->opt.batch, err);
    if (s) {
        nm_model_free(m);
        return s;
    }
    *out = m;
    return NM_OK;
}

/* ------------------------------------------------------------ threads */

#define LOAD_PERIOD 0.05    /* seconds between reads of the load */
#define VOTES_FEWER 2       /* reads in a row that must ask for fewer threads ... */
#define VOTES_MORE 20       /* ... or for more (a second of free cores: a moment's
                               pause in the other work must not flip the plan, since
                               each change rebuilds the graph: ~0.1 s on mobilenet_v2
                               at batch 1, seconds at batch 16, where the fresh
                               buffers (~900 MB) are first touched) */

/* The thread count the load asks for now: the usable CPUs that other
 * processes' runnable threads leave free, within [1, threads_max]. */
static int threads_wanted(const nm_model *m)
{
    int busy = nm_cpu_runnable_elsewhere();
    if (busy < 0) return m->threads;
    int n = m->cpus - busy;
    return n < 1 ? 1 : n > m->threads_max ? m->threads_max : n;
}

static void threads_init(nm_model *m)
{
    const char *env = getenv("OMP_NUM_THREADS");
    m->cpus = nm_cpu_usable();
    m->threads_max = omp_get_max_threads();
    if (m->opt.threads > 0) m->threads = m->threads_max = m->opt.threads;
    else if (env && *env) m->threads = m->threads_max;
    else {
        m->threads_follow = 1;
        m->threads = threads_wanted(m);
        m->load_read_at = nm_cpu_now();
    }
}

/* Before a forward pass: re-plan for another thread count when the load has
 * asked for it long enough. A failed rebuild keeps the current graph. */
static void follow_load(nm_model *m)
{
    double now = nm_cpu_now();
    if (!m->threads_follow || now < m->load_read_at + LOAD_PERIOD) return;
    m->load_read_at = now;
    int want = threads_wanted(m);
    if (want == m->threads || want != m->threads_voted) {
        m->threads_voted = want;
        m->load_votes = want == m->threads ? 0 : 1;
        return;
    }
    if (++m->load_votes < (want < m->threads ? VOTES_FEWER : VOTES_MORE)) return;
    int was = m->threads;
    m->threads = want;
    m->load_votes = 0;
    nm_error ignored;
    if (build_graph(m, (int)m->g->t[m->g->inputs[0]].shape.dims[0], &ignored)) m->threads = was;
}

static nm_model *model_new(const char *name, const nm_load_options *opt)
{
    nm_model *m = calloc(1, sizeof *m);
    if (m) m->source = strdup(name);
    if (m && !m->source) {
        free(m);
        return NULL;
    }
    if (m && opt) m->opt = *opt;
    if (m) threads_init(m);
    return m;
}

nm_status nm_model_load_memory(const void *bytes, size_t size, const char *name,
                               const nm_load_options *opt, nm_model **out, nm_error *err)
{
    *out = NULL;
    if (!name) name = "<memory>";
    if (size == 0) return nm_fail(err, NM_ERR_PARSE, "%s: empty file", name);
    nm_model *m = model_new(name, opt);
    if (!m) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", name);
    nm_graph *t = NULL;
    nm_status s = nm_onnx_import(bytes, size, m->source, &t, err);
    return load_imported(m, s, t, out, err);
}

nm_status nm_model_load_file(const char *path, const nm_load_options *opt, nm_model **out, nm_error *err)
{
    void *bytes = NULL;
    size_t size = 0;
    *out = NULL;
    nm_status s = nm_read_file(path, &bytes, &size, err);
    if (s) return s;
    nm_model *m = size ? model_new(path, opt) : NULL;
    if (!m) {
        free(bytes);
        return size ? nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", path)
                    : nm_fail(err, NM_ERR_PARSE, "%s: empty file", path);
    }
    nm_graph *t = NULL;
    s = nm_onnx_import_owned(bytes, size, m->source, &t, err);   /* frees the bytes once unpacked */
    return load_imported(m, s, t, out, err);
}

void nm_model_free(nm_model *m)
{
    if (!m) return;
    nm_graph_free(m->g);
    nm_graph_free(m->tmpl);
    free(m->source);
    free(m);
}

nm_status nm_model_rebuild(nm_model *m, nm_error *err)
{
    return build_graph(m, (int)m->g->t[m->g->inputs[0]].shape.dims[0], err);
}

nm_status nm_model_set_batch(nm_model *m, int batch, nm_error *err)
{
    if (batch < 1) return nm_fail(err, NM_ERR_ARG, "%s: batch size must be >= 1 (got %d)", m->source, batch);
    if (m->g->t[m->g->inputs[0]].shape.dims[0] == batch) return NM_OK;
    return build_graph(m, batch, err);
}

nm_shape nm_model_input_shape(const nm_model *m) { return m->g->t[m->g->inputs[0]].shape; }
nm_shape nm_model_output_shape(const nm_model *m) { return m->g->t[m->g->outputs[0]].shape; }
const char *nm_model_input_name(const nm_model *m) { return m->g->t[m->g->inputs[0]].name; }
const char *nm_model_output_name(const nm_model *m) { return m->g->t[m->g->outputs[0]].name; }

const char *nm_model_metadata(const nm_model *m, const char *key)
{
    for (int i = 0; i < m->g->n_meta; i++)
        if (strcmp(m->g->meta_key[i], key) == 0) return m->g->meta_val[i];
    return NULL;
}

/* One forward pass; `shared`: through nm_graph_forward_shared, keeping no
 * activations (nm_model_predict). */
static nm_status run_forward(nm_model *m, const float *input, float *output, int shared, nm_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "%s: input '%s'", m->source, nm_model_input_name(m));
    if (nm_check_finite(input, (size_t)m->g->t[m->g->inputs[0]].numel, what, err)) return NM_ERR_NUMERIC;
    follow_load(m);
    nm_graph *g = m->g;
    nm_tensor *in = &g->t[g->inputs[0]], *out = &g->t[g->outputs[0]];
    memcpy(in->data, input, (size_t)in->numel * sizeof(float));
    int saved = nm_dnnl_threads_begin(m->threads);
    m->last_shared = shared;
    nm_status s = shared ? nm_graph_forward_shared(g, err) : nm_graph_forward(g, err);
    nm_dnnl_threads_end(saved);
    if (!s && output) memcpy(output, out->data, (size_t)out->numel * sizeof(float));
    return s;
}

nm_status nm_model_forward(nm_model *m, const float *input, float *output, nm_error *err)
{
    return run_forward(m, input, output, 0, err);
}

nm_status nm_model_predict(nm_model *m, const float *input, float *output, nm_error *err)
{
    return run_forward(m, input, output, 1, err);
}

nm_status nm_model_backward(nm_model *m, const float *doutput, float *dinput, nm_error *err)
{
    nm_graph *g = m->g;
    nm_tensor *in = &g->t[g->inputs[0]], *out = &g->t[g->outputs[0]];
    if (!out->grad) return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: the output does not depend on the input", m->source);
    if (m->last_shared)
        return nm_fail(err, NM_ERR_ARG, "%s: backward after nm_model_predict, which keeps no activations "
                       "(run nm_model_forward first)", m->source);
    memcpy(out->grad, doutput, (size_t)out->numel * sizeof(float));
    int saved = nm_dnnl_threads_begin(m->threads);
    nm_status s = nm_graph_backward(g, err);
    nm_dnnl_threads_end(saved);
    if (!s && dinput) memcpy(dinput, in->grad, (size_t)in->numel * sizeof(float));
    return s;
}

int nm_model_tensors(const nm_model *m, const char **names, nm_shape *shapes, int cap)
{
    int count = 0;
    for (int i = 0; i < m->g->n_nodes; i++) {
        const nm_node *n = &m->g->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            const nm_tensor *t = nm_out(m->g, n, k);
            if (!t) continue;
            if (count < cap) names[count] = t->name, shapes[count] = t->shape;
            count++;
        }
    }
    return count;
}

nm_status nm_model_tensor(nm_model *m, const char *name, nm_shape *shape, const float **value,
                          const float **grad, nm_error *err)
{
    int i = nm_graph_find_tensor(m->g, name);
    if (i < 0) return nm_fail(err, NM_ERR_ARG, "%s: no tensor named '%s'", m->source, name);
    const nm_tensor *t = &m->g->t[i];
    if (t->dtype != NM_FLOAT) return nm_fail(err, NM_ERR_ARG, "%s: tensor '%s' is not float", m->source, name);
    if (m->last_shared && m->g->shared_off && m->g->shared_off[i] >= 0)
        return nm_fail(err, NM_ERR_ARG, "%s: tensor '%s' is not kept by nm_model_predict (run nm_model_forward)",
                       m->source, name);
    if (shape) *shape = t->shape;
    int saved = nm_dnnl_threads_begin(m->threads);   /* layout conversions run on the model's threads */
    nm_status st = nm_graph_plain_view(m->g, i, value, grad, err);
    nm_dnnl_threads_end(saved);
    return st;
}

void nm_model_get_info(const nm_model *m, nm_model_info *info)
{
    const nm_graph *g = m->g;
    memset(info, 0, sizeof *info);
    info->n_nodes = g->n_nodes;
    info->opset = g->opset;
    info->planned_bytes = g->planned_bytes;
    for (int i = 0; i < g->n_t; i++) {
        const nm_tensor *t = &g->t[i];
        if (t->is_const && t->dtype == NM_FLOAT) info->n_params += t->numel;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const nm_node *n = &g->nodes[i];
        info->flops += nm_node_flops(g, n);
        int k = 0;
        while (k < info->n_op_types && strcmp(info->op_types[k], nm_op_name(n->op)) != 0) k++;
        if (k == info->n_op_types && k < 64) info->op_types[info->n_op_types++] = nm_op_name(n->op);
        if (k < 64) info->op_counts[k]++;
    }
}

int nm_model_spatial_tensors(const nm_model *m, const char **names, int cap)
{
    int count = 0;
    for (int i = 0; i < m->g->n_nodes; i++) {
        const nm_node *n = &m->g->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            const nm_tensor *t = nm_out(m->g, n, k);
            if (!t || t->dtype != NM_FLOAT || t->shape.ndim != 4 || t->shape.dims[2] < 2) continue;
            if (count < cap) names[count] = t->name;
            count++;
        }
    }
    return count;
}
