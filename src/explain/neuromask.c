/* NeuroMask (Alzantot et al. 2019): learn m = sigmoid(w / T) per image so the
 * masked image keeps the class while m stays sparse and smooth:
 *   loss = l_pred CE(f(norm(x m + b (1 - m))), c) + l_sparse mean|w + L|
 *        + l_smooth mean((K conv w)^2)
 * Masking happens in pixel space; the normalisation is differentiated.
 *
 * Each step plays games: game 0 is the paper's term (x kept where m = 1,
 * the baseline b elsewhere, cross-entropy); with l_delete the image shows x
 * where m = 0 and must lose the class; with alt_fill both are played on a
 * second fill too. All images of a step go through the model as one batch:
 * image g B + b is game g of image b.
 *
 * Options beyond the paper are all off in the "cifar" and "imagenet"
 * presets, whose arithmetic they leave untouched. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/tensor.h"
#include "explain/mask_terms.h"
#include "explain/optim.h"
#include "image/blur.h"

/* Width of the Gaussian that interpolates the grid's cells, in cells. */
#define NM_GRID_SIGMA 0.75f

/* One game: what the masked image shows and what it must do. */
typedef struct nm_game {
    int preserve;           /* 1: x where m = 1, the fill elsewhere, keep the class (CE);
                               0: x where m = 0, the fill where m = 1, lose it (-log(1 - p)) */
    float weight;
    nm_baseline fill;
    float *base;            /* B x C x H x W: the fill in pixel space */
} nm_game;

typedef struct nm_run {
    const nm_neuromask_options *o;
    const nm_preprocess *pp;
    const float *x;
    int B, C, H, W, K;
    int coarse, gh, gw;     /* coarse: the mask has gh x gw cells, interpolated to H x W */
    int cells, pixels;
    int G;                  /* games per image; game 0 is the paper's term */
    nm_game game[4];
    int model_batch;        /* B x G */
    float *w, *dw;          /* B x cells */
    float *mc, *dmc;        /* B x cells: the masks on the cells and their gradients */
    float *m, *dm;          /* B x pixels: the masks at full resolution */
    float *msum;            /* option average: B x pixels, the sum of the masks of the steps taken */
    float *wy, *wx, *utmp;  /* coarse: interpolation weights (H x gh, W x gw), scratch gh x W */
    float *r;               /* smoothness residual of one image */
    float *input, *dinput;  /* model input and its gradient */
    float *logits, *dlogits;
    float *loss, *lp, *ls, *lsm, *ld;   /* per image, this step */
    nm_optim opt;
} nm_run;

static void *alloc_f(size_t n, int *ok)
{
    void *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *ok = 0;
    return p;
}

static void run_free(nm_run *r)
{
    float *bufs[] = {r->w, r->dw, r->mc, r->dmc, r->m, r->dm, r->msum, r->wy, r->wx, r->utmp, r->r, r->input, r->dinput,
                     r->logits, r->dlogits, r->loss, r->lp, r->ls, r->lsm, r->ld};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    for (int g = 0; g < r->G; g++) free(r->game[g].base);
    nm_optim_free(&r->opt);
}

static int run_alloc(nm_run *r)
{
    int ok = 1;
    size_t img = (size_t)r->B * r->C * r->pixels, cells = (size_t)r->B * r->cells;
    size_t masks = (size_t)r->B * r->pixels, logits = (size_t)r->model_batch * r->K;
    size_t model_img = (size_t)r->model_batch * r->C * r->pixels;
    for (int g = 0; g < r->G; g++) r->game[g].base = alloc_f(img, &ok);
    r->input = alloc_f(model_img, &ok);
    r->dinput = alloc_f(model_img, &ok);
    r->w = alloc_f(cells, &ok);
    r->dw = alloc_f(cells, &ok);
    r->mc = alloc_f(cells, &ok);
    r->dmc = alloc_f(cells, &ok);
    r->m = alloc_f(masks, &ok);
    r->dm = alloc_f(masks, &ok);
    r->msum = r->o->average ? alloc_f(masks, &ok) : NULL;
    if (r->coarse) {
        r->wy = alloc_f((size_t)r->H * r->gh, &ok);
        r->wx = alloc_f((size_t)r->W * r->gw, &ok);
        r->utmp = alloc_f((size_t)r->gh * r->W, &ok);
        if (ok) gaussian_interp_weights(r->gh, r->H, NM_GRID_SIGMA, r->wy);
        if (ok) gaussian_interp_weights(r->gw, r->W, NM_GRID_SIGMA, r->wx);
    }
    r->r = alloc_f((size_t)r->cells, &ok);
    r->logits = alloc_f(logits, &ok);
    r->dlogits = alloc_f(logits, &ok);
    r->loss = alloc_f((size_t)r->B, &ok);
    r->lp = alloc_f((size_t)r->B, &ok);
    r->ls = alloc_f((size_t)r->B, &ok);
    r->lsm = alloc_f((size_t)r->B, &ok);
    r->ld = alloc_f((size_t)r->B, &ok);
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

static void fill_baseline(nm_run *r, nm_baseline kind, float *base, float *tmp)
{
    uint64_t seed = r->o->seed ^ 0xB45E11Eull;
    for (int p = 0; p < r->B * r->C; p++) {
        const float *src = r->x + (size_t)p * r->pixels;
        float *dst = base + (size_t)p * r->pixels;
        double mean = 0;
        switch (kind) {
        case NM_BASELINE_BLUR: nm_gaussian_blur(src, dst, 1, r->H, r->W, r->o->blur_sigma, tmp); break;
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

static void make_baselines(nm_run *r, float *tmp)
{
    for (int g = 0; g < r->G; g++) fill_baseline(r, r->game[g].fill, r->game[g].base, tmp);
}

/* ------------------------------------------------------------ one step */

/* Image b as one model image at dst: unmasked (mask NULL), or x where the
 * mask keeps it (m for preserve, 1 - m otherwise) and `fill` elsewhere
 * (NULL: black); normalised. */
static void compose(const nm_run *r, int b, const float *mask, int preserve, const float *fill, float *dst)
{
    const nm_preprocess *pp = r->pp;
    for (int c = 0; c < r->C; c++) {
        size_t src = ((size_t)b * r->C + c) * r->pixels;
        float *out = dst + (size_t)c * r->pixels;
        float a = pp->scale / pp->std[c % 3], k = (pp->offset - pp->mean[c % 3]) / pp->std[c % 3];
        for (int i = 0; i < r->pixels; i++) {
            float keep = !mask ? 1.f : (preserve ? mask[i] : 1.f - mask[i]);
            float v = !mask ? r->x[src + i] : r->x[src + i] * keep + (fill ? fill[src + i] * (1.f - keep) : 0.f);
            out[i] = a * v + k;
        }
    }
}

static float *model_image(const nm_run *r, float *buf, int g, int b)
{
    return buf + ((size_t)g * r->B + b) * r->C * r->pixels;
}

/* The first B model images: x unmasked (mask NULL) or under `mask` (B x
 * pixels) on game 0's fill. */
static void compose_input(nm_run *r, const float *mask)
{
    for (int b = 0; b < r->B; b++)
        compose(r, b, mask ? mask + (size_t)b * r->pixels : NULL, 1, r->game[0].base, model_image(r, r->input, 0, b));
}

static void compose_games(nm_run *r)
{
    for (int g = 0; g < r->G; g++)
        for (int b = 0; b < r->B; b++)
            compose(r, b, r->m + (size_t)b * r->pixels, r->game[g].preserve, r->game[g].base,
                    model_image(r, r->input, g, b));
}

/* The masks of this step from w: sigmoid(w / T) on the cells, interpolated
 * to the pixels when the mask is coarse. */
static void update_masks(nm_run *r)
{
    for (int b = 0; b < r->B; b++) {
        float *mc = r->mc + (size_t)b * r->cells, *m = r->m + (size_t)b * r->pixels;
        mask_sigmoid_forward(r->w + (size_t)b * r->cells, r->cells, 0.f, r->o->temperature, mc);
        if (r->coarse) upsample_separable_forward(mc, r->gh, r->gw, r->wy, r->wx, r->utmp, m, r->H, r->W);
        else memcpy(m, mc, sizeof(float) * (size_t)r->pixels);
    }
}

/* The targets' softmax probabilities of the first B images into prob and,
 * when lp is given, l_pred times their cross-entropy into lp. */
static void target_probs(const nm_run *r, const int *target, float *prob, float *lp)
{
    for (int b = 0; b < r->B; b++) {
        const float *z = r->logits + (size_t)b * r->K;
        float mx = z[0];
        for (int k = 1; k < r->K; k++) mx = z[k] > mx ? z[k] : mx;
        double sum = 0;
        for (int k = 0; k < r->K; k++) sum += exp((double)(z[k] - mx));
        double logp = (double)(z[target[b]] - mx) - log(sum);
        prob[b] = (float)exp(logp);
        if (lp) lp[b] = r->o->l_pred * (float)-logp;
    }
}

/* The loss of one game on logits z (one image), weighted, gradient into dz:
 * preserve: CE(z, c). Delete: -log(1 - p_c); with q the softmax over the
 * classes other than c, d/dz_k = p_k - q_k (k != c) and d/dz_c = p_c:
 * bounded, and fading once p_c is small. */
static float game_loss(int preserve, float weight, const float *z, int K, int c, float *dz)
{
    float mx = z[0];
    for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    double all = 0, others = 0;
    for (int k = 0; k < K; k++) {
        double e = exp((double)(z[k] - mx));
        all += e;
        others += k == c ? 0 : e;
    }
    others = others > 1e-300 ? others : 1e-300;
    for (int k = 0; k < K; k++) {
        double e = exp((double)(z[k] - mx));
        double g = preserve ? e / all - (k == c) : e / all - (k == c ? 0 : e / others);
        dz[k] = weight * (float)g;
    }
    double loss = preserve ? log(all) - (double)(z[c] - mx) : log(all) - log(others);
    return weight * (float)loss;
}

/* Game 0's loss (and the other preserve games') is the prediction term
 * (lp), the delete games' sum is ld. */
static void game_losses(nm_run *r, const int *target)
{
    for (int b = 0; b < r->B; b++) r->lp[b] = r->ld[b] = 0;
    for (int g = 0; g < r->G; g++)
        for (int b = 0; b < r->B; b++) {
            size_t img = ((size_t)g * r->B + b) * r->K;
            const nm_game *gm = &r->game[g];
            float l = game_loss(gm->preserve, gm->weight, r->logits + img, r->K, target[b], r->dlogits + img);
            if (gm->preserve) r->lp[b] += l;
            else r->ld[b] += l;
        }
}

/* d input / d m = a (x - fill) where the game keeps x on m = 1, a (fill - x)
 * where it keeps x on m = 0. */
static void mask_gradient(nm_run *r)
{
    const nm_preprocess *pp = r->pp;
    memset(r->dm, 0, sizeof(float) * (size_t)r->B * r->pixels);
    for (int g = 0; g < r->G; g++)
        for (int b = 0; b < r->B; b++) {
            const float *fill = r->game[g].base, *din = model_image(r, r->dinput, g, b);
            float sign = r->game[g].preserve ? 1.f : -1.f, *dm = r->dm + (size_t)b * r->pixels;
            for (int c = 0; c < r->C; c++) {
                size_t src = ((size_t)b * r->C + c) * r->pixels;
                const float *dc = din + (size_t)c * r->pixels;
                float a = sign * pp->scale / pp->std[c % 3];
                for (int i = 0; i < r->pixels; i++) dm[i] += dc[i] * a * (r->x[src + i] - fill[src + i]);
            }
        }
}

/* Sparsity on the mask itself: l_sparse * mean(m) over the cells. */
static float mask_sparsity(const float *mc, int n, float scale, float *dmc)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        s += mc[i];
        dmc[i] += scale / (float)n;
    }
    return scale * (float)(s / n);
}

/* dw of image b from its mask's gradient, plus the regularisers. */
static void image_weight_gradient(nm_run *r, int b)
{
    const nm_neuromask_options *o = r->o;
    float *w = r->w + (size_t)b * r->cells, *dw = r->dw + (size_t)b * r->cells;
    float *mc = r->mc + (size_t)b * r->cells, *dmc = r->dmc + (size_t)b * r->cells;
    const float *dm = r->dm + (size_t)b * r->pixels;
    r->ls[b] = 0;
    if (r->coarse) {
        memset(dmc, 0, sizeof(float) * (size_t)r->cells);
        upsample_separable_backward(dm, r->H, r->W, r->wy, r->wx, r->utmp, dmc, r->gh, r->gw);
    } else {
        memcpy(dmc, dm, sizeof(float) * (size_t)r->cells);
    }
    if (o->sparsity == NM_SPARSITY_MASK) r->ls[b] = mask_sparsity(mc, r->cells, o->l_sparse, dmc);
    mask_sigmoid_backward(mc, dmc, r->cells, o->temperature, dw);
    if (o->sparsity == NM_SPARSITY_LOGIT) {
        r->ls[b] = o->l_sparse * sparsity_forward(w, r->cells, o->init_range);
        sparsity_backward(w, r->cells, o->init_range, o->l_sparse, dw);
    }
    r->lsm[b] = 0;
    if (o->l_smooth != 0) {
        r->lsm[b] = o->l_smooth * smoothness_forward(w, r->gh, r->gw, o->kernel, r->r);
        smoothness_backward(r->r, r->gh, r->gw, o->kernel, o->l_smooth, dw);
    }
    r->loss[b] = r->lp[b] + r->ls[b] + r->lsm[b] + r->ld[b];
}

static void weight_gradient(nm_run *r)
{
    memset(r->dw, 0, sizeof(float) * (size_t)r->B * r->cells);
    for (int b = 0; b < r->B; b++) image_weight_gradient(r, b);
}

static nm_status step(nm_run *r, nm_model *m, const int *target, nm_error *err)
{
    update_masks(r);
    compose_games(r);
    nm_status s = nm_model_forward(m, r->input, r->logits, err);
    if (s) return s;
    game_losses(r, target);
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

static int uses_blur(const nm_neuromask_options *o)
{
    return o->baseline == NM_BASELINE_BLUR || (o->alt_fill && o->alt_baseline == NM_BASELINE_BLUR);
}

static nm_status check_options(const nm_neuromask_options *o, nm_error *err)
{
    if (o->steps < 0 || o->lr <= 0 || o->temperature <= 0 || (o->kernel != 3 && o->kernel != 5) ||
        o->grid < NM_GRID_AUTO || o->tol < 0 || o->window < 1 || (uses_blur(o) && !(o->blur_sigma > 0 && o->blur_sigma < 40)))
        return nm_fail(err, NM_ERR_ARG, "NeuroMask options out of range (steps >= 0, lr > 0, T > 0, kernel 3 or 5, "
                                        "grid >= -1, tol >= 0, window >= 1, 0 < blur sigma < 40)");
    if ((unsigned)o->optimizer > NM_OPT_NORMALIZED || (unsigned)o->init > NM_INIT_ZERO ||
        (unsigned)o->sparsity > NM_SPARSITY_MASK || o->l_delete < 0 || (unsigned)o->baseline > NM_BASELINE_NOISE ||
        (unsigned)o->alt_baseline > NM_BASELINE_NOISE || (o->alt_fill != 0 && o->alt_fill != 1) ||
        (o->calibrate != 0 && o->calibrate != 1) || (o->average != 0 && o->average != 1))
        return nm_fail(err, NM_ERR_ARG, "NeuroMask options out of range (l_delete >= 0, alt_fill, average, calibrate 0 or 1, "
                                        "known optimizer, init, sparsity, baselines)");
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
            w[i] = o->init_w ? o->init_w[(size_t)b * r->cells + i]
                 : o->init == NM_INIT_ZERO ? 0.f
                 : o->init_range * (2.f * uniform01(&s) - 1.f);
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

/* Adds the mask this step evaluated (before the update) to image b's sum. */
static void accumulate_mask(nm_run *r, int b)
{
    const float *m = r->m + (size_t)b * r->pixels;
    float *sum = r->msum + (size_t)b * r->pixels;
    for (int i = 0; i < r->pixels; i++) sum[i] += m[i];
}

/* Option average: each mask becomes the mean of the masks of its steps and
 * the final one. */
static void average_masks(nm_run *r, const nm_explanation *e)
{
    for (int b = 0; b < r->B; b++) {
        float *m = r->m + (size_t)b * r->pixels, n = (float)(e->steps[b] + 1);
        const float *sum = r->msum + (size_t)b * r->pixels;
        for (int i = 0; i < r->pixels; i++) m[i] = (sum[i] + m[i]) / n;
    }
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
        if (o->cancel && *o->cancel) {
            s = nm_fail(err, NM_ERR_CANCELLED, "interrupted at step %d of %d", t, o->steps);
            break;
        }
        /* normalized steps shrink linearly to 0, so the last ones settle instead of oscillating */
        if (o->optimizer == NM_OPT_NORMALIZED) r->opt.lr = o->lr * (float)(o->steps - t) / (float)o->steps;
        s = step(r, m, e->target, err);
        if (s) break;
        memcpy(e->history + (size_t)t * r->B, r->loss, sizeof(float) * (size_t)r->B);
        for (int b = 0; b < r->B; b++) {
            if (done[b]) continue;
            if (r->msum) accumulate_mask(r, b);
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

/* Exponents tried by option calibrate: 2^(-j/2), j = 0 .. NM_CALIBRATE_POWERS - 1. */
#define NM_CALIBRATE_POWERS 12

/* Whether model image `slot` keeps class c as top-1 with at least half of
 * the unmasked probability p0. */
static int keeps(const nm_run *r, int slot, int c, float p0)
{
    const float *z = r->logits + (size_t)slot * r->K;
    float mx = z[argmax(z, r->K)];
    double sum = 0;
    for (int k = 0; k < r->K; k++) sum += exp((double)(z[k] - mx));
    return z[c] == mx && exp((double)(z[c] - mx)) / sum >= 0.5 * (double)p0;
}

/* Option calibrate: each returned mask becomes m^g, g the largest of
 * 2^(-j/2) whose masked image x m (black elsewhere, the paper's) keeps the
 * class with at least half its probability (the smallest g when none does). m^g orders
 * the pixels as m does; a smaller g only raises the mask. The candidates
 * go through the model as many at a time as its batch holds. */
static nm_status calibrate(nm_run *r, nm_model *m, const nm_explanation *e, nm_error *err)
{
    int per = r->model_batch / r->B, *chosen = malloc(sizeof(int) * (size_t)r->B);
    if (!chosen) return nm_fail(err, NM_ERR_MEMORY, "out of memory");
    for (int b = 0; b < r->B; b++) chosen[b] = -1;
    nm_status s = NM_OK;
    for (int j0 = 0; j0 < NM_CALIBRATE_POWERS && !s; j0 += per) {
        int nj = NM_CALIBRATE_POWERS - j0 < per ? NM_CALIBRATE_POWERS - j0 : per;
        for (int q = 0; q < nj; q++)
            for (int b = 0; b < r->B; b++) {
                const float *mb = r->m + (size_t)b * r->pixels;
                float g = powf(2.f, -0.5f * (float)(j0 + q)), *tmp = r->dm + (size_t)b * r->pixels;
                for (int i = 0; i < r->pixels; i++) tmp[i] = powf(mb[i], g);
                compose(r, b, tmp, 1, NULL, model_image(r, r->input, q, b));
            }
        s = nm_model_forward(m, r->input, r->logits, err);
        for (int b = 0; !s && b < r->B; b++)
            for (int q = 0; q < nj && chosen[b] < 0; q++)
                if (keeps(r, q * r->B + b, e->target[b], e->prob_before[b])) chosen[b] = j0 + q;
    }
    for (int b = 0; !s && b < r->B; b++) {
        float g = powf(2.f, -0.5f * (float)(chosen[b] < 0 ? NM_CALIBRATE_POWERS - 1 : chosen[b]));
        float *mb = r->m + (size_t)b * r->pixels;
        for (int i = 0; i < r->pixels; i++) mb[i] = powf(mb[i], g);
    }
    free(chosen);
    return s;
}

static nm_status finish(nm_run *r, nm_model *m, nm_explanation *e, nm_error *err)
{
    update_masks(r);
    if (r->msum) average_masks(r, e);
    if (r->o->calibrate) {
        nm_status c = calibrate(r, m, e, err);
        if (c) return c;
    }
    compose_input(r, r->m);   /* the final check sees the mask returned */
    nm_status s = nm_model_predict(m, r->input, r->logits, err);
    if (s) return s;
    target_probs(r, e->target, e->prob_after, r->lp);
    weight_gradient(r);   /* the final loss terms; the gradient itself is unused */
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
    nm_status s = nm_model_predict(m, r->input, r->logits, err);
    if (s) return s;
    for (int b = 0; b < r->B; b++) {
        int c = r->o->target_class;
        if (c >= r->K) return nm_fail(err, NM_ERR_ARG, "class %d is out of range (the model has %d classes)", c, r->K);
        e->target[b] = c >= 0 ? c : argmax(r->logits + (size_t)b * r->K, r->K);
    }
    target_probs(r, e->target, e->prob_before, NULL);
    init_weights(r);
    return NM_OK;
}

/* The games: keep the class on each fill, and (l_delete) lose it when the
 * mask's pixels show the fill; with two fills each game's weight is halved. */
static void add_games(nm_run *r)
{
    const nm_neuromask_options *o = r->o;
    nm_baseline fills[2] = {o->baseline, o->alt_baseline};
    int n = o->alt_fill ? 2 : 1;
    for (int f = 0; f < n; f++) {
        r->game[r->G++] = (nm_game){.preserve = 1, .weight = o->l_pred / (float)n, .fill = fills[f]};
        if (o->l_delete > 0)
            r->game[r->G++] = (nm_game){.preserve = 0, .weight = o->l_delete / (float)n, .fill = fills[f]};
    }
}

static nm_status setup(nm_run *r, nm_model *m, int batch, nm_error *err)
{
    add_games(r);
    r->model_batch = batch * r->G;
    nm_status s = nm_model_set_batch(m, r->model_batch, err);
    if (s) return s;
    nm_shape in = nm_model_input_shape(m), out = nm_model_output_shape(m);
    if (out.ndim != 2) return nm_fail(err, NM_ERR_UNSUPPORTED, "NeuroMask needs [N, classes] logits");
    r->B = batch;
    r->C = (int)in.dims[1];
    r->H = (int)in.dims[2];
    r->W = (int)in.dims[3];
    r->K = (int)out.dims[1];
    int g = nm_neuromask_grid(r->o, r->H, r->W);
    r->coarse = g > 0;
    r->gh = g > 0 ? g : r->H;
    r->gw = g > 0 ? g : r->W;
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
    nm_shape in = nm_model_input_shape(m);
    if (in.ndim == 4) {   /* other ranks are refused by setup() */
        size_t per_image = (size_t)(in.dims[1] * in.dims[2] * in.dims[3]);
        s = nm_check_finite(x, (size_t)batch * per_image, "the input image", err);
        if (s) return s;
    }
    nm_run r = {.o = o, .pp = pp, .x = x};
    s = setup(&r, m, batch, err);
    if (!s && alloc_result(out, &r)) s = nm_fail(err, NM_ERR_MEMORY, "out of memory for the result");
    if (!s) {
        make_baselines(&r, r.dinput);
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
