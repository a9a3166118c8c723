/* Gradient-based maps: the plain gradient (Simonyan et al. 2014), gradient x
 * input, integrated gradients (Sundararajan et al. 2017) and SmoothGrad
 * (Smilkov et al. 2017). Every gradient is taken with respect to the
 * pixel-space image, through the normalisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "explain/saliency.h"

/* max over channels of |g| for one image, added (times `scale`) into map. */
static void add_abs_max(const sal_ctx *s, const float *g, float scale, float *map)
{
    for (int i = 0; i < s->pixels; i++) {
        float best = 0;
        for (int c = 0; c < s->C; c++) {
            float v = fabsf(g[(size_t)c * s->pixels + i]);
            best = v > best ? v : best;
        }
        map[i] += scale * best;
    }
}

nm_status sal_gradient(sal_ctx *s, nm_method method, nm_saliency *out, nm_error *err)
{
    float *g = malloc(sizeof(float) * (size_t)s->image);
    if (!g) return nm_fail(err, NM_ERR_MEMORY, "out of memory for the gradient");
    /* sal_prepare's forward pass was x itself at batch 1. */
    sal_onehot(s, 1);
    nm_status st = sal_backward(s, 1, g, err);
    if (!st && method == NM_METHOD_GRADIENT) add_abs_max(s, g, 1.f, out->map);
    if (!st && method == NM_METHOD_GRADXINPUT)
        for (int c = 0; c < s->C; c++)
            for (int i = 0; i < s->pixels; i++) out->map[i] += s->x[(size_t)c * s->pixels + i] * g[(size_t)c * s->pixels + i];
    free(g);
    return st;
}

/* ---------------------------------------------------- integrated gradients */

typedef struct ig_run {
    float *x0, *pix, *grad, *gsum;   /* baseline; a batch of images and their gradients; the sum */
    float logit_x0;
} ig_run;

/* Images [from, from + n) of the sequence: ig_steps points x0 + a_k (x - x0)
 * with midpoint alphas a_k = (k + 1/2) / steps, then x0 itself. */
static void ig_images(const sal_ctx *s, const ig_run *r, int from, int n)
{
    int steps = s->o->ig_steps;
    for (int j = 0; j < n; j++) {
        int k = from + j;
        float a = k < steps ? ((float)k + 0.5f) / (float)steps : 0.f;
        float *dst = r->pix + (size_t)j * s->image;
        for (int i = 0; i < s->image; i++) dst[i] = r->x0[i] + a * (s->x[i] - r->x0[i]);
    }
}

static nm_status ig_chunk(sal_ctx *s, ig_run *r, int from, int n, nm_error *err)
{
    int steps = s->o->ig_steps;
    ig_images(s, r, from, n);
    nm_status st = sal_forward(s, r->pix, n, 1, err);
    if (st) return st;
    memset(s->dlogits, 0, sizeof(float) * (size_t)s->B * s->K);
    int grads = 0;
    for (int j = 0; j < n; j++) {
        if (from + j < steps) s->dlogits[(size_t)j * s->K + s->target] = 1.f, grads++;
        else r->logit_x0 = s->logits[(size_t)j * s->K + s->target];
    }
    if (!grads) return NM_OK;
    st = sal_backward(s, grads, r->grad, err);
    for (int j = 0; !st && j < grads; j++)
        for (int i = 0; i < s->image; i++) r->gsum[i] += r->grad[(size_t)j * s->image + i];
    return st;
}

nm_status sal_integrated_gradients(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    int steps = s->o->ig_steps, total = steps + 1;
    ig_run r = {0};
    r.x0 = malloc(sizeof(float) * (size_t)s->image);
    r.pix = malloc(sizeof(float) * (size_t)s->B * s->image);
    r.grad = malloc(sizeof(float) * (size_t)s->B * s->image);
    r.gsum = calloc((size_t)s->image, sizeof(float));
    nm_status st = r.x0 && r.pix && r.grad && r.gsum ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "out of memory for IG");
    if (!st) st = sal_baseline(s, s->o->ig_baseline, s->o->seed, r.x0, err);
    for (int from = 0; !st && from < total; from += s->B)
        st = ig_chunk(s, &r, from, total - from < s->B ? total - from : s->B, err);
    if (!st) {
        double attr_sum = 0;
        for (int c = 0; c < s->C; c++)
            for (int i = 0; i < s->pixels; i++) {
                size_t k = (size_t)c * s->pixels + i;
                float a = (s->x[k] - r.x0[k]) * r.gsum[k] / (float)steps;
                out->map[i] += a;
                attr_sum += a;
            }
        out->completeness_error = attr_sum - ((double)s->logit_x - (double)r.logit_x0);
    }
    free(r.x0), free(r.pix), free(r.grad), free(r.gsum);
    return st;
}

/* ------------------------------------------------------------ SmoothGrad */

nm_status sal_smoothgrad(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    int n = s->o->sg_samples;
    float *pix = malloc(sizeof(float) * (size_t)s->B * s->image);
    float *grad = malloc(sizeof(float) * (size_t)s->B * s->image);
    nm_status st = pix && grad ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "out of memory for SmoothGrad");
    float lo = s->x[0], hi = s->x[0];
    for (int i = 0; i < s->image; i++) lo = s->x[i] < lo ? s->x[i] : lo, hi = s->x[i] > hi ? s->x[i] : hi;
    float sigma = s->o->sg_sigma * (hi - lo);
    uint64_t rng = s->o->seed;
    for (int from = 0; !st && from < n; from += s->B) {
        int count = n - from < s->B ? n - from : s->B;
        for (int j = 0; j < count; j++)
            for (int i = 0; i < s->image; i++) pix[(size_t)j * s->image + i] = s->x[i] + sigma * sal_normal(&rng);
        st = sal_forward(s, pix, count, 1, err);
        if (st) break;
        sal_onehot(s, count);
        st = sal_backward(s, count, grad, err);
        for (int j = 0; !st && j < count; j++) add_abs_max(s, grad + (size_t)j * s->image, 1.f / (float)n, out->map);
    }
    free(pix), free(grad);
    return st;
}
