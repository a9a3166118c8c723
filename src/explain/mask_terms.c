#include "explain/mask_terms.h"

#include <math.h>


float sparsity_forward(const float *w, int n, float L)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += fabsf(w[i] + L);
    return (float)(s / n);
}

void sparsity_backward(const float *w, int n, float L, float scale, float *dw)
{
    float g = scale / (float)n;
    for (int i = 0; i < n; i++) {
        float v = w[i] + L;
        dw[i] += v > 0 ? g : (v < 0 ? -g : 0.f);
    }
}

/* K conv w at the top-left corner (i, j) of a k x k window. */
static float laplacian_at(const float *w, int wd, int k, int i, int j)
{
    float sum = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) sum += w[(i + a) * wd + j + b];
    float centre = w[(i + k / 2) * wd + j + k / 2];
    return (float)(k * k) * centre - sum;
}

float smoothness_forward(const float *w, int h, int wd, int k, float *r)
{
    int oh = h - k + 1, ow = wd - k + 1;
    if (oh <= 0 || ow <= 0) return 0.f;
    double s = 0;
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            float v = laplacian_at(w, wd, k, i, j);
            r[i * ow + j] = v;
            s += (double)v * v;
        }
    return (float)(s / ((double)oh * ow));
}

void smoothness_backward(const float *r, int h, int wd, int k, float scale, float *dw)
{
    int oh = h - k + 1, ow = wd - k + 1;
    if (oh <= 0 || ow <= 0) return;
    float g = 2.f * scale / ((float)oh * (float)ow);
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            float d = g * r[i * ow + j];
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++) dw[(i + a) * wd + j + b] -= d;
            dw[(i + k / 2) * wd + j + k / 2] += d * (float)(k * k);
        }
}

void mask_sigmoid_forward(const float *w, int n, float offset, float T, float *m)
{
    for (int i = 0; i < n; i++) m[i] = 1.f / (1.f + expf(-(w[i] - offset) / T));
}

void mask_sigmoid_backward(const float *m, const float *dm, int n, float T, float *dw)
{
    for (int i = 0; i < n; i++) dw[i] += dm[i] * m[i] * (1.f - m[i]) / T;
}

/* Source coordinate and weight of output index o for a resize n -> out. */
static void tap(int o, int n, int out, int *i0, int *i1, float *f)
{
    float s = ((float)o + 0.5f) * (float)n / (float)out - 0.5f;
    if (s < 0) s = 0;
    int a = (int)s;
    if (a > n - 1) a = n - 1;
    *i0 = a;
    *i1 = a + 1 < n ? a + 1 : n - 1;
    *f = s - (float)a;
}

void upsample_bilinear_forward(const float *src, int gh, int gw, float *dst, int h, int w)
{
    for (int y = 0; y < h; y++) {
        int y0, y1;
        float fy;
        tap(y, gh, h, &y0, &y1, &fy);
        for (int x = 0; x < w; x++) {
            int x0, x1;
            float fx;
            tap(x, gw, w, &x0, &x1, &fx);
            float top = src[y0 * gw + x0] * (1 - fx) + src[y0 * gw + x1] * fx;
            float bot = src[y1 * gw + x0] * (1 - fx) + src[y1 * gw + x1] * fx;
            dst[y * w + x] = top * (1 - fy) + bot * fy;
        }
    }
}

void upsample_bilinear_backward(const float *ddst, int h, int w, float *dsrc, int gh, int gw)
{
    for (int y = 0; y < h; y++) {
        int y0, y1;
        float fy;
        tap(y, gh, h, &y0, &y1, &fy);
        for (int x = 0; x < w; x++) {
            int x0, x1;
            float fx;
            tap(x, gw, w, &x0, &x1, &fx);
            float d = ddst[y * w + x];
            dsrc[y0 * gw + x0] += d * (1 - fy) * (1 - fx);
            dsrc[y0 * gw + x1] += d * (1 - fy) * fx;
            dsrc[y1 * gw + x0] += d * fy * (1 - fx);
            dsrc[y1 * gw + x1] += d * fy * fx;
        }
    }
}

void gaussian_interp_weights(int n, int out, float sigma, float *wt)
{
    for (int o = 0; o < out; o++) {
        double s = ((double)o + 0.5) * n / out - 0.5, sum = 0;
        for (int i = 0; i < n; i++) sum += wt[o * n + i] = (float)exp(-(s - i) * (s - i) / (2.0 * sigma * sigma));
        for (int i = 0; i < n; i++) wt[o * n + i] = (float)(wt[o * n + i] / sum);
    }
}

void upsample_separable_forward(const float *src, int gh, int gw, const float *wy, const float *wx, float *tmp,
                                float *dst, int h, int w)
{
    for (int i = 0; i < gh; i++)
        for (int x = 0; x < w; x++) {
            float v = 0;
            for (int j = 0; j < gw; j++) v += wx[x * gw + j] * src[i * gw + j];
            tmp[i * w + x] = v;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = 0;
            for (int i = 0; i < gh; i++) v += wy[y * gh + i] * tmp[i * w + x];
            dst[y * w + x] = v;
        }
}

void upsample_separable_backward(const float *ddst, int h, int w, const float *wy, const float *wx, float *tmp,
                                 float *dsrc, int gh, int gw)
{
    for (int i = 0; i < gh; i++)
        for (int x = 0; x < w; x++) {
            float v = 0;
            for (int y = 0; y < h; y++) v += wy[y * gh + i] * ddst[y * w + x];
            tmp[i * w + x] = v;
        }
    for (int i = 0; i < gh; i++)
        for (int j = 0; j < gw; j++) {
            float v = 0;
            for (int x = 0; x < w; x++) v += wx[x * gw + j] * tmp[i * w + x];
            dsrc[i * gw + j] += v;
        }
}
