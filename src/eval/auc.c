/* Deletion and insertion AUC (Petsiuk et al. 2018, "RISE", their
 * CausalMetric): rank the pixels by the map, change them `pixels_per_step`
 * at a time from a start image towards a finish image, and integrate the
 * target's softmax probability over the steps (trapezoid, normalised).
 *
 * Deletion: start = x, finish = the deletion fill (RISE: black).
 * Insertion: start = the insertion fill (RISE: blur(x)), finish = x. RISE
 * blurs the normalised tensor with a zero-padded 'same' convolution; we blur
 * in pixel space with the border padded by the pixel value that normalises
 * to 0, which is the same image after normalisation (the kernel sums to 1
 * and the normalisation is affine per channel). The other fills are the
 * protocols of docs/metrics.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/argsort.h"
#include "core/error.h"
#include "core/probability.h"
#include "graph/model.h"
#include "image/blur.h"

void nm_auc_defaults(nm_auc_options *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 64;
    o->blur_kernel = 11;
    o->blur_sigma = 5.0f;
    o->batch = 16;
    o->deletion_fill = NM_AUC_FILL_BLACK;
    o->insertion_fill = NM_AUC_FILL_BLUR;
}

typedef struct auc_run {
    int c, h, w, hw, steps, pixels_per_step, n_classes, target;
    int n_deletion, n_insertion;    /* images of each half: steps + 1, or 0 when not computed */
    const nm_preprocess *pp;
    const float *x;         /* [C,H,W] pixel space */
    float *deleted;         /* deletion's finish image */
    float *start;           /* insertion's start image */
    int *order;             /* pixel indices, most important first */
} auc_run;

/* Image k of the n_deletion + n_insertion evaluated: deletion steps first,
 * then insertion steps; written normalised into dst [C,H,W]. */
static void make_image(const auc_run *r, int k, float *dst)
{
    int insertion = k >= r->n_deletion;
    int step = insertion ? k - r->n_deletion : k;
    const float *start = insertion ? r->start : r->x, *finish = insertion ? r->x : r->deleted;
    size_t plane = (size_t)r->hw;
    memcpy(dst, start, sizeof(float) * plane * r->c);
    long changed = (long)step * r->pixels_per_step;
    if (changed > r->hw) changed = r->hw;
    for (long j = 0; j < changed; j++) {
        int p = r->order[j];
        for (int ch = 0; ch < r->c; ch++) dst[ch * plane + p] = finish[ch * plane + p];
    }
    for (int ch = 0; ch < r->c; ch++) {
        float scale = r->pp->scale, offset = r->pp->offset, mean = r->pp->mean[ch], std = r->pp->std[ch];
        float *d = dst + ch * plane;
        for (size_t i = 0; i < plane; i++) d[i] = (d[i] * scale + offset - mean) / std;   /* as preprocess.c */
    }
}

/* RISE's auc(): (sum - first/2 - last/2) / (points - 1). */
static double trapezoid_auc(const float *p, int steps)
{
    double s = 0;
    for (int i = 0; i <= steps; i++) s += p[i];
    return (s - 0.5 * p[0] - 0.5 * p[steps]) / steps;
}

static nm_status check_args(nm_model *m, const nm_preprocess *pp, const float *map, int target,
                            const nm_auc_options *o, nm_error *err)
{
    nm_shape in = nm_model_input_shape(m), out = nm_model_output_shape(m);
    if (in.ndim != 4 || in.dims[1] > 3)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: deletion/insertion needs an image input [N,C,H,W], C <= 3",
                       m->source);
    if (out.ndim != 2) return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: output is not [N, classes]", m->source);
    if (target < 0 || target >= out.dims[1])
        return nm_fail(err, NM_ERR_ARG, "%s: target class %d outside 0..%lld", m->source, target,
                       (long long)out.dims[1] - 1);
    if ((unsigned)o->deletion_fill > NM_AUC_FILL_IMAGE_MEAN || (unsigned)o->insertion_fill > NM_AUC_FILL_IMAGE_MEAN)
        return nm_fail(err, NM_ERR_ARG, "deletion/insertion: unknown fill");
    if (o->steps < 1 || o->batch < 1 || o->blur_kernel < 1 || o->blur_kernel % 2 == 0 ||
        o->blur_kernel > NM_INSERTION_BLUR_MAX_KERNEL || !(o->blur_sigma > 0))
        return nm_fail(err, NM_ERR_ARG, "deletion/insertion: need steps >= 1 (got %d), batch >= 1 (%d), an odd "
                       "blur kernel <= %d (%d) and sigma > 0 (%g)", o->steps, o->batch,
                       NM_INSERTION_BLUR_MAX_KERNEL, o->blur_kernel,
                       (double)o->blur_sigma);
    if (pp->scale == 0) return nm_fail(err, NM_ERR_ARG, "deletion/insertion: preprocessing scale is 0");
    int64_t hw = in.dims[2] * in.dims[3];
    for (int64_t i = 0; i < hw; i++)
        if (!isfinite(map[i])) return nm_fail(err, NM_ERR_NUMERIC, "deletion/insertion: the map has a non-finite value");
    return NM_OK;
}

/* The image `fill` makes of x, [C,H,W] pixel space; tmp holds H*W floats. */
static void fill_image(const auc_run *r, const nm_auc_options *o, nm_auc_fill fill, float *out, float *tmp)
{
    if (fill == NM_AUC_FILL_BLUR) {
        nm_insertion_blur(r->pp, r->x, r->c, r->h, r->w, o->blur_kernel, o->blur_sigma, out, tmp);
        return;
    }
    for (int ch = 0; ch < r->c; ch++) {
        const float *plane = r->x + (size_t)ch * r->hw;
        double v = 0;
        if (fill == NM_AUC_FILL_NORMALIZED_ZERO) v = nm_normalized_zero(r->pp, ch);
        else if (fill == NM_AUC_FILL_GREY) v = 0.5;
        else if (fill == NM_AUC_FILL_IMAGE_MEAN) {
            for (int i = 0; i < r->hw; i++) v += plane[i];
            v /= r->hw;
        }
        for (int i = 0; i < r->hw; i++) out[(size_t)ch * r->hw + i] = (float)v;
    }
}

static nm_status prepare_run(auc_run *r, const nm_auc_options *o, const float *map, nm_error *err)
{
    size_t n = (size_t)r->hw * r->c;
    float *tmp = malloc(sizeof *tmp * (size_t)r->hw);
    r->deleted = malloc(sizeof(float) * n);
    r->start = malloc(sizeof(float) * n);
    r->order = malloc(sizeof(int) * (size_t)r->hw);
    nm_status s = NM_OK;
    if (!tmp || !r->deleted || !r->start || !r->order || !nm_argsort(map, r->hw, 1, r->order))
        s = nm_fail(err, NM_ERR_MEMORY, "deletion/insertion: out of memory");
    if (!s && r->n_deletion) fill_image(r, o, o->deletion_fill, r->deleted, tmp);
    if (!s && r->n_insertion) fill_image(r, o, o->insertion_fill, r->start, tmp);
    free(tmp);
    return s;
}

/* Every image through the model, `batch` at a time (the last batch padded
 * with copies of its last image); probabilities into prob[n_deletion + n_insertion]. */
static nm_status run_images(nm_model *m, const auc_run *r, int batch, float *prob, nm_error *err)
{
    int total = r->n_deletion + r->n_insertion;
    size_t image = (size_t)r->c * r->hw;
    float *in = malloc(sizeof(float) * image * batch), *out = malloc(sizeof(float) * (size_t)r->n_classes * batch);
    nm_status s = in && out ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "deletion/insertion: out of memory");
    for (int first = 0; !s && first < total; first += batch) {
        int n = total - first < batch ? total - first : batch;
        for (int b = 0; b < n; b++) make_image(r, first + b, in + b * image);
        for (int b = n; b < batch; b++) memcpy(in + b * image, in + (n - 1) * image, sizeof(float) * image);
        s = nm_model_predict(m, in, out, err);
        for (int b = 0; !s && b < n; b++)
            prob[first + b] = nm_class_probability(out + (size_t)b * r->n_classes, r->n_classes, r->target);
    }
    free(in), free(out);
    return s;
}

nm_status nm_deletion_insertion(nm_model *m, const nm_preprocess *pp, const float *x, const float *map,
                                int target, const nm_auc_options *opt, double *deletion, double *insertion,
                                float *deletion_curve, float *insertion_curve, nm_error *err)
{
    nm_auc_options o;
    if (opt) o = *opt;
    else nm_auc_defaults(&o);
    nm_status s = check_args(m, pp, map, target, &o, err);
    if (s) return s;
    nm_shape in = nm_model_input_shape(m);
    int want_deletion = deletion || deletion_curve, want_insertion = insertion || insertion_curve;
    auc_run r = {.c = (int)in.dims[1], .h = (int)in.dims[2], .w = (int)in.dims[3], .steps = o.steps,
                 .n_deletion = want_deletion ? o.steps + 1 : 0, .n_insertion = want_insertion ? o.steps + 1 : 0,
                 .n_classes = (int)nm_model_output_shape(m).dims[1], .target = target, .pp = pp, .x = x};
    r.hw = r.h * r.w;
    r.pixels_per_step = (r.hw + o.steps - 1) / o.steps;
    int total = r.n_deletion + r.n_insertion, batch = o.batch < total ? o.batch : total;
    if (!total) return NM_OK;
    float *prob = malloc(sizeof(float) * (size_t)total);
    s = prob ? prepare_run(&r, &o, map, err) : nm_fail(err, NM_ERR_MEMORY, "deletion/insertion: out of memory");
    if (!s) s = nm_model_set_batch(m, batch, err);
    if (!s) s = run_images(m, &r, batch, prob, err);
    if (!s) {
        const float *ins = prob + r.n_deletion;
        if (deletion) *deletion = trapezoid_auc(prob, o.steps);
        if (insertion) *insertion = trapezoid_auc(ins, o.steps);
        if (deletion_curve) memcpy(deletion_curve, prob, sizeof(float) * (size_t)(o.steps + 1));
        if (insertion_curve) memcpy(insertion_curve, ins, sizeof(float) * (size_t)(o.steps + 1));
    }
    free(prob), free(r.deleted), free(r.start), free(r.order);
    return s;
}
