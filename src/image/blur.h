/* Gaussian blurs of images in pixel space: the blur baselines of the
 * explanation methods, and the blurred image the insertion metric starts
 * from (RISE's CausalMetric), shared by the metric and by NeuroMask games
 * that preserve on that image. */
#ifndef NM_IMAGE_BLUR_H
#define NM_IMAGE_BLUR_H

#include "neuromask.h"

/* Gaussian blur of `planes` h x w planes, radius ceil(3 sigma) (at most
 * 255), edges clamped; `tmp` holds h * w floats; dst may not be src. The
 * blur baselines of the explanation methods. */
void nm_gaussian_blur(const float *src, float *dst, int planes, int h, int w, float sigma, float *tmp);

/* Longest kernel nm_insertion_blur accepts. */
#define NM_INSERTION_BLUR_MAX_KERNEL 255

/* Pixel-space value that `pp` normalises to 0 in channel ch. */
float nm_normalized_zero(const nm_preprocess *pp, int ch);

/* x [c,h,w] in pixel space blurred per channel with RISE's gkern(klen,
 * sigma) ('same', zero padding of the normalised tensor: out-of-image taps
 * read the pixel value that `pp` normalises to 0) into out [c,h,w]. `tmp`
 * holds h * w floats. klen: odd, 1..NM_INSERTION_BLUR_MAX_KERNEL. */
void nm_insertion_blur(const nm_preprocess *pp, const float *x, int c, int h, int w, int klen, float sigma,
                       float *out, float *tmp);

#endif
