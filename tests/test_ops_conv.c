/* Conv, MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool on
 * single-node graphs, against naive plain C references of the forward and
 * backward passes (written from the ONNX spec, independent of the operators),
 * and against central finite differences. Covers groups, depthwise, strides,
 * dilations, asymmetric pads, auto_pad, 1-D/3-D, ceil_mode,
 * count_include_pad, batch > 1, constant weights and weights fed as inputs,
 * MaxPool on int64 and its Indices output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { AP_NOTSET, AP_VALID, AP_SAME_UPPER, AP_SAME_LOWER };
static const char *const auto_pad_names[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};

/* A Conv or pooling node: input shape and attributes. */
typedef struct spec {
    const char *op;              /* Conv, MaxPool, AveragePool */
    int nsp;
    int64_t n, c, m, group;      /* m, group: Conv only */
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6];             /* begin..., end... */
    int auto_pad;
    int ceil_mode, count_include_pad;
    int bias;                    /* Conv */
    int kernel_attr;             /* Conv: write kernel_shape */
} spec;

/* The reference geometry in 3-D form (leading axes of size 1). */
typedef struct rgeom {
    int64_t in[3], out[3], k[3], s[3], d[3], pl[3], pr[3];
    int64_t in_sz, out_sz, k_sz;
} rgeom;

static uint64_t rng = 12345;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t rnd_int(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

static float *rnd_floats(int64_t n, float lo, float hi)
{
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
    uint64_t st = rnd();
    nm_test_rand_fill(x, n, lo, hi, &st);
    return x;
}

/* Distinct values 0.05 apart, shuffled: maxima without ties, even after +-eps. */
static float *distinct_floats(int64_t n)
{
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = 0.05f * (float)(i - n / 2);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rnd() % (uint64_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    return x;
}

/* Output size and pads of one axis per the ONNX spec (ceil_mode drops a last
 * window that would start in the right padding, as PyTorch and ONNX >= 1.16). */
static int ref_axis(const spec *p, int i, int64_t *out, int64_t *pl, int64_t *pr)
{
    int64_t in = p->in[i], s = p->s[i], ext = (p->k[i] - 1) * p->d[i] + 1;
    if (p->auto_pad == AP_SAME_UPPER || p->auto_pad == AP_SAME_LOWER) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + ext - in;
        if (total < 0) total = 0;
        *pl = p->auto_pad == AP_SAME_UPPER ? total / 2 : (total + 1) / 2;
        *pr = total - *pl;
        return 1;
    }
    *pl = p->auto_pad == AP_VALID ? 0 : p->pads[i];
    *pr = p->auto_pad == AP_VALID ? 0 : p->pads[p->nsp + i];
    int64_t span = in + *pl + *pr - ext;
    if (span < 0) return 0;
    if (p->ceil_mode && p->auto_pad == AP_NOTSET) {
        *out = (int64_t)ceil((double)span / (double)s) + 1;
        if ((*out - 1) * s >= in + *pl) (*out)--;
    } else {
        *out = span / s + 1;
    }
    return 1;
}

static int ref_geom(const spec *p, rgeom *q)
{
    int off = 3 - p->nsp;
    for (int a = 0; a < 3; a++) {
        q->in[a] = q->out[a] = q->k[a] = q->s[a] = q->d[a] = 1;
        q->pl[a] = q->pr[a] = 0;
    }
    for (int i = 0; i < p->nsp; i++) {
        int a = off + i;
        q->in[a] = p->in[i];
        q->k[a] = p->k[i];
        q->s[a] = p->s[i];
        q->d[a] = p->d[i];
        if (!ref_axis(p, i, &q->out[a], &q->pl[a], &q->pr[a]) || q->out[a] < 1) return 0;
    }
    q->in_sz = q->in[0] * q->in[1] * q->in[2];
    q->out_sz = q->out[0] * q->out[1] * q->out[2];
    q->k_sz = q->k[0] * q->k[1] * q->k[2];
    return 1;
}

/* Input position along axis a of output o and kernel tap k; -1 in padding. */
static int64_t tap(const rgeom *q, int a, int64_t o, int64_t k)
{
    int64_t i = o * q->s[a] - q->pl[a] + k * q->d[a];
    return (i >= 0 && i < q->in[a]) ? i : -1;
}

/* Visit (input offset, kernel offset) pairs of output position (o0,o1,o2). */
#define FOR_TAPS(q, o0, o1, o2, xi, ki, BODY)                                   \
    for (int64_t k0 = 0; k0 < (q)->k[0]; k0++)                                  \
        for (int64_t k1 = 0; k1 < (q)->k[1]; k1++)                              \
            for (int64_t k2 = 0; k2 < (q)->k[2]; k2++) {                        \
                int64_t i0 = tap(q, 0, o0, k0), i1 = tap(q, 1, o1, k1);         \
                int64_t i2 = tap(q, 2, o2, k2);                                 \
                if (i0 < 0 || i1 < 0 || i2 < 0) continue;                       \
                int64_t xi = (i0 * (q)->in[1] + i1) * (q)->in[2] + i2;          \
                int64_t ki = (k0 * (q)->k[1] + k1) * (q)->k[2] + k2;            \
                BODY;                                                           \
            }

#define FOR_OUT(q, o0, o1, o2, oi)                                              \
    for (int64_t o0 = 0, oi = 0; o0 < (q)->out[0]; o0++)                        \
        for (int64_t o1 = 0; o1 < (q)->out[1]; o1++)                            \
            for (int64_t o2 = 0; o2 < (q)->out[2]; o2++, oi++)

/* ------------------------------------------------------------ references */

static void ref_conv_forward(const spec *p, const rgeom *q, const float *x, const float *w, const float *b,
                             float *y)
{
    int64_t cg = p->c / p->group, mg = p->m / p->group;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t m = 0; m < p->m; m++) {
            int64_t g = m / mg;
            FOR_OUT(q, o0, o1, o2, oi)
            {
                double sum = b ? b[m] : 0.0;
                for (int64_t ci = 0; ci < cg; ci++) {
                    const float *xc = x + (n * p->c + g * cg + ci) * q->in_sz;
                    const float *wc = w + (m * cg + ci) * q->k_sz;
                    FOR_TAPS(q, o0, o1, o2, xi, ki, sum += (double)xc[xi] * wc[ki])
                }
                y[(n * p->m + m) * q->out_sz + oi] = (float)sum;
            }
        }
}

static void ref_conv_backward(const spec *p, const rgeom *q, const float *x, const float *w, const float *dy,
                              double *dx, double *dw, double *db)
{
    int64_t cg = p->c / p->group, mg = p->m / p->group;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t m = 0; m < p->m; m++) {
            int64_t g = m / mg;
            FOR_OUT(q, o0, o1, o2, oi)
            {
                double gy = dy[(n * p->m + m) * q->out_sz + oi];
                db[m] += gy;
                for (int64_t ci = 0; ci < cg; ci++) {
                    int64_t xc = (n * p->c + g * cg + ci) * q->in_sz, wc = (m * cg + ci) * q->k_sz;
                    FOR_TAPS(q, o0, o1, o2, xi, ki, {
                        dx[xc + xi] += gy * w[wc + ki];
                        dw[wc + ki] += gy * x[xc + xi];
                    })
                }
            }
        }
}

/* AveragePool's divisor: taps inside the input, or with count_include_pad
 * the taps inside the explicitly padded input (not ceil_mode's extension). */
static double avg_count(const spec *p, const rgeom *q, int64_t o0, int64_t o1, int64_t o2)
{
    int64_t o[3] = {o0, o1, o2}, cnt = 1;
    for (int a = 0; a < 3; a++) {
        int64_t c = 0;
        for (int64_t k = 0; k < q->k[a]; k++) {
            int64_t i = o[a] * q->s[a] - q->pl[a] + k * q->d[a];
            c += p->count_include_pad ? (i >= -q->pl[a] && i < q->in[a] + q->pr[a]) : (i >= 0 && i < q->in[a]);
        }
        cnt *= c;
    }
    return (double)cnt;
}

/* Forward into y; with dy, the backward into dx instead. */
static void ref_pool(const spec *p, const rgeom *q, const float *x, float *y, const float *dy, double *dx)
{
    int is_max = strcmp(p->op, "MaxPool") == 0;
    for (int64_t c = 0; c < p->n * p->c; c++) {
        const float *xc = x + c * q->in_sz;
        FOR_OUT(q, o0, o1, o2, oi)
        {
            int64_t best = -1;
            double sum = 0;
            FOR_TAPS(q, o0, o1, o2, xi, ki, {
                (void)ki;
                if (best < 0 || xc[xi] > xc[best]) best = xi;
                sum += xc[xi];
            })
            double cnt = avg_count(p, q, o0, o1, o2);
            if (!dy) {
                y[c * q->out_sz + oi] = is_max ? xc[best] : (float)(sum / cnt);
                continue;
            }
            double gy = dy[c * q->out_sz + oi];
            if (is_max) dx[c * q->in_sz + best] += gy;
            else FOR_TAPS(q, o0, o1, o2, xi, ki, { (void)ki; dx[c * q->in_sz + xi] += gy / cnt; })
        }
    }
}

/* ------------------------------------------------------------ graphs */

static void add_ints(nm_graph *g, int node, const char *name, const int64_t *v, int n)
{
    nm_attr *a = nm_node_add_attr(&g->nodes[node], name, NM_ATTR_INTS);
    a->n = n;
    a->ints = malloc(sizeof(int64_t) * (size_t)n);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

static void add_int(nm_graph *g, int node, const char *name, int64_t v)
{
    nm_node_add_attr(&g->nodes[node], name, NM_ATTR_INT)->i = v;
}

static void add_string(nm_graph *g, int node, const char *name, const char *v)
{
    nm_node_add_attr(&g->nodes[node], name, NM_ATTR_STRING)->s = strdup(v);
}

static nm_shape shape_of(int ndim, const int64_t *dims)
{
    nm_shape s = {.ndim = ndim};
    for (int i = 0; i < ndim; i++) s.dims[i] = dims[i];
    return s;
}

static void set_input(nm_graph *g, int t, nm_dtype dt, nm_shape s)
{
    g->t[t].dtype = dt;
    g->t[t].shape = s;
    g->t[t].numel = nm_shape_numel(&s);
    nm_graph_add_input(g, t);
}

static void set_const(nm_graph *g, int t, nm_shape s, const float *v)
{
    int64_t n = nm_shape_numel(&s);
    float *d = malloc(sizeof(float) * (size_t)(n ? n : 1));
    memcpy(d, v, sizeof(float) * (size_t)n);
    nm_tensor_set_const(&g->t[t], NM_FLOAT, &s, d);
}

static void add_window_attrs(nm_graph *g, int node, const spec *p)
{
    int64_t ones[3] = {1, 1, 1};
    if (strcmp(p->op, "Conv") != 0 || p->kernel_attr) add_ints(g, node, "kernel_shape", p->k, p->nsp);
    if (memcmp(p->s, ones, sizeof(int64_t) * (size_t)p->nsp) || rnd() % 2) add_ints(g, node, "strides", p->s, p->nsp);
    if (memcmp(p->d, ones, sizeof(int64_t) * (size_t)p->nsp)) add_ints(g, node, "dilations", p->d, p->nsp);
    if (p->auto_pad == AP_NOTSET) add_ints(g, node, "pads", p->pads, 2 * p->nsp);
    if (p->auto_pad != AP_NOTSET || rnd() % 4 == 0) add_string(g, node, "auto_pad", auto_pad_names[p->auto_pad]);
    if (p->ceil_mode) add_int(g, node, "ceil_mode", 1);
    if (p->count_include_pad) add_int(g, node, "count_include_pad", 1);
    if (strcmp(p->op, "Conv") == 0 && (p->group > 1 || rnd() % 2)) add_int(g, node, "group", p->group);
}

/* X [n, c, in...]; Conv also W [m, c/group, k...] and B [m], constant or fed. */
static nm_graph *build(const spec *p, int weights_as_inputs, const float *w, const float *b)
{
    nm_graph *g = nm_graph_new(p->op);
    g->opset = 13;
    int64_t xd[5] = {p->n, p->c}, wd[5] = {p->m, p->c / (p->group ? p->group : 1)};
    for (int i = 0; i < p->nsp; i++) xd[2 + i] = p->in[i], wd[2 + i] = p->k[i];
    int x = nm_graph_tensor(g, "X"), y = nm_graph_tensor(g, "Y");
    set_input(g, x, NM_FLOAT, shape_of(p->nsp + 2, xd));
    int in[3] = {x, -1, -1}, n_in = 1;
    if (strcmp(p->op, "Conv") == 0) {
        in[1] = nm_graph_tensor(g, "W");
        n_in = 2;
        if (p->bias) in[n_in++] = nm_graph_tensor(g, "B");
        nm_shape ws = shape_of(p->nsp + 2, wd), bs = shape_of(1, &p->m);
        if (weights_as_inputs) {
            set_input(g, in[1], NM_FLOAT, ws);
            if (p->bias) set_input(g, in[2], NM_FLOAT, bs);
        } else {
            set_const(g, in[1], ws, w);
            if (p->bias) set_const(g, in[2], bs, b);
        }
    }
    int node = nm_graph_add_node(g, p->op, "node", n_in, in, 1, &y);
    add_window_attrs(g, node, p);
    nm_graph_add_output(g, y);
    return g;
}

/* ------------------------------------------------------------ checks */

static double max_diff(const float *got, const double *want, int64_t n, double *scale)
{
    double e = 0, s = 1e-6;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e)) e = d;
        if (fabs(want[i]) > s) s = fabs(want[i]);
    }
    *scale = s;
    return e;
}

static int close_to(const char *what, const char *name, const float *got, const double *want, int64_t n)
{
    double scale, e = max_diff(got, want, n, &scale);
    return nm_check(e <= 1e-4 * (1 + scale), "%s: %s max |diff| %.3g (scale %.3g)", name, what, e, scale);
}

static double *to_double(const float *x, int64_t n)
{
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void describe(const spec *p, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%s n%lld c%lld", p->op, (long long)p->n, (long long)p->c);
    if (strcmp(p->op, "Conv") == 0)
        k += snprintf(buf + k, cap - (size_t)k, " m%lld g%lld%s", (long long)p->m, (long long)p->group,
                      p->bias ? " bias" : "");
    for (int i = 0; i < p->nsp; i++)
        k += snprintf(buf + k, cap - (size_t)k, " [in%lld k%lld s%lld d%lld p%lld,%lld]", (long long)p->in[i],
                      (long long)p->k[i], (long long)p->s[i], (long long)p->d[i], (long long)p->pads[i],
                      (long long)p->pads[p->nsp + i]);
    snprintf(buf + k, cap - (size_t)k, " %s%s%s", auto_pad_names[p->auto_pad], p->ceil_mode ? " ceil" : "",
             p->count_include_pad ? " incl_pad" : "");
}

/* Forward and backward of the prepared graph against the references. */
static int check_against_reference(nm_graph *g, const spec *p, const rgeom *q, const char *name)
{
    nm_error err = {0};
    int is_conv = strcmp(p->op, "Conv") == 0;
    nm_tensor *x = &g->t[g->inputs[0]], *y = &g->t[g->outputs[0]];
    nm_tensor *w = is_conv ? &g->t[g->nodes[0].in[1]] : NULL;
    nm_tensor *b = is_conv && p->bias ? &g->t[g->nodes[0].in[2]] : NULL;
    int64_t ny = p->n * (is_conv ? p->m : p->c) * q->out_sz, nx = x->numel;
    int ok = nm_check(y->numel == ny, "%s: output has %lld elements, expected %lld", name, (long long)y->numel,
                      (long long)ny);
    if (!ok) return 0;
    float *want_y = malloc(sizeof(float) * (size_t)ny);
    if (is_conv) ref_conv_forward(p, q, x->data, w->data, b ? b->data : NULL, want_y);
    else ref_pool(p, q, x->data, want_y, NULL, NULL);
    ok &= nm_check(nm_graph_forward(g, &err) == NM_OK, "%s: forward: %s", name, err.msg);
    double *want_yd = to_double(want_y, ny);
    ok &= close_to("forward", name, y->data, want_yd, ny);

    float *dy = rnd_floats(ny, -1, 1);
    memcpy(y->grad, dy, sizeof(float) * (size_t)ny);
    ok &= nm_check(nm_graph_backward(g, &err) == NM_OK, "%s: backward: %s", name, err.msg);
    double *dx = calloc((size_t)nx, sizeof(double));
    double *dw = calloc((size_t)(w ? w->numel : 1), sizeof(double));
    double *db = calloc((size_t)(p->m ? p->m : 1), sizeof(double));
    if (is_conv) ref_conv_backward(p, q, x->data, w->data, dy, dx, dw, db);
    else ref_pool(p, q, x->data, NULL, dy, dx);
    ok &= close_to("dX", name, x->grad, dx, nx);
    if (w && w->requires_grad) ok &= close_to("dW", name, w->grad, dw, w->numel);
    if (b && b->requires_grad) ok &= close_to("dB", name, b->grad, db, p->m);
    free(want_y), free(want_yd), free(dy), free(dx), free(dw), free(db);
    return ok;
}

/* One case: constant weights (the product's path) and weights fed as inputs. */
static void run_case(const spec *p, int probes)
{
    char name[512];
    describe(p, name, sizeof name);
    rgeom q;
    if (!nm_check(ref_geom(p, &q), "%s: invalid test geometry", name)) return;
    int is_conv = strcmp(p->op, "Conv") == 0;
    int64_t nw = p->m * (p->group ? p->c / p->group : 0) * q.k_sz;
    float *w = rnd_floats(nw, -1, 1), *b = rnd_floats(p->m, -1, 1);
    for (int fed = 0; fed <= is_conv; fed++) {
        nm_error err = {0};
        nm_graph *g = build(p, fed, w, b);
        nm_status st = nm_test_prepare(g, &err);
        if (!nm_check(st == NM_OK, "%s: prepare: %s", name, err.msg)) {
            nm_graph_free(g);
            continue;
        }
        for (int i = 0; i < g->n_inputs; i++) {
            nm_tensor *t = &g->t[g->inputs[i]];
            float *v = i == 0 && strcmp(p->op, "MaxPool") == 0 ? distinct_floats(t->numel)
                                                                 : rnd_floats(t->numel, -1, 1);
            memcpy(t->data, v, sizeof(float) * (size_t)t->numel);
            free(v);
        }
        int ok = check_against_reference(g, p, &q, name);
        /* Reshape again now that gradient flags are known: backward state is
         * then built in reshape rather than on first use. */
        st = nm_op_get(g->nodes[0].op)->reshape(g, &g->nodes[0], &err);
        ok &= nm_check(st == NM_OK, "%s: second reshape: %s", name, err.msg);
        if (ok) ok &= check_against_reference(g, p, &q, name);
        if (ok && probes > 0) {
            double e = nm_test_gradcheck(g, 1e-2f, probes, rnd());
            nm_check(e <= 1e-2, "%s%s: finite differences, relative error %.3g", name,
                     fed ? " (W fed)" : "", e);
        }
        nm_graph_free(g);
    }
    free(w);
    free(b);
}

static spec conv_spec(int nsp, int64_t n, int64_t c, int64_t m, int64_t group, const int64_t *in,
                      const int64_t *k)
{
    spec p = {.op = "Conv", .nsp = nsp, .n = n, .c = c, .m = m, .group = group, .bias = 1, .kernel_attr = 1};
    for (int i = 0; i < nsp; i++) {
        p.in[i] = in[i];
        p.k[i] = k[i];
        p.s[i] = p.d[i] = 1;
    }
    return p;
}

static void test_conv_cases(void)
{
    spec p = conv_spec(2, 2, 3, 4, 1, (int64_t[]){7, 6}, (int64_t[]){3, 3});
    memcpy(p.pads, (int64_t[]){1, 1, 1, 1}, sizeof(int64_t) * 4);
    run_case(&p, 64);                                          /* basic, batch 2 */
    p.bias = 0;
    p.kernel_attr = 0;
    run_case(&p, 32);                                          /* no bias, kernel from W */

    p = conv_spec(2, 1, 4, 6, 2, (int64_t[]){8, 7}, (int64_t[]){3, 2});
    memcpy(p.s, (int64_t[]){2, 1}, sizeof(int64_t) * 2);
    memcpy(p.pads, (int64_t[]){0, 1, 2, 0}, sizeof(int64_t) * 4);
    run_case(&p, 64);                                          /* groups, strides, asymmetric pads */

    p = conv_spec(2, 2, 8, 8, 8, (int64_t[]){9, 9}, (int64_t[]){3, 3});
    memcpy(p.s, (int64_t[]){2, 2}, sizeof(int64_t) * 2);
    memcpy(p.pads, (int64_t[]){1, 1, 1, 1}, sizeof(int64_t) * 4);
    run_case(&p, 64);                                          /* depthwise, strided */

    p = conv_spec(2, 1, 4, 8, 4, (int64_t[]){6, 6}, (int64_t[]){3, 3});
    run_case(&p, 32);                                          /* depthwise with multiplier */

    p = conv_spec(2, 1, 3, 2, 1, (int64_t[]){11, 10}, (int64_t[]){3, 2});
    memcpy(p.d, (int64_t[]){2, 3}, sizeof(int64_t) * 2);
    memcpy(p.pads, (int64_t[]){2, 3, 1, 0}, sizeof(int64_t) * 4);
    run_case(&p, 32);                                          /* dilations */

    p = conv_spec(2, 1, 2, 3, 1, (int64_t[]){7, 8}, (int64_t[]){3, 4});
    p.s[0] = p.s[1] = 2;
    p.auto_pad = AP_SAME_UPPER;
    run_case(&p, 32);
    p.auto_pad = AP_SAME_LOWER;
    run_case(&p, 32);
    p.auto_pad = AP_VALID;
    run_case(&p, 32);

    p = conv_spec(1, 2, 3, 5, 1, (int64_t[]){11}, (int64_t[]){3});
    p.s[0] = p.d[0] = 2;
    p.pads[0] = 1, p.pads[1] = 2;
    run_case(&p, 32);                                          /* 1-D */

    p = conv_spec(3, 1, 2, 3, 1, (int64_t[]){5, 6, 4}, (int64_t[]){3, 2, 3});
    p.s[1] = 2;
    memcpy(p.pads, (int64_t[]){1, 0, 1, 0, 1, 1}, sizeof(int64_t) * 6);
    run_case(&p, 32);                                          /* 3-D */

    p = conv_spec(3, 1, 4, 4, 2, (int64_t[]){4, 5, 4}, (int64_t[]){2, 2, 2});
    p.d[0] = 2;
    p.auto_pad = AP_SAME_LOWER;
    run_case(&p, 32);                                          /* 3-D groups, dilation, SAME_LOWER */

    p = conv_spec(2, 2, 16, 8, 1, (int64_t[]){5, 5}, (int64_t[]){1, 1});
    run_case(&p, 32);                                          /* pointwise */
    p = conv_spec(2, 2, 16, 8, 1, (int64_t[]){28, 28}, (int64_t[]){1, 1});
    run_case(&p, 16);                                          /* pointwise, large map: plain layout */

    p = conv_spec(2, 1, 16, 16, 1, (int64_t[]){32, 32}, (int64_t[]){3, 3});
    memcpy(p.pads, (int64_t[]){1, 1, 1, 1}, sizeof(int64_t) * 4);
    run_case(&p, 16);                                          /* CIFAR ResNet-20 layer */
    p = conv_spec(2, 1, 3, 16, 1, (int64_t[]){32, 32}, (int64_t[]){3, 3});
    memcpy(p.pads, (int64_t[]){1, 1, 1, 1}, sizeof(int64_t) * 4);
    run_case(&p, 16);                                          /* its first layer */
}

static void random_window(spec *p, int max_in, int pool)
{
    p->nsp = (int)rnd_int(1, 3);
    p->auto_pad = rnd() % 3 ? AP_NOTSET : (int)rnd_int(1, 3);
    for (int i = 0; i < p->nsp; i++) {
        p->in[i] = rnd_int(2, p->nsp == 3 ? 6 : max_in);
        p->k[i] = rnd_int(1, 3);
        p->s[i] = rnd_int(1, 3);
        p->d[i] = rnd() % 3 ? 1 : 2;
        int64_t ext = (p->k[i] - 1) * p->d[i] + 1;
        /* Pools: no window wholly in padding (pads below half the extent). */
        int64_t maxpad = pool ? (ext - 1) / 2 : 2;
        p->pads[i] = rnd_int(0, maxpad);
        p->pads[p->nsp + i] = rnd_int(0, maxpad);
    }
}

static void test_conv_random(int count)
{
    for (int t = 0; t < count; t++) {
        spec p = {.op = "Conv"};
        rgeom q;
        do {
            random_window(&p, 9, 0);
            p.n = rnd_int(1, 2);
            p.group = rnd() % 3 == 0 ? rnd_int(2, 3) : 1;
            p.c = p.group * rnd_int(1, 3);
            p.m = rnd() % 4 == 0 ? p.c : p.group * rnd_int(1, 3);
            if (p.m == p.c && rnd() % 2) p.group = p.c;   /* depthwise */
            p.bias = (int)(rnd() % 2);
            p.kernel_attr = (int)(rnd() % 2);
        } while (!ref_geom(&p, &q));
        run_case(&p, 24);
    }
}

static spec pool_spec(const char *op, int nsp, int64_t n, int64_t c, const int64_t *in, const int64_t *k)
{
    spec p = {.op = op, .nsp = nsp, .n = n, .c = c};
    for (int i = 0; i < nsp; i++) {
        p.in[i] = in[i];
        p.k[i] = k[i];
        p.s[i] = p.d[i] = 1;
    }
    return p;
}

static void test_pool_cases(void)
{
    static const char *const ops[] = {"MaxPool", "AveragePool"};
    for (int o = 0; o < 2; o++) {
        spec p = pool_spec(ops[o], 2, 2, 3, (int64_t[]){6, 7}, (int64_t[]){3, 3});
        p.s[0] = p.s[1] = 2;
        run_case(&p, 64);                                      /* floor */
        p.ceil_mode = 1;
        run_case(&p, 64);                                      /* ceil: extra right window */
        memcpy(p.pads, (int64_t[]){1, 0, 1, 1}, sizeof(int64_t) * 4);
        run_case(&p, 64);                                      /* ceil + asymmetric pads */
        p.count_include_pad = o == 1;
        run_case(&p, 64);                                      /* ... counting padding (C path) */
        p.ceil_mode = 0;
        run_case(&p, 64);                                      /* counting padding (oneDNN) */

        p = pool_spec(ops[o], 2, 1, 2, (int64_t[]){7, 8}, (int64_t[]){3, 2});
        p.s[0] = 2;
        p.auto_pad = AP_SAME_UPPER;
        run_case(&p, 32);
        p.auto_pad = AP_SAME_LOWER;
        run_case(&p, 32);
        p.count_include_pad = o == 1;
        run_case(&p, 32);
        p.auto_pad = AP_VALID;
        run_case(&p, 32);

        p = pool_spec(ops[o], 1, 2, 3, (int64_t[]){9}, (int64_t[]){2});
        p.s[0] = 2;
        p.ceil_mode = 1;
        run_case(&p, 32);                                      /* 1-D */

        p = pool_spec(ops[o], 3, 1, 2, (int64_t[]){4, 5, 6}, (int64_t[]){2, 3, 2});
        memcpy(p.s, (int64_t[]){2, 1, 2}, sizeof(int64_t) * 3);
        memcpy(p.pads, (int64_t[]){0, 1, 0, 1, 1, 1}, sizeof(int64_t) * 6);
        run_case(&p, 32);                                      /* 3-D */
    }
    spec p = pool_spec("MaxPool", 2, 1, 2, (int64_t[]){9, 8}, (int64_t[]){3, 2});
    memcpy(p.d, (int64_t[]){2, 3}, sizeof(int64_t) * 2);
    memcpy(p.pads, (int64_t[]){2, 1, 1, 1}, sizeof(int64_t) * 4);
    p.ceil_mode = 1;
    p.s[1] = 2;
    run_case(&p, 32);                                          /* dilations + ceil */
}

static void test_pool_random(int count)
{
    for (int t = 0; t < count; t++) {
        spec p = {.op = rnd() % 2 ? "MaxPool" : "AveragePool"};
        rgeom q;
        do {
            random_window(&p, 9, 1);
            p.n = rnd_int(1, 2);
            p.c = rnd_int(1, 3);
            p.ceil_mode = (int)(rnd() % 2);
            p.count_include_pad = p.op[0] == 'A' && rnd() % 2;
            if (p.op[0] == 'A')
                for (int i = 0; i < p.nsp; i++) p.d[i] = 1;   /* AveragePool dilations: opset 19 */
        } while (!ref_geom(&p, &q));
        run_case(&p, 24);
    }
}

/* ------------------------------------------------------------ global pooling */

static void test_global(const char *op, int ndim, const int64_t *dims, int ties)
{
    char name[96];
    snprintf(name, sizeof name, "%s rank %d%s", op, ndim, ties ? " ties" : "");
    nm_error err = {0};
    nm_graph *g = nm_graph_new(op);
    int x = nm_graph_tensor(g, "X"), y = nm_graph_tensor(g, "Y");
    set_input(g, x, NM_FLOAT, shape_of(ndim, dims));
    nm_graph_add_node(g, op, "node", 1, &x, 1, &y);
    nm_graph_add_output(g, y);
    if (!nm_check(nm_test_prepare(g, &err) == NM_OK, "%s: prepare: %s", name, err.msg)) {
        nm_graph_free(g);
        return;
    }
    nm_tensor *tx = &g->t[x], *ty = &g->t[y];
    int64_t nc = dims[0] * dims[1], sp = tx->numel / nc;
    int is_max = strcmp(op, "GlobalMaxPool") == 0;
    float *v = is_max ? distinct_floats(tx->numel) : rnd_floats(tx->numel, -1, 1);
    if (ties)
        for (int64_t i = 0; i < tx->numel; i++) v[i] = (float)(i % 2);   /* first max at index 1 */
    memcpy(tx->data, v, sizeof(float) * (size_t)tx->numel);
    int ok = nm_check(ty->shape.ndim == ndim && ty->numel == nc, "%s: output shape", name);
    for (int i = 2; ok && i < ndim; i++) ok &= ty->shape.dims[i] == 1;
    ok &= nm_check(nm_graph_forward(g, &err) == NM_OK, "%s: forward: %s", name, err.msg);
    double *want = calloc((size_t)nc, sizeof(double)), *dx = calloc((size_t)tx->numel, sizeof(double));
    float *dy = rnd_floats(nc, -1, 1);
    for (int64_t c = 0; c < nc; c++) {
        int64_t best = 0;
        double sum = 0;
        for (int64_t i = 0; i < sp; i++) {
            sum += v[c * sp + i];
            if (v[c * sp + i] > v[c * sp + best]) best = i;
        }
        want[c] = is_max ? v[c * sp + best] : sum / (double)sp;
        for (int64_t i = 0; i < sp; i++)
            dx[c * sp + i] = is_max ? (i == best ? dy[c] : 0.0) : dy[c] / (double)sp;
    }
    if (ok) ok &= close_to("forward", name, ty->data, want, nc);
    memcpy(ty->grad, dy, sizeof(float) * (size_t)nc);
    ok &= nm_check(nm_graph_backward(g, &err) == NM_OK, "%s: backward: %s", name, err.msg);
    if (ok) ok &= close_to("dX", name, tx->grad, dx, tx->numel);
    if (ok && !ties) {
        double e = nm_test_gradcheck(g, 1e-2f, 48, rnd());
        nm_check(e <= 1e-2, "%s: finite differences, relative error %.3g", name, e);
    }
    free(v), free(want), free(dx), free(dy);
    nm_graph_free(g);
}

/* ------------------------------------------------------------ errors, int64, Indices */

static void add_output(nm_graph *g, const char *name)
{
    nm_node *n = &g->nodes[0];
    n->out = realloc(n->out, sizeof(int) * (size_t)(n->n_out + 1));
    n->out[n->n_out++] = nm_graph_tensor(g, name);
    nm_graph_add_output(g, n->out[n->n_out - 1]);
}

/* MaxPool's second output: the flat index of each maximum in X, spatial axes
 * row-major, or column-major with storage_order 1. */
static void test_maxpool_indices(int col_major)
{
    nm_error err = {0};
    spec p = pool_spec("MaxPool", 2, 2, 3, (int64_t[]){5, 6}, (int64_t[]){3, 2});
    p.s[0] = p.s[1] = 2;
    memcpy(p.pads, (int64_t[]){1, 0, 1, 1}, sizeof(int64_t) * 4);
    p.ceil_mode = 1;
    rgeom q;
    ref_geom(&p, &q);
    nm_graph *g = build(&p, 0, NULL, NULL);
    add_output(g, "Indices");
    add_int(g, 0, "storage_order", col_major);
    nm_status st = nm_test_prepare(g, &err);
    if (nm_check(st == NM_OK, "MaxPool Indices: prepare: %s", err.msg)) {
        nm_tensor *x = &g->t[g->inputs[0]], *y = &g->t[g->outputs[0]], *ind = &g->t[g->outputs[1]];
        float *v = distinct_floats(x->numel);
        memcpy(x->data, v, sizeof(float) * (size_t)x->numel);
        int ok = nm_check(nm_graph_forward(g, &err) == NM_OK, "MaxPool Indices: forward: %s", err.msg);
        ok &= nm_check(ind->dtype == NM_INT64 && nm_shape_equal(&ind->shape, &y->shape), "MaxPool Indices: shape");
        int64_t h = q.in[1], w = q.in[2];
        for (int64_t i = 0; ok && i < y->numel; i++) {
            int64_t k = nm_i64(ind)[i], c = k / q.in_sz, sp = k % q.in_sz;
            if (col_major) sp = sp % h * w + sp / h;   /* back to row-major */
            ok &= k >= 0 && k < x->numel && v[c * q.in_sz + sp] == nm_f32(y)[i] && c == i / q.out_sz;
        }
        nm_check(ok, "MaxPool Indices (storage_order %d): each index points at its maximum", col_major);
        free(v);
    }
    nm_graph_free(g);

    /* storage_order alone (no Indices) changes nothing. */
    g = build(&p, 0, NULL, NULL);
    add_int(g, 0, "storage_order", 1);
    st = nm_test_prepare(g, &err);
    nm_check(st == NM_OK, "MaxPool storage_order 1 without Indices: %s", err.msg);
    nm_graph_free(g);
}

static nm_status prepare_status(nm_graph *g, nm_error *err)
{
    nm_status st = nm_test_prepare(g, err);
    nm_graph_free(g);
    return st;
}

static void test_errors(void)
{
    nm_error err = {0};
    nm_status st;
    nm_graph *g;
    /* Kernel larger than the padded input. */
    spec c = conv_spec(2, 1, 2, 2, 1, (int64_t[]){3, 3}, (int64_t[]){5, 5});
    float w[2 * 2 * 25] = {0}, b[2] = {0};
    st = prepare_status(build(&c, 0, w, b), &err);
    nm_check(st == NM_ERR_SHAPE && strstr(err.msg, "Conv node 'node'"), "Conv kernel too large: %s (%s)",
             nm_status_name(st), err.msg);

    /* W's input channels disagree with X's. */
    c = conv_spec(2, 1, 4, 2, 1, (int64_t[]){5, 5}, (int64_t[]){3, 3});
    g = build(&c, 0, w, b);
    g->t[g->nodes[0].in[1]].shape.dims[1] = 3;
    st = prepare_status(g, &err);
    nm_check(st == NM_ERR_SHAPE, "Conv channel mismatch: %s (%s)", nm_status_name(st), err.msg);

    /* Unknown auto_pad. */
    c = conv_spec(2, 1, 2, 2, 1, (int64_t[]){5, 5}, (int64_t[]){3, 3});
    c.auto_pad = AP_VALID;
    g = build(&c, 0, w, b);
    for (int i = 0; i < g->nodes[0].n_attrs; i++)
        if (strcmp(g->nodes[0].attrs[i].name, "auto_pad") == 0) {
            free(g->nodes[0].attrs[i].s);
            g->nodes[0].attrs[i].s = strdup("SAME");
        }
    st = prepare_status(g, &err);
    nm_check(st != NM_OK, "Conv auto_pad SAME refused (%s)", nm_status_name(st));
}

static void test_maxpool_int64(void)
{
    nm_error err = {0};
    nm_graph *g = nm_graph_new("int64");
    int x = nm_graph_tensor(g, "X"), y = nm_graph_tensor(g, "Y");
    set_input(g, x, NM_INT64, shape_of(4, (int64_t[]){1, 1, 3, 3}));
    int node = nm_graph_add_node(g, "MaxPool", "node", 1, &x, 1, &y);
    add_ints(g, node, "kernel_shape", (int64_t[]){2, 2}, 2);
    nm_graph_add_output(g, y);
    nm_status st = nm_test_prepare(g, &err);
    if (nm_check(st == NM_OK, "MaxPool int64: prepare: %s", err.msg)) {
        int64_t v[9] = {5, 1, 7, -2, 3, 9, 4, 8, 0}, want[4] = {5, 9, 8, 9};
        memcpy(g->t[x].data, v, sizeof v);
        st = nm_graph_forward(g, &err);
        nm_check(st == NM_OK && g->t[y].dtype == NM_INT64 && memcmp(g->t[y].data, want, sizeof want) == 0,
                 "MaxPool int64 values");
    }
    nm_graph_free(g);
}

int main(int argc, char **argv)
{
    int random_cases = argc > 1 ? atoi(argv[1]) : 40;
    test_conv_cases();
    test_conv_random(random_cases);
    test_pool_cases();
    test_pool_random(random_cases);
    test_global("GlobalAveragePool", 4, (int64_t[]){2, 3, 5, 4}, 0);
    test_global("GlobalAveragePool", 3, (int64_t[]){1, 4, 7}, 0);
    test_global("GlobalMaxPool", 4, (int64_t[]){2, 3, 5, 4}, 0);
    test_global("GlobalMaxPool", 5, (int64_t[]){1, 2, 3, 2, 4}, 0);
    test_global("GlobalMaxPool", 4, (int64_t[]){1, 2, 3, 3}, 1);
    test_errors();
    test_maxpool_int64();
    test_maxpool_indices(0);
    test_maxpool_indices(1);
    return nm_test_summary();
}
