/* Gaussian blurs of images in pixel space (see blur.h). */
#include "image/blur.h"

#include <math.h>
#include <stddef.h>

#include "core/edge_index.h"

static void clamped_line(const float *src, float *dst, int n, int stride, const float *k, int rad)
{
    for (int i = 0; i < n; i++) {
        float acc = 0;
        for (int t = -rad; t <= rad; t++) {
            int j = nm_edge_index(i + t, n);
            acc += k[t + rad] * src[(size_t)j * stride];
        }
        dst[(size_t)i * stride] = acc;
    }
}

void nm_gaussian_blur(const float *src, float *dst, int planes, int h, int w, float sigma, float *tmp)
{
    int rad = (int)ceilf(3.f * sigma);
    if (rad > 255) rad = 255;
    float k[511], sum = 0;
    for (int t = -rad; t <= rad; t++) sum += k[t + rad] = expf(-(float)(t * t) / (2.f * sigma * sigma));
    for (int t = 0; t <= 2 * rad; t++) k[t] /= sum;
    for (int p = 0; p < planes; p++) {
        const float *sp = src + (size_t)p * h * w;
        float *dp = dst + (size_t)p * h * w;
        for (int y = 0; y < h; y++) clamped_line(sp + (size_t)y * w, tmp + (size_t)y * w, w, 1, k, rad);
        for (int x = 0; x < w; x++) clamped_line(tmp + x, dp + x, h, w, k, rad);
    }
}

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
