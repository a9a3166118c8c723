/* The pieces of the NeuroMask objective that act on the mask parameters w,
 * as forward/backward pairs over one image's plain arrays. */
#ifndef NM_EXPLAIN_MASK_TERMS_H
#define NM_EXPLAIN_MASK_TERMS_H

/* mean |w + L| over n; backward adds scale * d/dw. */
float sparsity_forward(const float *w, int n, float L);
void sparsity_backward(const float *w, int n, float L, float scale, float *dw);

/* mean over the 'valid' positions of (K conv w)^2, K the k x k Laplacian
 * (k*k-1 in the centre, -1 around). `r` receives K conv w ((h-k+1) x (wd-k+1)). */
float smoothness_forward(const float *w, int h, int wd, int k, float *r);
void smoothness_backward(const float *r, int h, int wd, int k, float scale, float *dw);

/* m = sigmoid((w - offset) / T); backward: dw += dm * m (1 - m) / T. */
void mask_sigmoid_forward(const float *w, int n, float offset, float T, float *m);
void mask_sigmoid_backward(const float *m, const float *dm, int n, float T, float *dw);

/* Gaussian interpolation from n cells to `out` samples (half-pixel centres):
 * wt[o * n + i] is proportional to exp(-(s_o - i)^2 / (2 sigma^2)), s_o the
 * sample's position in cell units, normalised over i. A smooth (C-infinity)
 * map of the cells at any output size: no cell edges. */
void gaussian_interp_weights(int n, int out, float sigma, float *wt);
/* dst (h x w) = Wy src Wx^T for src gh x gw, Wy h x gh and Wx w x gw from
 * gaussian_interp_weights; tmp holds gh x w. Backward adds Wy^T ddst Wx
 * into dsrc. */
void upsample_separable_forward(const float *src, int gh, int gw, const float *wy, const float *wx, float *tmp,
                                float *dst, int h, int w);
void upsample_separable_backward(const float *ddst, int h, int w, const float *wy, const float *wx, float *tmp,
                                 float *dsrc, int gh, int gw);

/* Bilinear (half-pixel centres, edges clamped) from gh x gw to h x w, and
 * its transpose (adds into dsrc). */
void upsample_bilinear_forward(const float *src, int gh, int gw, float *dst, int h, int w);
void upsample_bilinear_backward(const float *ddst, int h, int w, float *dsrc, int gh, int gw);

#endif
