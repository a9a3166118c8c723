/* nm_explain: every explanation method behind one call. This file holds the
 * names, the defaults, the dispatch and the helpers the methods share: the
 * normalised input composed from pixel-space images, batched engine calls,
 * the chain rule through the normalisation, blur baselines and the seeded
 * random numbers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/tensor.h"
#include "explain/saliency.h"
#include "image/blur.h"

static const char *const method_names[NM_METHOD_COUNT] = {
    "gradient", "gradxinput", "integrated-gradients", "smoothgrad", "gradcam",
    "occlusion", "rise", "meaningful-perturbation", "extremal-perturbation", "neuromask",
};

const char *nm_method_name(nm_method m)
{
    return (unsigned)m < NM_METHOD_COUNT ? method_names[m] : "unknown";
}

nm_method nm_method_from_name(const char *name)
{
    for (int i = 0; name && i < NM_METHOD_COUNT; i++)
        if (!strcmp(name, method_names[i])) return (nm_method)i;
    return NM_METHOD_COUNT;
}

nm_map_kind nm_method_map_kind(nm_method m)
{
    switch (m) {
    case NM_METHOD_NEUROMASK:
    case NM_METHOD_EXTREMAL_PERTURBATION: return NM_MAP_MASK;
    case NM_METHOD_GRADXINPUT:
    case NM_METHOD_INTEGRATED_GRADIENTS:
    case NM_METHOD_OCCLUSION: return NM_MAP_SIGNED;
    default: return NM_MAP_NONNEGATIVE;
    }
}

const char *nm_map_kind_name(nm_map_kind k)
{
    return k == NM_MAP_MASK ? "mask" : k == NM_MAP_SIGNED ? "signed" : "nonnegative";
}

void nm_saliency_defaults(nm_saliency_options *o)
{
    memset(o, 0, sizeof *o);
    o->target_class = -1;
    o->batch = 16;
    o->ig_steps = 32;
    o->ig_baseline = NM_BASELINE_BLACK;
    o->sg_samples = 32;
    o->sg_sigma = 0.15f;
    o->occ_fill = NM_BASELINE_BLACK;
    o->rise_masks = 2000;
    o->rise_cell = 7;
    o->rise_p = 0.5f;
    o->pert_steps = 300;
    /* Fong & Vedaldi's lambda1 = 1e-4 on the L1 sum of a 28 x 28 mask is
     * 0.08 as a mean; TV with beta = 3 as a mean over neighbour pairs. */
    o->mp_l1 = 0.08f;
    o->mp_tv = 0.2f;
    o->ep_areas[0] = 0.05f;
    o->ep_areas[1] = 0.1f;
    o->ep_areas[2] = 0.2f;
    o->ep_n_areas = 3;
    /* the CLI's default too: it reads its NeuroMask options from here */
    nm_neuromask_preset(nm_neuromask_preset_for(0), &o->neuromask, NULL);
}

void nm_saliency_free(nm_saliency *s)
{
    free(s->map);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------ random */

uint64_t sal_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float sal_uniform(uint64_t *state) { return (float)(sal_splitmix64(state) >> 40) / 16777216.f; }

float sal_normal(uint64_t *state)
{
    float u1 = sal_uniform(state), u2 = sal_uniform(state);
    return sqrtf(-2.f * logf(1.f - u1)) * cosf(6.2831853f * u2);   /* 1 - u1 is in (0, 1] */
}

/* ------------------------------------------------------------ engine calls */

static void free_buffers(sal_ctx *s)
{
    free(s->input);
    free(s->dinput);
    free(s->logits);
    free(s->dlogits);
    s->input = s->dinput = s->logits = s->dlogits = NULL;
}

void sal_release(sal_ctx *s) { free_buffers(s); }

static int argmax(const float *z, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

nm_status sal_prepare(sal_ctx *s, int B, nm_error *err)
{
    nm_status st = nm_model_set_batch(s->m, B, err);
    if (st) return st;
    free_buffers(s);
    s->B = B;
    size_t img = (size_t)B * s->image, lg = (size_t)B * s->K;
    s->input = malloc(sizeof(float) * img);
    s->dinput = malloc(sizeof(float) * img);
    s->logits = malloc(sizeof(float) * lg);
    s->dlogits = malloc(sizeof(float) * lg);
    if (!s->input || !s->dinput || !s->logits || !s->dlogits)
        return nm_fail(err, NM_ERR_MEMORY, "out of memory for a batch of %d images", B);
    st = sal_forward(s, s->x, 1, 1, err);   /* Grad-CAM back-propagates this pass */
    if (st) return st;
    int c = s->o->target_class;
    if (c >= s->K) return nm_fail(err, NM_ERR_ARG, "class %d is out of range (the model has %d classes)", c, s->K);
    s->target = c >= 0 ? c : argmax(s->logits, s->K);
    s->logit_x = s->logits[s->target];
    s->prob_x = sal_prob(s, 0, s->target);
    return NM_OK;
}

nm_status sal_forward(sal_ctx *s, const float *pix, int n, int keep, nm_error *err)
{
    if (s->o->cancel && *s->o->cancel) return nm_fail(err, NM_ERR_CANCELLED, "interrupted");
    const nm_preprocess *pp = s->pp;
    for (int b = 0; b < s->B; b++) {
        const float *src = pix + (size_t)(b < n ? b : n - 1) * s->image;
        float *dst = s->input + (size_t)b * s->image;
        for (int c = 0; c < s->C; c++) {
            float a = pp->scale / pp->std[c % 3], k = (pp->offset - pp->mean[c % 3]) / pp->std[c % 3];
            const float *sp = src + (size_t)c * s->pixels;
            float *dp = dst + (size_t)c * s->pixels;
            for (int i = 0; i < s->pixels; i++) dp[i] = a * sp[i] + k;
        }
    }
    nm_status st = (keep ? nm_model_forward : nm_model_predict)(s->m, s->input, s->logits, err);
    if (st) return st;
    for (int i = 0; i < n * s->K; i++)
        if (!isfinite(s->logits[i])) return nm_fail(err, NM_ERR_NUMERIC, "the model gave a non-finite logit");
    return NM_OK;
}

nm_status sal_backward(sal_ctx *s, int n, float *dpix, nm_error *err)
{
    nm_status st = nm_model_backward(s->m, s->dlogits, s->dinput, err);
    if (st || !dpix) return st;
    const nm_preprocess *pp = s->pp;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < s->C; c++) {
            float a = pp->scale / pp->std[c % 3];
            size_t off = (size_t)b * s->image + (size_t)c * s->pixels;
            for (int i = 0; i < s->pixels; i++) dpix[off + i] = a * s->dinput[off + i];
        }
    return NM_OK;
}

void sal_onehot(sal_ctx *s, int n)
{
    memset(s->dlogits, 0, sizeof(float) * (size_t)s->B * s->K);
    for (int b = 0; b < n; b++) s->dlogits[(size_t)b * s->K + s->target] = 1.f;
}

float sal_prob(const sal_ctx *s, int b, int c)
{
    const float *z = s->logits + (size_t)b * s->K;
    float mx = z[argmax(z, s->K)];
    double sum = 0;
    for (int k = 0; k < s->K; k++) sum += exp((double)(z[k] - mx));
    return (float)(exp((double)(z[c] - mx)) / sum);
}

void sal_prob_grad(sal_ctx *s, int b, float scale)
{
    const float *z = s->logits + (size_t)b * s->K;
    float *dz = s->dlogits + (size_t)b * s->K;
    float mx = z[argmax(z, s->K)];
    double sum = 0;
    for (int k = 0; k < s->K; k++) sum += exp((double)(z[k] - mx));
    float pc = (float)(exp((double)(z[s->target] - mx)) / sum);
    for (int k = 0; k < s->K; k++) {
        float pk = (float)(exp((double)(z[k] - mx)) / sum);
        dz[k] = scale * pc * ((k == s->target) - pk);
    }
}

/* ------------------------------------------------------------ baselines */

void sal_gaussian_blur(const float *src, float *dst, int planes, int h, int w, float sigma)
{
    float *tmp = malloc(sizeof(float) * (size_t)h * w);
    if (!tmp) {   /* no room for the blur: fall back to the image itself */
        if (dst != src) memcpy(dst, src, sizeof(float) * (size_t)planes * h * w);
        return;
    }
    nm_gaussian_blur(src, dst, planes, h, w, sigma, tmp);
    free(tmp);
}

float sal_blur_sigma(const sal_ctx *s)
{
    if (s->o->blur_sigma > 0) return s->o->blur_sigma;
    float side = (float)(s->H < s->W ? s->H : s->W), sigma = 10.f * side / 224.f;
    return sigma < 1.f ? 1.f : sigma;
}

nm_status sal_baseline(const sal_ctx *s, nm_baseline kind, uint64_t seed, float *out, nm_error *err)
{
    switch (kind) {
    case NM_BASELINE_BLACK: memset(out, 0, sizeof(float) * (size_t)s->image); return NM_OK;
    case NM_BASELINE_BLUR: sal_gaussian_blur(s->x, out, s->C, s->H, s->W, sal_blur_sigma(s)); return NM_OK;
    case NM_BASELINE_MEAN:
        for (int c = 0; c < s->C; c++) {
            const float *p = s->x + (size_t)c * s->pixels;
            double mean = 0;
            for (int i = 0; i < s->pixels; i++) mean += p[i];
            for (int i = 0; i < s->pixels; i++) out[(size_t)c * s->pixels + i] = (float)(mean / s->pixels);
        }
        return NM_OK;
    case NM_BASELINE_NOISE:
        for (int i = 0; i < s->image; i++) out[i] = sal_uniform(&seed);
        return NM_OK;
    }
    return nm_fail(err, NM_ERR_ARG, "unknown baseline %d", (int)kind);
}

/* ------------------------------------------------------------ sizes */

int sal_batch_for(const nm_saliency_options *o, int work)
{
    int b = o->batch > 0 ? o->batch : 16;
    return work < b ? (work > 0 ? work : 1) : b;
}

int sal_pert_grid(const sal_ctx *s)
{
    if (s->o->pert_grid > 0) return s->o->pert_grid;
    int g = (s->H < s->W ? s->H : s->W) / 4;
    return g < 2 ? 2 : (g > 28 ? 28 : g);
}

int sal_occ_windows(const sal_ctx *s, int *patch, int *stride, int *ny, int *nx)
{
    int p = s->o->occ_patch;
    if (p <= 0) {
        p = ((s->H < s->W ? s->H : s->W) + 4) / 8;   /* round(side / 8) */
        p = p < 2 ? 2 : p;
        p = p > s->H ? s->H : (p > s->W ? s->W : p);
    }
    int st = s->o->occ_stride > 0 ? s->o->occ_stride : (p / 2 > 0 ? p / 2 : 1);
    *patch = p;
    *stride = st;
    *ny = (s->H - p + st - 1) / st + 1;
    *nx = (s->W - p + st - 1) / st + 1;
    return *ny * *nx;
}

/* ------------------------------------------------------------ dispatch */

static nm_status check_options(const sal_ctx *s, nm_method method, nm_error *err)
{
    const nm_saliency_options *o = s->o;
    if ((unsigned)method >= NM_METHOD_COUNT) return nm_fail(err, NM_ERR_ARG, "unknown method %d", (int)method);
    if (o->batch < 0 || o->batch > 4096) return nm_fail(err, NM_ERR_ARG, "batch %d is out of range (1..4096)", o->batch);
    if (o->ig_steps < 1) return nm_fail(err, NM_ERR_ARG, "integrated gradients needs ig_steps >= 1");
    if (o->sg_samples < 1 || !(o->sg_sigma >= 0))
        return nm_fail(err, NM_ERR_ARG, "SmoothGrad needs sg_samples >= 1 and sg_sigma >= 0");
    if (o->occ_patch < 0 || o->occ_stride < 0 || o->occ_patch > s->H || o->occ_patch > s->W)
        return nm_fail(err, NM_ERR_ARG, "occlusion patch %d / stride %d do not fit a %d x %d input", o->occ_patch,
                       o->occ_stride, s->H, s->W);
    if (o->rise_masks < 1 || o->rise_cell < 1 || o->rise_cell > s->H || o->rise_cell > s->W ||
        !(o->rise_p > 0 && o->rise_p <= 1))
        return nm_fail(err, NM_ERR_ARG, "RISE needs masks >= 1, 1 <= cell <= input size, 0 < p <= 1");
    if (o->pert_steps < 0 || o->pert_grid < 0 || o->pert_grid > s->H || o->pert_grid > s->W || !(o->pert_lr >= 0) ||
        !(o->blur_sigma >= 0 && o->blur_sigma < 100))
        return nm_fail(err, NM_ERR_ARG, "perturbation options out of range (steps >= 0, grid <= input size, "
                                        "lr >= 0, 0 <= blur sigma < 100)");
    if (o->ep_n_areas < 1 || o->ep_n_areas > 8)
        return nm_fail(err, NM_ERR_ARG, "extremal perturbation needs 1 to 8 areas (got %d)", o->ep_n_areas);
    for (int i = 0; i < o->ep_n_areas; i++)
        if (!(o->ep_areas[i] > 0 && o->ep_areas[i] <= 1))
            return nm_fail(err, NM_ERR_ARG, "extremal perturbation area %g is not in (0, 1]", (double)o->ep_areas[i]);
    return NM_OK;
}

static nm_status run_neuromask(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    nm_neuromask_options nmo = s->o->neuromask;
    if (s->o->target_class >= 0) nmo.target_class = s->o->target_class;
    if (s->o->cancel) nmo.cancel = s->o->cancel;
    nm_explanation e;
    nm_status st = nm_neuromask_explain(s->m, s->pp, s->x, 1, &nmo, &e, err);
    if (st) return st;
    memcpy(out->map, e.mask, sizeof(float) * (size_t)s->pixels);
    out->target = e.target[0];
    out->prob = e.prob_before[0];
    nm_explanation_free(&e);
    return NM_OK;
}

/* The batch each method plans the model for before its first call. */
static int first_batch(const sal_ctx *s, nm_method method)
{
    const nm_saliency_options *o = s->o;
    switch (method) {
    case NM_METHOD_INTEGRATED_GRADIENTS: return sal_batch_for(o, o->ig_steps + 1);
    case NM_METHOD_SMOOTHGRAD: return sal_batch_for(o, o->sg_samples);
    case NM_METHOD_OCCLUSION: {
        int p, st, ny, nx;
        return sal_batch_for(o, sal_occ_windows(s, &p, &st, &ny, &nx));
    }
    case NM_METHOD_RISE: return sal_batch_for(o, o->rise_masks);
    case NM_METHOD_EXTREMAL_PERTURBATION: return o->ep_n_areas;
    default: return 1;
    }
}

static nm_status run_method(sal_ctx *s, nm_method method, nm_saliency *out, nm_error *err)
{
    if (method == NM_METHOD_NEUROMASK) return run_neuromask(s, out, err);
    nm_status st = sal_prepare(s, first_batch(s, method), err);
    if (st) return st;
    out->target = s->target;
    out->prob = s->prob_x;
    switch (method) {
    case NM_METHOD_GRADIENT:
    case NM_METHOD_GRADXINPUT: return sal_gradient(s, method, out, err);
    case NM_METHOD_INTEGRATED_GRADIENTS: return sal_integrated_gradients(s, out, err);
    case NM_METHOD_SMOOTHGRAD: return sal_smoothgrad(s, out, err);
    case NM_METHOD_GRADCAM: return sal_gradcam(s, out, err);
    case NM_METHOD_OCCLUSION: return sal_occlusion(s, out, err);
    case NM_METHOD_RISE: return sal_rise(s, out, err);
    case NM_METHOD_MEANINGFUL_PERTURBATION: return sal_meaningful_perturbation(s, out, err);
    case NM_METHOD_EXTREMAL_PERTURBATION: return sal_extremal_perturbation(s, out, err);
    default: return nm_fail(err, NM_ERR_ARG, "unknown method %d", (int)method);
    }
}

nm_status nm_explain(nm_model *m, const nm_preprocess *pp, const float *x, nm_method method,
                     const nm_saliency_options *o, nm_saliency *out, nm_error *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof *out);
    out->completeness_error = NAN;
    nm_shape in = nm_model_input_shape(m), lo = nm_model_output_shape(m);
    if (in.ndim != 4 || lo.ndim != 2)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "explanations need an [N,C,H,W] input and [N, classes] logits");
    sal_ctx s = {.m = m, .pp = pp, .o = o, .x = x, .C = (int)in.dims[1], .H = (int)in.dims[2],
                 .W = (int)in.dims[3], .K = (int)lo.dims[1]};
    s.pixels = s.H * s.W;
    s.image = s.C * s.pixels;
    nm_status st = check_options(&s, method, err);
    if (!st) st = nm_check_finite(x, (size_t)s.image, "the input image", err);
    if (st) return st;
    out->h = s.H;
    out->w = s.W;
    out->map = calloc((size_t)s.pixels, sizeof(float));
    if (!out->map) return nm_fail(err, NM_ERR_MEMORY, "out of memory for the map");
    st = run_method(&s, method, out, err);
    sal_release(&s);
    for (int i = 0; !st && i < s.pixels; i++)
        if (!isfinite(out->map[i])) st = nm_fail(err, NM_ERR_NUMERIC, "%s gave a non-finite map", nm_method_name(method));
    if (st) {
        nm_saliency_free(out);
        return st;
    }
    out->is_mask = nm_method_map_kind(method) == NM_MAP_MASK;
    out->is_signed = nm_method_map_kind(method) == NM_MAP_SIGNED;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return NM_OK;
}
