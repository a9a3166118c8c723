/* NeuroMask (Alzantot et al. 2019): learn m = sigmoid(w / T) per image so the
 * masked image keeps the class while m stays sparse and smooth:
 *   loss = l_pred CE(f(norm(x m + b (1 - m))), c) + l_sparse mean|w + L|
 *        + l_smooth mean((K conv w)^2)
 * Masking happens in pixel space; the normalisation is differentiated. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "explain/mask_terms.h"
#include "explain/optim.h"

typedef struct nm_run {
    const nm_neuromask_options *o;
    const nm_preprocess *pp;
    int B, C, H, W, K, gh, gw;
    int cells, pixels;
    const float *x;
    float *base;            /* B x C x H x W baseline in pixel space */
    float *w, *dw;          /* B x cells */
    float *mc, *dmc;        /* coarse mask and its gradient, B x cells */
    float *m, *dm;          /* full-resolution mask, B x H x W */
    float *r;               /* smoothness residual of one image */
    float *input, *dinput;  /* model input and its gradient */
    float *logits, *dlogits;
    float *loss, *lp, *ls, *lsm;   /* per image, this step */
    nm_optim opt;
} nm_run;

static void *alloc_f(nm_run *r, size_t n, int *ok)
{
    (void)r;
    void *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *ok = 0;
    return p;
}

static void run_free(nm_run *r)
{
    float *bufs[] = {r->base, r->w, r->dw, r->mc, r->dmc, r->m, r->dm, r->r, r->input,
                     r->dinput, r->logits, r->dlogits, r->loss, r->lp, r->ls, r->lsm};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    nm_optim_free(&r->opt);
}

static int run_alloc(nm_run *r)
{
    int ok = 1;
    size_t img = (size_t)r->B * r->C * r->pixels, cells = (size_t)r->B * r->cells;
    size_t masks = (size_t)r->B * r->pixels, logits = (size_t)r->B * r->K;
    r->base = alloc_f(r, img, &ok);
    r->input = alloc_f(r, img, &ok);
    r->dinput = alloc_f(r, img, &ok);
    r->w = alloc_f(r, cells, &ok);
    r->dw = alloc_f(r, cells, &ok);
    r->mc = alloc_f(r, cells, &ok);
    r->dmc = alloc_f(r, cells, &ok);
    r->m = alloc_f(r, masks, &ok);
    r->dm = alloc_f(r, masks, &ok);
    r->r = alloc_f(r, (size_t)r->cells, &ok);
    r->logits = alloc_f(r, logits, &ok);
    r->dlogits = alloc_f(r, logits, &ok);
    r->loss = alloc_f(r, (size_t)r->B, &ok);
    r->lp = alloc_f(r, (size_t)r->B, &ok);
    r->ls = alloc_f(r, (size_t)r->B, &ok);
    r->lsm = alloc_f(r, (size_t)r->B, &ok);
    return ok && nm_optim_init(&r->opt, r->o->optimizer, r->o->lr, (int64_t)cells);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform01(uint64_t *s) { return (float)((splitmix(s) >> 40) / 16777216.0); }

/* ---------------------------------------------------------------- baseline */

static void blur_1d(const float *src, float *dst, int n, int stride, const float *k, int rad)
{
    for (int i = 0; i < n; i++) {
        float s = 0;
        for (int t = -rad; t <= rad; t++) {
            int j = i + t < 0 ? 0 : (i + t >= n ? n - 1 : i + t);
            s += k[t + rad] * src[j * stride];
        }
        dst[i * stride] = s;
    }
}

static void gaussian_blur_plane(const float *src, float *dst, int h, int w, float sigma, float *tmp)
{
    int rad = (int)ceilf(3 * sigma);
    float k[256];
    if (rad > 127) rad = 127;
    float sum = 0;
    for (int t = -rad; t <= rad; t++) sum += k[t + rad] = expf(-(float)(t * t) / (2 * sigma * sigma));
    for (int t = 0; t <= 2 * rad; t++) k[t] /= sum;
    for (int y = 0; y < h; y++) blur_1d(src + y * w, tmp + y * w, w, 1, k, rad);
    for (int x = 0; x < w; x++) blur_1d(tmp + x, dst + x, h, w, k, rad);
}

static void make_baseline(nm_run *r, float *tmp)
{
    uint64_t seed = r->o->seed ^ 0xB45E11Eull;
    for (int p = 0; p < r->B * r->C; p++) {
        const float *src = r->x + (size_t)p * r->pixels;
        float *dst = r->base + (size_t)p * r->pixels;
        double mean = 0;
        switch (r->o->baseline) {
        case NM_BASELINE_BLUR: gaussian_blur_plane(src, dst, r->H, r->W, r->o->blur_sigma, tmp); break;
        case NM_BASELINE_MEAN:
            for (int i = 0; i < r->pixels; i++) mean += src[i];
            for (int i = 0; i < r->pixels; i++) dst[i] = (float)(mean / r->pixels);
            break;
        case NM_BASELINE_NOISE:
            for (int i = 0; i < r->pixels; i++) dst[i] = uniform01(&seed);
            break;
        default: memset(dst, 0, sizeof(float) * (size_t)r->pixels); break;
        }
    }
}

/* ------------------------------------------------------------ one step */

static void compose_input(nm_run *r, const float *mask)
{
    const nm_preprocess *pp = r->pp;
    for (int b = 0; b < r->B; b++)
        for (int c = 0; c < r->C; c++) {
            size_t off = ((size_t)b * r->C + c) * r->pixels;
            float a = pp->scale / pp->std[c % 3], k = (pp->offset - pp->mean[c % 3]) / pp->std[c % 3];
            const float *m = mask ? mask + (size_t)b * r->pixels : NULL;
            for (int i = 0; i < r->pixels; i++) {
                float x = r->x[off + i], v = m ? x * m[i] + r->base[off + i] * (1.f - m[i]) : x;
                r->input[off + i] = a * v + k;
            }
        }
}

static void update_masks(nm_run *r)
{
    float T = r->o->temperature;
    for (int b = 0; b < r->B; b++) {
        float *mc = r->mc + (size_t)b * r->cells, *m = r->m + (size_t)b * r->pixels;
        mask_sigmoid_forward(r->w + (size_t)b * r->cells, r->cells, T, mc);
        if (r->o->grid) upsample_bilinear_forward(mc, r->gh, r->gw, m, r->H, r->W);
        else memcpy(m, mc, sizeof(float) * (size_t)r->pixels);
    }
}

/* Softmax cross-entropy of each image's logits against its target; writes
 * l_pred * dCE/dlogits and returns the probabilities of the targets. */
static void cross_entropy(nm_run *r, const int *target, float *prob)
{
    for (int b = 0; b < r->B; b++) {
        const float *z = r->logits + (size_t)b * r->K;
        float *dz = r->dlogits + (size_t)b * r->K;
        float mx = z[0];
        for (int k = 1; k < r->K; k++) mx = z[k] > mx ? z[k] : mx;
        double sum = 0;
        for (int k = 0; k < r->K; k++) sum += exp((double)(z[k] - mx));
        for (int k = 0; k < r->K; k++)
            dz[k] = r->o->l_pred * (float)(exp((double)(z[k] - mx)) / sum - (k == target[b]));
        double logp = (double)(z[target[b]] - mx) - log(sum);
        r->lp[b] = r->o->l_pred * (float)-logp;
        if (prob) prob[b] = (float)exp(logp);
    }
}

static void mask_gradient(nm_run *r)
{
    const nm_preprocess *pp = r->pp;
    memset(r->dm, 0, sizeof(float) * (size_t)r->B * r->pixels);
    for (int b = 0; b < r->B; b++)
        for (int c = 0; c < r->C; c++) {
            size_t off = ((size_t)b * r->C + c) * r->pixels;
            float a = pp->scale / pp->std[c % 3];
            float *dm = r->dm + (size_t)b * r->pixels;
            for (int i = 0; i < r->pixels; i++) dm[i] += r->dinput[off + i] * a * (r->x[off + i] - r->base[off + i]);
        }
}

static void weight_gradient(nm_run *r)
{
    const nm_neuromask_options *o = r->o;
    memset(r->dw, 0, sizeof(float) * (size_t)r->B * r->cells);
    for (int b = 0; b < r->B; b++) {
        float *w = r->w + (size_t)b * r->cells, *dw = r->dw + (size_t)b * r->cells;
        float *mc = r->mc + (size_t)b * r->cells, *dmc = r->dmc + (size_t)b * r->cells;
        const float *dm = r->dm + (size_t)b * r->pixels;
        if (o->grid) {
            memset(dmc, 0, sizeof(float) * (size_t)r->cells);
            upsample_bilinear_backward(dm, r->H, r->W, dmc, r->gh, r->gw);
        } else {
            memcpy(dmc, dm, sizeof(float) * (size_t)r->cells);
        }
        mask_sigmoid_backward(mc, dmc, r->cells, o->temperature, dw);
        r->ls[b] = o->l_sparse * sparsity_forward(w, r->cells, o->init_range);
        sparsity_backward(w, r->cells, o->init_range, o->l_sparse, dw);
        r->lsm[b] = o->l_smooth * smoothness_forward(w, r->gh, r->gw, o->kernel, r->r);
        smoothness_backward(r->r, r->gh, r->gw, o->kernel, o->l_smooth, dw);
        r->loss[b] = r->lp[b] + r->ls[b] + r->lsm[b];
    }
}

static nm_status step(nm_run *r, nm_model *m, const int *target, nm_error *err)
{
    update_masks(r);
    compose_input(r, r->m);
    nm_status s = nm_model_forward(m, r->input, r->logits, err);
    if (s) return s;
    cross_entropy(r, target, NULL);
    s = nm_model_backward(m, r->dlogits, r->dinput, err);
    if (s) return s;
    mask_gradient(r);
    weight_gradient(r);
    for (int b = 0; b < r->B; b++)
        if (!isfinite(r->loss[b]))
            return nm_fail(err, NM_ERR_NUMERIC, "the NeuroMask loss of image %d became %f", b, (double)r->loss[b]);
    return NM_OK;
}

/* ------------------------------------------------------------ driver */

static nm_status check_options(const nm_neuromask_options *o, nm_error *err)
{
    if (o->steps < 0 || o->lr <= 0 || o->temperature <= 0 || (o->kernel != 3 && o->kernel != 5) ||
        o->grid < 0 || o->tol < 0 || o->window < 1 ||
        (o->baseline == NM_BASELINE_BLUR && !(o->blur_sigma > 0 && o->blur_sigma < 40)))
        return nm_fail(err, NM_ERR_ARG, "NeuroMask options out of range (steps >= 0, lr > 0, T > 0, kernel 3 or 5, "
                                        "grid >= 0, tol >= 0, window >= 1, 0 < blur sigma < 40)");
    return NM_OK;
}

static int argmax(const float *z, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

static nm_status alloc_result(nm_explanation *e, const nm_run *r)
{
    memset(e, 0, sizeof *e);
    e->batch = r->B;
    e->h = r->H;
    e->w = r->W;
    size_t B = (size_t)r->B;
    e->mask = malloc(sizeof(float) * B * r->pixels);
    e->target = malloc(sizeof(int) * B);
    e->top_after = malloc(sizeof(int) * B);
    e->steps = calloc(B, sizeof(int));
    e->converged_at = malloc(sizeof(int) * B);
    e->prob_before = malloc(sizeof(float) * B);
    e->prob_after = malloc(sizeof(float) * B);
    e->loss_pred = malloc(sizeof(float) * B);
    e->loss_sparse = malloc(sizeof(float) * B);
    e->loss_smooth = malloc(sizeof(float) * B);
    e->history = malloc(sizeof(float) * B * (size_t)(r->o->steps + 1));
    if (!e->mask || !e->target || !e->top_after || !e->steps || !e->converged_at || !e->prob_before || !e->prob_after ||
        !e->loss_pred || !e->loss_sparse || !e->loss_smooth || !e->history)
        return NM_ERR_MEMORY;
    return NM_OK;
}

void nm_explanation_free(nm_explanation *e)
{
    void *bufs[] = {e->mask, e->target, e->top_after, e->steps, e->converged_at, e->prob_before, e->prob_after,
                    e->loss_pred, e->loss_sparse, e->loss_smooth, e->history};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(e, 0, sizeof *e);
}

static void init_weights(nm_run *r)
{
    const nm_neuromask_options *o = r->o;
    for (int b = 0; b < r->B; b++) {
        uint64_t s = o->seed + (uint64_t)b;   /* image b of a batch draws as seed + b */
        float *w = r->w + (size_t)b * r->cells;
        for (int i = 0; i < r->cells; i++)
            w[i] = o->init_w ? o->init_w[(size_t)b * r->cells + i] : o->init_range * (2.f * uniform01(&s) - 1.f);
    }
}

/* An image has converged when its loss moved by less than tol (relative) over the window. */
static int converged(const nm_explanation *e, const nm_run *r, int b, int t)
{
    const nm_neuromask_options *o = r->o;
    if (t < o->window) return 0;
    float now = e->history[(size_t)t * r->B + b], then = e->history[(size_t)(t - o->window) * r->B + b];
    return fabsf(now - then) <= o->tol * fabsf(then);
}

static nm_status optimise(nm_run *r, nm_model *m, nm_explanation *e, nm_error *err)
{
    const nm_neuromask_options *o = r->o;
    int *done = calloc((size_t)(unsigned)r->B, sizeof(int));
    if (!done) return nm_fail(err, NM_ERR_MEMORY, "out of memory");
    int t = 0, remaining = r->B;
    nm_status s = NM_OK;
    for (int b = 0; b < r->B; b++) e->converged_at[b] = -1;
    for (; t < o->steps && remaining > 0 && !s; t++) {
        s = step(r, m, e->target, err);
        if (s) break;
        memcpy(e->history + (size_t)t * r->B, r->loss, sizeof(float) * (size_t)r->B);
        for (int b = 0; b < r->B; b++) {
            if (done[b]) continue;
            nm_optim_step(&r->opt, r->w, r->dw, (int64_t)b * r->cells, r->cells, t + 1);
            e->steps[b] = t + 1;
            if (e->converged_at[b] < 0 && converged(e, r, b, t)) e->converged_at[b] = t + 1;
            if (o->early_stop && e->converged_at[b] > 0) {
                done[b] = 1;
                remaining--;
            }
        }
        if (o->progress) o->progress(o->progress_ctx, t + 1, o->steps, r->loss, r->B);
    }
    e->history_len = t;
    free(done);
    return s;
}

static nm_status finish(nm_run *r, nm_model *m, nm_explanation *e, nm_error *err)
{
    update_masks(r);
    compose_input(r, r->m);
    nm_status s = nm_model_forward(m, r->input, r->logits, err);
    if (s) return s;
    cross_entropy(r, e->target, e->prob_after);
    weight_gradient(r);   /* for the final loss terms; the gradient itself is unused */
    for (int b = 0; b < r->B; b++) {
        e->top_after[b] = argmax(r->logits + (size_t)b * r->K, r->K);
        e->loss_pred[b] = r->lp[b];
        e->loss_sparse[b] = r->ls[b];
        e->loss_smooth[b] = r->lsm[b];
        if (!isfinite(r->loss[b]))
            return nm_fail(err, NM_ERR_NUMERIC, "the NeuroMask loss of image %d is not finite", b);
    }
    memcpy(e->mask, r->m, sizeof(float) * (size_t)r->B * r->pixels);
    return NM_OK;
}

static nm_status start(nm_run *r, nm_model *m, nm_explanation *e, nm_error *err)
{
    compose_input(r, NULL);
    nm_status s = nm_model_forward(m, r->input, r->logits, err);
    if (s) return s;
    for (int b = 0; b < r->B; b++) {
        int c = r->o->target_class;
        if (c >= r->K) return nm_fail(err, NM_ERR_ARG, "class %d is out of range (the model has %d classes)", c, r->K);
        e->target[b] = c >= 0 ? c : argmax(r->logits + (size_t)b * r->K, r->K);
    }
    cross_entropy(r, e->target, e->prob_before);
    init_weights(r);
    return NM_OK;
}

static nm_status setup(nm_run *r, nm_model *m, int batch, nm_error *err)
{
    nm_status s = nm_model_set_batch(m, batch, err);
    if (s) return s;
    nm_shape in = nm_model_input_shape(m), out = nm_model_output_shape(m);
    if (out.ndim != 2) return nm_fail(err, NM_ERR_UNSUPPORTED, "NeuroMask needs [N, classes] logits");
    r->B = batch;
    r->C = (int)in.dims[1];
    r->H = (int)in.dims[2];
    r->W = (int)in.dims[3];
    r->K = (int)out.dims[1];
    r->gh = r->o->grid ? r->o->grid : r->H;
    r->gw = r->o->grid ? r->o->grid : r->W;
    r->cells = r->gh * r->gw;
    r->pixels = r->H * r->W;
    return run_alloc(r) ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "out of memory for NeuroMask state");
}

nm_status nm_neuromask_explain(nm_model *m, const nm_preprocess *pp, const float *x, int batch,
                               const nm_neuromask_options *o, nm_explanation *out, nm_error *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof *out);
    if (batch < 1) return nm_fail(err, NM_ERR_ARG, "batch must be >= 1");
    nm_status s = check_options(o, err);
    if (s) return s;
    nm_run r = {.o = o, .pp = pp, .x = x};
    s = setup(&r, m, batch, err);
    if (!s && alloc_result(out, &r)) s = nm_fail(err, NM_ERR_MEMORY, "out of memory for the result");
    if (!s) {
        make_baseline(&r, r.dinput);
        s = start(&r, m, out, err);
    }
    if (!s) s = optimise(&r, m, out, err);
    if (!s) s = finish(&r, m, out, err);
    run_free(&r);
    if (s) {
        nm_explanation_free(out);
        return s;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return NM_OK;
}

nm_status nm_neuromask_preset(const char *name, nm_neuromask_options *o, nm_error *err)
{
    memset(o, 0, sizeof *o);
    o->target_class = -1;
    o->init_range = 10.f;
    o->optimizer = NM_OPT_RMSPROP;
    o->lr = 0.03f;
    o->steps = 2000;
    o->tol = 1e-3f;
    o->window = 50;
    o->baseline = NM_BASELINE_BLACK;
    o->blur_sigma = 5.f;
    o->l_pred = 0.4f;
    o->l_sparse = 0.35f;
    if (strcmp(name, "cifar") == 0) {
        o->l_smooth = 0.15f;
        o->temperature = 1.f;
        o->kernel = 3;
    } else if (strcmp(name, "imagenet") == 0) {
        o->l_smooth = 0.03f;
        o->temperature = 0.3f;
        o->kernel = 5;
    } else {
        return nm_fail(err, NM_ERR_ARG, "unknown NeuroMask preset '%s' (cifar, imagenet)", name);
    }
    return NM_OK;
}
