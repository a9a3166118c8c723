/* Optimised perturbation masks.
 *
 * Meaningful perturbation (Fong & Vedaldi 2017, the deletion game): a coarse
 * mask m in [0,1] (keep = 1), upsampled bilinearly, blends the image with
 * its Gaussian blur, x m + blur(x) (1 - m); Adam minimises
 *   l1 mean(1 - m) + tv TV_3(m) + p_c(perturbed)
 * with m clamped to [0,1] after every step, starting from m = 0 (all
 * blurred): from m = 1 a confidently classified image gives a saturated
 * softmax whose gradient is lost below the L1 term, and nothing is deleted.
 * The regularisers act on the coarse mask, as means (the paper's lambda1 =
 * 1e-4 on the L1 sum of a 28 x 28 mask is 0.08 as a mean). The paper's jitter and noise on the perturbation are left out, which makes the
 * method deterministic. The map is 1 - m (high = must be deleted).
 *
 * Extremal perturbation (Fong, Patrick & Vedaldi 2019, the preservation
 * game), simplified from TorchRay: for every area a, coarse parameters p in
 * [0,1] (starting at 0.5) become a mask by a Gaussian-weighted max
 * convolution on the coarse grid (weights exp(-d^2 / 2 s^2), peak 1, s = 21
 * pixels at 224 scaled to the grid: 21 g / 224 cells; TorchRay uses a smooth
 * max, this is the hard max) followed by bilinear upsampling. The perturbed
 * image x m + blur(x) (1 - m) (one fixed blur instead of TorchRay's blur
 * pyramid) is scored by the target logit; Adam (instead of TorchRay's SGD
 * with momentum) minimises
 *   -logit_c + lambda mean((sort(m) - r_a)^2)
 * where r_a holds (1 - a) n zeros then a n ones, and lambda grows
 * geometrically from 300 by a factor of 16.4 over the run (TorchRay: x1.0035
 * per step over 800 steps). All areas run as one batch; the map is the mean
 * of their masks. No jitter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/argsort.h"
#include "core/error.h"
#include "explain/mask_terms.h"
#include "explain/optim.h"
#include "explain/saliency.h"

typedef struct pert_run {
    int A, g, cells;            /* masks optimised together; grid side; g * g */
    float *blur, *diff;         /* blur(x) and x - blur(x), image */
    float *param, *dparam;      /* A x cells */
    float *coarse, *dcoarse;    /* A x cells: the coarse mask and its gradient */
    int *arg;                   /* A x cells: max-convolution argmax (extremal) */
    float *m, *dm;              /* A x pixels */
    float *pix, *dpix;          /* A x image */
    nm_optim opt;
} pert_run;

static void pert_free(pert_run *r)
{
    void *bufs[] = {r->blur, r->diff, r->param, r->dparam, r->coarse, r->dcoarse, r->arg, r->m, r->dm, r->pix, r->dpix};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    nm_optim_free(&r->opt);
}

static nm_status pert_alloc(const sal_ctx *s, pert_run *r, int A, float lr, nm_error *err)
{
    r->A = A;
    r->g = sal_pert_grid(s);
    r->cells = r->g * r->g;
    size_t cells = (size_t)A * r->cells, px = (size_t)A * s->pixels, img = (size_t)A * s->image;
    r->blur = malloc(sizeof(float) * (size_t)s->image);
    r->diff = malloc(sizeof(float) * (size_t)s->image);
    r->param = malloc(sizeof(float) * cells);
    r->dparam = malloc(sizeof(float) * cells);
    r->coarse = malloc(sizeof(float) * cells);
    r->dcoarse = malloc(sizeof(float) * cells);
    r->arg = malloc(sizeof(int) * cells);
    r->m = malloc(sizeof(float) * px);
    r->dm = malloc(sizeof(float) * px);
    r->pix = malloc(sizeof(float) * img);
    r->dpix = malloc(sizeof(float) * img);
    int ok = r->blur && r->diff && r->param && r->dparam && r->coarse && r->dcoarse && r->arg && r->m && r->dm &&
             r->pix && r->dpix && nm_optim_init(&r->opt, NM_OPT_ADAM, lr, (int64_t)cells);
    if (!ok) return nm_fail(err, NM_ERR_MEMORY, "out of memory for the perturbation masks");
    sal_gaussian_blur(s->x, r->blur, s->C, s->H, s->W, sal_blur_sigma(s));
    for (int i = 0; i < s->image; i++) r->diff[i] = s->x[i] - r->blur[i];
    return NM_OK;
}

/* pix_a = blur + m_a (x - blur) for every mask a. */
static void compose(const sal_ctx *s, pert_run *r)
{
    for (int a = 0; a < r->A; a++) {
        const float *m = r->m + (size_t)a * s->pixels;
        float *dst = r->pix + (size_t)a * s->image;
        for (int c = 0; c < s->C; c++)
            for (int i = 0; i < s->pixels; i++) {
                size_t k = (size_t)c * s->pixels + i;
                dst[k] = r->blur[k] + m[i] * r->diff[k];
            }
    }
}

/* dm_a = sum over channels of dpix_a (x - blur). */
static void mask_grad(const sal_ctx *s, pert_run *r)
{
    memset(r->dm, 0, sizeof(float) * (size_t)r->A * s->pixels);
    for (int a = 0; a < r->A; a++)
        for (int c = 0; c < s->C; c++)
            for (int i = 0; i < s->pixels; i++) {
                size_t k = (size_t)c * s->pixels + i;
                r->dm[(size_t)a * s->pixels + i] += r->dpix[(size_t)a * s->image + k] * r->diff[k];
            }
}

static void clamp01(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) v[i] = v[i] < 0 ? 0 : (v[i] > 1 ? 1 : v[i]);
}

/* ------------------------------------------------- meaningful perturbation */

#define MP_TV_BETA 3.f

/* mean over vertical pairs of |d|^beta + mean over horizontal pairs; adds
 * scale * gradient into dm. */
static float tv_norm(const float *m, int g, float scale, float *dm)
{
    double sv = 0, sh = 0;
    float nv = (float)((g - 1) * g), nh = nv;
    if (g < 2) return 0;
    for (int y = 0; y < g; y++)
        for (int x = 0; x < g; x++) {
            int i = y * g + x;
            for (int dir = 0; dir < 2; dir++) {
                int j = dir ? (x + 1 < g ? i + 1 : -1) : (y + 1 < g ? i + g : -1);
                if (j < 0) continue;
                float d = m[j] - m[i], ad = fabsf(d);
                float v = ad * ad * ad;   /* beta = 3 */
                if (dir) sh += v;
                else sv += v;
                float gd = scale * MP_TV_BETA * ad * d / (dir ? nh : nv);   /* d|d|^3/dd = 3 |d| d */
                dm[j] += gd;
                dm[i] -= gd;
            }
        }
    return (float)(sv / nv + sh / nh);
}

static nm_status mp_step(sal_ctx *s, pert_run *r, int t, nm_error *err)
{
    const nm_saliency_options *o = s->o;
    upsample_bilinear_forward(r->param, r->g, r->g, r->m, s->H, s->W);
    compose(s, r);
    nm_status st = sal_forward(s, r->pix, 1, 1, err);
    if (st) return st;
    memset(s->dlogits, 0, sizeof(float) * (size_t)s->B * s->K);
    sal_prob_grad(s, 0, 1.f);
    st = sal_backward(s, 1, r->dpix, err);
    if (st) return st;
    mask_grad(s, r);
    memset(r->dparam, 0, sizeof(float) * (size_t)r->cells);
    upsample_bilinear_backward(r->dm, s->H, s->W, r->dparam, r->g, r->g);
    for (int i = 0; i < r->cells; i++) r->dparam[i] -= o->mp_l1 / (float)r->cells;
    tv_norm(r->param, r->g, o->mp_tv, r->dparam);
    nm_optim_step(&r->opt, r->param, r->dparam, 0, r->cells, t + 1);
    clamp01(r->param, (size_t)r->cells);
    return NM_OK;
}

nm_status sal_meaningful_perturbation(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    pert_run r = {0};
    float lr = s->o->pert_lr > 0 ? s->o->pert_lr : 0.1f;
    nm_status st = pert_alloc(s, &r, 1, lr, err);
    if (!st)
        for (int i = 0; i < r.cells; i++) r.param[i] = 0.f;
    for (int t = 0; !st && t < s->o->pert_steps; t++) st = mp_step(s, &r, t, err);
    if (!st) {
        upsample_bilinear_forward(r.param, r.g, r.g, r.m, s->H, s->W);
        for (int i = 0; i < s->pixels; i++) out->map[i] = 1.f - r.m[i];
    }
    pert_free(&r);
    return st;
}

/* -------------------------------------------------- extremal perturbation */

#define EP_LAMBDA0 300.f
#define EP_LAMBDA_GROWTH 16.4f

/* coarse_i = max over the (2 rad + 1)^2 neighbours j of w(i, j) param_j. */
static void maxconv_forward(const float *p, int g, float sigma, int rad, float *out, int *arg)
{
    for (int y = 0; y < g; y++)
        for (int x = 0; x < g; x++) {
            float best = -1.f;
            int at = y * g + x;
            for (int dy = -rad; dy <= rad; dy++)
                for (int dx = -rad; dx <= rad; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy < 0 || yy >= g || xx < 0 || xx >= g) continue;
                    float v = expf(-(float)(dy * dy + dx * dx) / (2.f * sigma * sigma)) * p[yy * g + xx];
                    if (v > best) best = v, at = yy * g + xx;
                }
            out[y * g + x] = best;
            arg[y * g + x] = at;
        }
}

static void maxconv_backward(const float *dout, const int *arg, int g, float sigma, float *dp)
{
    for (int i = 0; i < g * g; i++) {
        int dy = arg[i] / g - i / g, dx = arg[i] % g - i % g;
        dp[arg[i]] += dout[i] * expf(-(float)(dy * dy + dx * dx) / (2.f * sigma * sigma));
    }
}

/* lambda mean((sort(m) - r)^2): adds its gradient into dm. Returns 0 when
 * out of memory. */
static int area_penalty(const float *m, int n, float area, float lambda, int *order, float *dm)
{
    if (!nm_argsort(m, n, 0, order)) return 0;
    int zeros = (int)((float)n * (1.f - area));
    for (int r = 0; r < n; r++) {
        float ref = r < zeros ? 0.f : 1.f;
        dm[order[r]] += 2.f * lambda * (m[order[r]] - ref) / (float)n;
    }
    return 1;
}

static void ep_masks(const sal_ctx *s, pert_run *r, float sigma, int rad)
{
    for (int a = 0; a < r->A; a++) {
        size_t co = (size_t)a * r->cells;
        maxconv_forward(r->param + co, r->g, sigma, rad, r->coarse + co, r->arg + co);
        upsample_bilinear_forward(r->coarse + co, r->g, r->g, r->m + (size_t)a * s->pixels, s->H, s->W);
    }
}

static nm_status ep_step(sal_ctx *s, pert_run *r, int t, float lambda, int *order, nm_error *err)
{
    float sigma = 21.f * (float)r->g / 224.f;
    int rad = (int)ceilf(sigma);
    ep_masks(s, r, sigma, rad);
    compose(s, r);
    nm_status st = sal_forward(s, r->pix, r->A, 1, err);
    if (st) return st;
    memset(s->dlogits, 0, sizeof(float) * (size_t)s->B * s->K);
    for (int a = 0; a < r->A; a++) s->dlogits[(size_t)a * s->K + s->target] = -1.f;   /* maximise the logit */
    st = sal_backward(s, r->A, r->dpix, err);
    if (st) return st;
    mask_grad(s, r);
    memset(r->dcoarse, 0, sizeof(float) * (size_t)r->A * r->cells);
    memset(r->dparam, 0, sizeof(float) * (size_t)r->A * r->cells);
    for (int a = 0; a < r->A; a++) {
        size_t co = (size_t)a * r->cells, po = (size_t)a * s->pixels;
        if (!area_penalty(r->m + po, s->pixels, s->o->ep_areas[a], lambda, order, r->dm + po))
            return nm_fail(err, NM_ERR_MEMORY, "out of memory for the area constraint");
        upsample_bilinear_backward(r->dm + po, s->H, s->W, r->dcoarse + co, r->g, r->g);
        maxconv_backward(r->dcoarse + co, r->arg + co, r->g, sigma, r->dparam + co);
    }
    nm_optim_step(&r->opt, r->param, r->dparam, 0, (int64_t)r->A * r->cells, t + 1);
    clamp01(r->param, (size_t)r->A * r->cells);
    return NM_OK;
}

nm_status sal_extremal_perturbation(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    pert_run r = {0};
    const nm_saliency_options *o = s->o;
    float lr = o->pert_lr > 0 ? o->pert_lr : 0.05f;
    nm_status st = pert_alloc(s, &r, o->ep_n_areas, lr, err);
    int *order = malloc(sizeof *order * (size_t)s->pixels);
    if (!st && !order) st = nm_fail(err, NM_ERR_MEMORY, "out of memory for the area constraint");
    if (!st)
        for (int i = 0; i < r.A * r.cells; i++) r.param[i] = 0.5f;
    int steps = o->pert_steps;
    float growth = steps > 1 ? powf(EP_LAMBDA_GROWTH, 1.f / (float)(steps - 1)) : 1.f, lambda = EP_LAMBDA0;
    for (int t = 0; !st && t < steps; t++, lambda *= growth) st = ep_step(s, &r, t, lambda, order, err);
    if (!st) {
        float sigma = 21.f * (float)r.g / 224.f;
        ep_masks(s, &r, sigma, (int)ceilf(sigma));
        for (int a = 0; a < r.A; a++)
            for (int i = 0; i < s->pixels; i++) out->map[i] += r.m[(size_t)a * s->pixels + i] / (float)r.A;
    }
    free(order);
    pert_free(&r);
    return st;
}
