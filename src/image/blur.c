/* The insertion metric's start image (see blur.h). */
#include "image/blur.h"

#include <math.h>

/* RISE's gkern(klen, nsig): scipy.ndimage.gaussian_filter(delta, nsig) on a
 * klen x klen array (mode 'reflect', truncate 4). The filter is separable
 * and so is the delta, so the 2-D kernel is k1 (x) k1 with k1 the filtered
 * 1-D delta. Fills k1[klen]. */
static void rise_kernel_1d(int klen, double sigma, double *k1)
{
    int radius = (int)(4.0 * sigma + 0.5);
    double sum = 0;
    for (int j = -radius; j <= radius; j++) sum += exp(-0.5 * j * j / (sigma * sigma));
    for (int i = 0; i < klen; i++) k1[i] = 0;
    for (int i = 0; i < klen; i++)
        for (int j = -radius; j <= radius; j++) {
            /* scipy 'reflect' (d c b a | a b c d | d c b a), repeated. */
            int p = (i + j) % (2 * klen);
            if (p < 0) p += 2 * klen;
            if (p >= klen) p = 2 * klen - 1 - p;
            if (p == klen / 2) k1[i] += exp(-0.5 * j * j / (sigma * sigma)) / sum;
        }
}

/* One pass of the separable kernel: `lines` lines of `len` samples, sample
 * k of line l at l * line_step + k * step; out-of-image taps read `pad`. */
static void blur_pass(const float *in, float *out, int lines, int len, int line_step, int step, const double *k1,
                      int klen, float pad)
{
    int r = klen / 2;
    for (int l = 0; l < lines; l++)
        for (int k = 0; k < len; k++) {
            double s = 0;
            for (int d = 0; d < klen; d++) {
                int kk = k + d - r;
                s += k1[d] * (kk >= 0 && kk < len ? in[l * line_step + kk * step] : pad);
            }
            out[l * line_step + k * step] = (float)s;
        }
}

float nm_normalized_zero(const nm_preprocess *pp, int ch)
{
    return (pp->mean[ch] - pp->offset) / pp->scale;
}

void nm_insertion_blur(const nm_preprocess *pp, const float *x, int c, int h, int w, int klen, float sigma,
                       float *out, float *tmp)
{
    double k1[NM_INSERTION_BLUR_MAX_KERNEL];
    rise_kernel_1d(klen, sigma, k1);
    for (int ch = 0; ch < c; ch++) {
        float pad = nm_normalized_zero(pp, ch);
        const float *in = x + (size_t)ch * h * w;
        float *o = out + (size_t)ch * h * w;
        blur_pass(in, tmp, h, w, w, 1, k1, klen, pad);   /* rows */
        blur_pass(tmp, o, w, h, 1, w, k1, klen, pad);    /* columns */
    }
}
