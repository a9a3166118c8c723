/* Internals shared by the saliency methods (nm_explain): one image in pixel
 * space, the model at a fixed batch size, and helpers that compose the
 * normalised input, run the engine and differentiate through the
 * normalisation. */
#ifndef NM_EXPLAIN_SALIENCY_H
#define NM_EXPLAIN_SALIENCY_H

#include <stdint.h>

#include "neuromask.h"

typedef struct sal_ctx {
    nm_model *m;
    const nm_preprocess *pp;
    const nm_saliency_options *o;
    const float *x;             /* the image, C x H x W, pixel space [0,1] */
    int C, H, W, K;             /* channels, size, classes */
    int pixels, image;          /* H * W and C * H * W */
    int B;                      /* images per engine call */
    float *input, *dinput;      /* B x image, normalised */
    float *logits, *dlogits;    /* B x K */
    int target;
    float logit_x, prob_x;      /* the target's logit and probability on x */
} sal_ctx;

/* Plan the model for B images per call and run x once to settle the target. */
nm_status sal_prepare(sal_ctx *s, int B, nm_error *err);
void sal_release(sal_ctx *s);

/* Forward n <= B pixel-space images (n x image); the rest of the batch
 * repeats the last one. Logits land in s->logits. `keep`: the model keeps
 * the activations for sal_backward (else nm_model_predict, faster). */
nm_status sal_forward(sal_ctx *s, const float *pix, int n, int keep, nm_error *err);
/* Back-propagate s->dlogits; writes d/d(pixel-space input) of the first n
 * images (n x image) to dpix. */
nm_status sal_backward(sal_ctx *s, int n, float *dpix, nm_error *err);
/* s->dlogits = one-hot of the target on the first n images, 0 elsewhere. */
void sal_onehot(sal_ctx *s, int n);
/* Softmax probability of class c in row b of s->logits. */
float sal_prob(const sal_ctx *s, int b, int c);
/* s->dlogits row b = d p_c / d logits (softmax Jacobian row), times scale. */
void sal_prob_grad(sal_ctx *s, int b, float scale);

/* Per-plane Gaussian blur, edges clamped, radius ceil(3 sigma). */
void sal_gaussian_blur(const float *src, float *dst, int planes, int h, int w, float sigma);
/* The blur sigma the options ask for, in pixels. */
float sal_blur_sigma(const sal_ctx *s);
/* A reference image (C x H x W) of the given kind for x. */
nm_status sal_baseline(const sal_ctx *s, nm_baseline kind, uint64_t seed, float *out, nm_error *err);

/* splitmix64 and the floats drawn from it: uniform = top 24 bits / 2^24,
 * exact in float32 (tools/saliency_ref.py implements the same). */
uint64_t sal_splitmix64(uint64_t *state);
float sal_uniform(uint64_t *state);
float sal_normal(uint64_t *state);      /* Box-Muller on two uniforms */

/* The next RISE mask (h x w) from the generator state: cell x cell keep
 * bits (u < p, row-major), then the row shift and the column shift
 * ((u24 * cell_size) >> 24 each), the grid upsampled bilinearly
 * (align_corners = False) to (cell + 1) * cell_size and cropped at the
 * shift. `scratch` holds cell^2 + (cell+1)^2 * ceil(h/cell) * ceil(w/cell) floats. */
void sal_rise_mask(uint64_t *state, int cell, float p, int h, int w, float *scratch, float *mask);
size_t sal_rise_scratch(int cell, int h, int w);

int sal_pert_grid(const sal_ctx *s);
/* Occlusion geometry: patch, stride and window positions per axis
 * (ceil((side - patch) / stride) + 1, the last windows clipped at the
 * border, as Captum's Occlusion). Returns the number of windows. */
int sal_occ_windows(const sal_ctx *s, int *patch, int *stride, int *ny, int *nx);

nm_status sal_gradient(sal_ctx *s, nm_method method, nm_saliency *out, nm_error *err);
nm_status sal_integrated_gradients(sal_ctx *s, nm_saliency *out, nm_error *err);
nm_status sal_smoothgrad(sal_ctx *s, nm_saliency *out, nm_error *err);
nm_status sal_gradcam(sal_ctx *s, nm_saliency *out, nm_error *err);
nm_status sal_occlusion(sal_ctx *s, nm_saliency *out, nm_error *err);
nm_status sal_rise(sal_ctx *s, nm_saliency *out, nm_error *err);
nm_status sal_meaningful_perturbation(sal_ctx *s, nm_saliency *out, nm_error *err);
nm_status sal_extremal_perturbation(sal_ctx *s, nm_saliency *out, nm_error *err);

/* The images per engine call for a method that evaluates `work` images. */
int sal_batch_for(const nm_saliency_options *o, int work);

#endif
