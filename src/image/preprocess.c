/* Preprocessing: the geometry (central crop, resize, centre crop) and the
 * value transform of the usual training recipes.
 *
 * The resize reproduces PIL's Image.resize(BILINEAR), which torchvision 0.14
 * applies to PIL images: a separable triangle filter whose support widens
 * with the shrink factor (antialiasing), 22-bit fixed-point weights, the
 * horizontal pass first, and rounding to 8 bits after each pass. Resizing
 * therefore works on 8-bit values, so that a model sees the same pixels as
 * under its PyTorch training pipeline. Crops alone keep full precision. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---------------------------------------------------------------- recipes */

static void preprocess_identity(nm_preprocess *p)
{
    memset(p, 0, sizeof *p);
    p->scale = 1.0f;
    for (int i = 0; i < 3; i++) p->std[i] = 1.0f;
}

static void set3(float *v, float a, float b, float c)
{
    v[0] = a;
    v[1] = b;
    v[2] = c;
}

nm_status nm_preprocess_recipe(const char *name, nm_preprocess *p, nm_error *err)
{
    preprocess_identity(p);
    if (!name) return nm_fail(err, NM_ERR_ARG, "no preprocessing recipe given");
    if (!strcmp(name, "cifar") || !strcmp(name, "torchvision")) {
        set3(p->mean, 0.485f, 0.456f, 0.406f);
        set3(p->std, 0.229f, 0.224f, 0.225f);
        if (!strcmp(name, "torchvision")) {
            p->resize_short = 256;
            p->crop = 224;
        }
    } else if (!strcmp(name, "darknet")) {
        p->resize_short = 256;
        p->crop = 224;
    } else if (!strcmp(name, "inception")) {
        /* (v - 128) / 128 on 0..255 values v = 255 x */
        p->crop_fraction = 0.875f;
        p->scale = 255.0f / 128.0f;
        p->offset = -1.0f;
    } else if (!strcmp(name, "fashion")) {
        p->size = 28;
        set3(p->mean, 0.2860f, 0.2860f, 0.2860f);
        set3(p->std, 0.3530f, 0.3530f, 0.3530f);
    } else {
        return nm_fail(err, NM_ERR_ARG, "unknown preprocessing '%s' (known: cifar, torchvision, "
                       "darknet, inception, fashion)", name);
    }
    return NM_OK;
}

/* ------------------------------------------------------------ spec parser */

static int parse_float(const char *s, size_t n, float *out)
{
    char buf[64], *end;
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v)) return 0;
    *out = (float)v;
    return 1;
}

static int parse_int(const char *s, size_t n, int *out)
{
    float v;
    if (!parse_float(s, n, &v) || v != floorf(v) || v < 0 || v > 65535) return 0;
    *out = (int)v;
    return 1;
}

/* "a" or "a:b:c" (':' or '/' between values); one value applies to all channels. */
static int parse_triple(const char *s, size_t n, float *out)
{
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ':' || s[i] == '/') {
            if (k == 3 || !parse_float(s + start, i - start, &out[k])) return 0;
            k++;
            start = i + 1;
        }
    }
    if (k == 2) return 0;
    if (k == 1) out[1] = out[2] = out[0];
    return 1;
}

static int key_is(const char *key, size_t n, const char *name)
{
    return strlen(name) == n && !memcmp(key, name, n);
}

/* One "key=value" or recipe-name item. */
static nm_status parse_item(const char *spec, const char *item, size_t n, nm_preprocess *p,
                            nm_error *err)
{
    const char *eq = memchr(item, '=', n);
    if (!eq) {
        char name[32];
        if (n == 0 || n >= sizeof name) goto bad;
        memcpy(name, item, n);
        name[n] = 0;
        nm_preprocess base;
        if (nm_preprocess_recipe(name, &base, err) != NM_OK) {
            if (strcmp(spec, name) == 0) return err ? err->code : NM_ERR_ARG;
            return nm_fail(err, NM_ERR_ARG, "preprocessing '%s': unknown recipe '%s'", spec, name);
        }
        *p = base;
        return NM_OK;
    }
    size_t kn = (size_t)(eq - item);
    const char *v = eq + 1;
    size_t vn = n - kn - 1;
    int ok;
    if (key_is(item, kn, "resize")) ok = parse_int(v, vn, &p->resize_short);
    else if (key_is(item, kn, "crop")) ok = parse_int(v, vn, &p->crop);
    else if (key_is(item, kn, "size")) ok = parse_int(v, vn, &p->size);
    else if (key_is(item, kn, "central") || key_is(item, kn, "crop_fraction"))
        ok = parse_float(v, vn, &p->crop_fraction) && p->crop_fraction >= 0 && p->crop_fraction <= 1;
    else if (key_is(item, kn, "scale")) ok = parse_float(v, vn, &p->scale);
    else if (key_is(item, kn, "offset")) ok = parse_float(v, vn, &p->offset);
    else if (key_is(item, kn, "mean")) ok = parse_triple(v, vn, p->mean);
    else if (key_is(item, kn, "std"))
        ok = parse_triple(v, vn, p->std) && p->std[0] != 0 && p->std[1] != 0 && p->std[2] != 0;
    else
        return nm_fail(err, NM_ERR_ARG, "preprocessing '%s': unknown key '%.*s' (known: resize, "
                       "crop, central, size, scale, offset, mean, std)", spec, (int)kn, item);
    if (ok) return NM_OK;
bad:
    return nm_fail(err, NM_ERR_ARG, "preprocessing '%s': bad item '%.*s'", spec, (int)n, item);
}

nm_status nm_preprocess_parse(const char *spec, nm_preprocess *p, nm_error *err)
{
    preprocess_identity(p);
    if (!spec || !*spec) return nm_fail(err, NM_ERR_ARG, "empty preprocessing spec");
    const char *s = spec;
    for (;;) {
        while (*s == ' ') s++;
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        while (n > 0 && s[n - 1] == ' ') n--;
        nm_status st = parse_item(spec, s, n, p, err);
        if (st != NM_OK) return st;
        if (!end) break;
        s = end + 1;
    }
    return NM_OK;
}

/* ------------------------------------------------------------- geometry */

typedef struct u8_image {
    int w, h, c;
    unsigned char *px;
} u8_image;

#define RESAMPLE_BITS 22   /* PIL's fixed-point precision for 8-bit images */

/* Triangle-filter taps for resampling `in_size` samples to `out_size`, as
 * PIL computes them: first[i], count[i] and weights w[i*ksize + j]. */
typedef struct taps {
    int ksize;
    int *first, *count;
    int *w;
} taps;

static void taps_free(taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
    t->first = t->count = t->w = NULL;
}

static int taps_make(int in_size, int out_size, taps *t)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;   /* the triangle's support is 1 */
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc((size_t)ksize * sizeof *k);
    t->ksize = ksize;
    t->first = malloc((size_t)out_size * sizeof(int));
    t->count = malloc((size_t)out_size * sizeof(int));
    t->w = calloc((size_t)out_size * ksize, sizeof(int));
    if (!k || !t->first || !t->count || !t->w) {
        free(k);
        taps_free(t);
        return 0;
    }
    for (int o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale, sum = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        for (int j = 0; j < n; j++) {
            double x = fabs((j + lo - center + 0.5) / filterscale);
            k[j] = x < 1.0 ? 1.0 - x : 0.0;
            sum += k[j];
        }
        for (int j = 0; j < n; j++) {
            double v = (sum != 0.0 ? k[j] / sum : k[j]) * (1 << RESAMPLE_BITS);
            t->w[(size_t)o * ksize + j] = (int)(v < 0 ? v - 0.5 : v + 0.5);
        }
        t->first[o] = lo;
        t->count[o] = n;
    }
    free(k);
    return 1;
}

static unsigned char clip_fixed(int v)
{
    if (v <= 0) return 0;
    if (v >= (255 << RESAMPLE_BITS)) return 255;
    return (unsigned char)(v >> RESAMPLE_BITS);
}

/* The horizontal pass: each output pixel mixes a run of input columns. */
static void resample_rows(const u8_image *in, u8_image *out, const taps *t)
{
    int c = in->c;
    for (int y = 0; y < out->h; y++) {
        const unsigned char *src = in->px + (size_t)y * in->w * c;
        unsigned char *dst = out->px + (size_t)y * out->w * c;
        for (int x = 0; x < out->w; x++) {
            const int *w = t->w + (size_t)x * t->ksize;
            const unsigned char *s0 = src + (size_t)t->first[x] * c;
            for (int ch = 0; ch < c; ch++) {
                int acc = 1 << (RESAMPLE_BITS - 1);   /* rounds the final shift */
                for (int j = 0; j < t->count[x]; j++) acc += s0[j * c + ch] * w[j];
                dst[x * c + ch] = clip_fixed(acc);
            }
        }
    }
}

/* The vertical pass: each output row mixes a run of whole input rows. */
static void resample_columns(const u8_image *in, u8_image *out, const taps *t)
{
    size_t row = (size_t)in->w * in->c;
    for (int y = 0; y < out->h; y++) {
        const int *w = t->w + (size_t)y * t->ksize;
        const unsigned char *s0 = in->px + (size_t)t->first[y] * row;
        unsigned char *dst = out->px + (size_t)y * row;
        for (size_t i = 0; i < row; i++) {
            int acc = 1 << (RESAMPLE_BITS - 1);
            for (int j = 0; j < t->count[y]; j++) acc += s0[j * row + i] * w[j];
            dst[i] = clip_fixed(acc);
        }
    }
}

static int u8_alloc(u8_image *im, int w, int h, int c)
{
    im->w = w;
    im->h = h;
    im->c = c;
    im->px = malloc((size_t)w * h * c);
    return im->px != NULL;
}

static nm_status resize_u8(const u8_image *in, int w, int h, u8_image *out, nm_error *err)
{
    u8_image mid = { 0 };
    const u8_image *src = in;
    taps t = { 0 };
    if (w != in->w) {
        if (!taps_make(in->w, w, &t) || !u8_alloc(&mid, w, in->h, in->c)) goto oom;
        resample_rows(in, &mid, &t);
        taps_free(&t);
        src = &mid;
    }
    if (h != in->h) {
        if (!taps_make(in->h, h, &t) || !u8_alloc(out, w, h, in->c)) goto oom;
        resample_columns(src, out, &t);
        taps_free(&t);
        free(mid.px);
        return NM_OK;
    }
    if (src == &mid) {
        *out = mid;
        return NM_OK;
    }
    if (!u8_alloc(out, w, h, in->c)) goto oom;
    memcpy(out->px, in->px, (size_t)w * h * in->c);
    return NM_OK;
oom:
    taps_free(&t);
    free(mid.px);
    return nm_fail(err, NM_ERR_MEMORY, "out of memory resizing to %dx%d", w, h);
}

/* Crop (x0, y0, w, h) from in, zero outside (torchvision pads a crop larger
 * than the image). */
static nm_status crop_u8(const u8_image *in, int x0, int y0, int w, int h, u8_image *out,
                         nm_error *err)
{
    if (!u8_alloc(out, w, h, in->c)) return nm_fail(err, NM_ERR_MEMORY, "out of memory cropping");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < in->c; ch++) {
                int sx = x0 + x, sy = y0 + y;
                int inside = sx >= 0 && sy >= 0 && sx < in->w && sy < in->h;
                out->px[((size_t)y * w + x) * in->c + ch] =
                    inside ? in->px[((size_t)sy * in->w + sx) * in->c + ch] : 0;
            }
    return NM_OK;
}

/* Offset of a centred crop, as torchvision: int(round((size - crop) / 2.0))
 * with Python's round-half-even. */
static int centre_offset(int size, int crop)
{
    return (int)nearbyint((size - crop) / 2.0);
}

/* Replace *im by next (freeing the old pixels) when st is NM_OK. */
static nm_status step(u8_image *im, u8_image *next, nm_status st)
{
    if (st != NM_OK) return st;
    free(im->px);
    *im = *next;
    return NM_OK;
}

/* Every intermediate and final size stays within the image limits of
 * image_io.c, so that an extreme aspect ratio or a spec (which may come from
 * a model's metadata) cannot ask for gigabytes. Doubles: no int overflow. */
#define GEOMETRY_MAX_SIDE 65535
#define GEOMETRY_MAX_PIXELS ((double)(1 << 28))

static int size_ok(double w, double h)
{
    return w <= GEOMETRY_MAX_SIDE && h <= GEOMETRY_MAX_SIDE && w * h <= GEOMETRY_MAX_PIXELS;
}

/* The geometry on 8-bit values. */
static nm_status geometry_u8(const nm_preprocess *p, u8_image *im, int h, int w, nm_error *err)
{
    u8_image next = { 0 };
    nm_status st = NM_OK;
    if (p->crop_fraction > 0 && p->crop_fraction < 1) {
        /* TensorFlow's central_crop: the same margin removed from both sides. */
        int top = (int)((im->h - im->h * (double)p->crop_fraction) / 2);
        int left = (int)((im->w - im->w * (double)p->crop_fraction) / 2);
        if (im->h - 2 * top > 0 && im->w - 2 * left > 0)
            st = step(im, &next, crop_u8(im, left, top, im->w - 2 * left, im->h - 2 * top, &next, err));
    }
    if (st == NM_OK && p->resize_short > 0) {
        /* torchvision: the long side is int(short_target * long / short). */
        int rs = p->resize_short;
        double dw = im->w <= im->h ? rs : floor((double)rs * im->w / im->h);
        double dh = im->w <= im->h ? floor((double)rs * im->h / im->w) : rs;
        if (!size_ok(dw, dh))
            return nm_fail(err, NM_ERR_LIMIT, "preprocessing: resizing %dx%d to a short side of %d "
                           "gives %.0fx%.0f pixels, above the limit", im->w, im->h, rs, dw, dh);
        int nw = (int)dw, nh = (int)dh;
        if (nw < 1) nw = 1;
        if (nh < 1) nh = 1;
        if (nw != im->w || nh != im->h) st = step(im, &next, resize_u8(im, nw, nh, &next, err));
    }
    if (st == NM_OK && p->crop > 0 && (p->crop != im->w || p->crop != im->h))
        st = step(im, &next, crop_u8(im, centre_offset(im->w, p->crop), centre_offset(im->h, p->crop),
                                     p->crop, p->crop, &next, err));
    if (st == NM_OK && (w != im->w || h != im->h)) st = step(im, &next, resize_u8(im, w, h, &next, err));
    return st;
}

static unsigned char quantize(float x)
{
    if (!(x > 0.0f)) return 0;
    if (x >= 1.0f) return 255;
    return (unsigned char)(x * 255.0f + 0.5f);
}

/* Geometry that is crops only (or nothing) keeps the float values. */
static int needs_resampling(const nm_preprocess *p, const nm_image *in, int h, int w)
{
    int cw = in->w, ch = in->h;
    if (p->crop_fraction > 0 && p->crop_fraction < 1) {
        cw -= 2 * (int)((cw - cw * (double)p->crop_fraction) / 2);
        ch -= 2 * (int)((ch - ch * (double)p->crop_fraction) / 2);
    }
    if (p->resize_short > 0 && (cw < ch ? cw : ch) != p->resize_short) return 1;
    if (p->crop > 0) cw = ch = p->crop;
    return cw != w || ch != h;
}

static nm_status crops_float(const nm_preprocess *p, const nm_image *in, nm_image *out, nm_error *err)
{
    int x0 = 0, y0 = 0, cw = in->w, chh = in->h, c = in->c;
    if (p->crop_fraction > 0 && p->crop_fraction < 1) {
        x0 = (int)((cw - cw * (double)p->crop_fraction) / 2);
        y0 = (int)((chh - chh * (double)p->crop_fraction) / 2);
        cw -= 2 * x0;
        chh -= 2 * y0;
    }
    if (p->crop > 0) {
        x0 += centre_offset(cw, p->crop);
        y0 += centre_offset(chh, p->crop);
        cw = chh = p->crop;
    }
    out->data = malloc((size_t)cw * chh * c * sizeof(float));
    if (!out->data) return nm_fail(err, NM_ERR_MEMORY, "out of memory cropping");
    out->w = cw;
    out->h = chh;
    out->c = c;
    for (int y = 0; y < chh; y++)
        for (int x = 0; x < cw; x++)
            for (int k = 0; k < c; k++) {
                int sx = x0 + x, sy = y0 + y;
                int inside = sx >= 0 && sy >= 0 && sx < in->w && sy < in->h;
                out->data[((size_t)y * cw + x) * c + k] =
                    inside ? in->data[((size_t)sy * in->w + sx) * c + k] : 0.0f;
            }
    return NM_OK;
}

nm_status nm_preprocess_geometry(const nm_preprocess *p, const nm_image *in, int h, int w,
                                 nm_image *out, nm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!in || !in->data || in->w <= 0 || in->h <= 0 || (in->c != 1 && in->c != 3))
        return nm_fail(err, NM_ERR_ARG, "preprocessing: bad input image");
    if (h <= 0 || w <= 0) {
        h = w = p->size > 0 ? p->size : 0;
        if (h <= 0 && p->crop > 0) h = w = p->crop;
        if (h <= 0) return nm_fail(err, NM_ERR_ARG, "preprocessing: no output size");
    }
    if (!size_ok(w, h) || p->resize_short > GEOMETRY_MAX_SIDE || !size_ok(p->crop, p->crop))
        return nm_fail(err, NM_ERR_LIMIT, "preprocessing: output size %dx%d too large (or crop %d, "
                       "resize %d)", w, h, p->crop, p->resize_short);
    if (!needs_resampling(p, in, h, w)) return crops_float(p, in, out, err);

    u8_image im;
    size_t n = (size_t)in->w * in->h * in->c;
    if (!u8_alloc(&im, in->w, in->h, in->c)) return nm_fail(err, NM_ERR_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) im.px[i] = quantize(in->data[i]);
    nm_status st = geometry_u8(p, &im, h, w, err);
    if (st == NM_OK) {
        out->data = malloc((size_t)w * h * in->c * sizeof(float));
        if (!out->data) st = nm_fail(err, NM_ERR_MEMORY, "out of memory");
    }
    if (st == NM_OK) {
        out->w = w;
        out->h = h;
        out->c = in->c;
        for (size_t i = 0; i < (size_t)w * h * in->c; i++) out->data[i] = (float)(im.px[i] / 255.0);
    }
    free(im.px);
    return st;
}

/* ---------------------------------------------------------------- values */

void nm_preprocess_normalize(const nm_preprocess *p, const nm_image *img, int c, float *nchw)
{
    size_t plane = (size_t)img->w * img->h;
    for (int k = 0; k < c; k++) {
        float scale = p->scale, offset = p->offset, mean = p->mean[k < 3 ? k : 2];
        float std = p->std[k < 3 ? k : 2];
        float *dst = nchw + (size_t)k * plane;
        for (size_t i = 0; i < plane; i++) {
            const float *px = img->data + i * img->c;
            float x;
            if (img->c == c) x = px[k];
            else if (img->c == 1) x = px[0];                                    /* grey -> RGB */
            else x = 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];          /* RGB -> grey */
            dst[i] = (x * scale + offset - mean) / std;   /* divide, as torchvision */
        }
    }
}

/* ----------------------------------------------------------------- unmap */

/* The rectangle of the original image (x, y, width, height, in original
 * pixels) that the geometry turns into the model's input: the same steps as
 * geometry_u8, tracked as coordinates instead of pixels. */
static void kept_region(const nm_preprocess *p, int w0, int h0, double r[4])
{
    double x0 = 0, y0 = 0, sx = 1, sy = 1;
    int iw = w0, ih = h0;
    if (p->crop_fraction > 0 && p->crop_fraction < 1) {
        int top = (int)((ih - ih * (double)p->crop_fraction) / 2);
        int left = (int)((iw - iw * (double)p->crop_fraction) / 2);
        if (ih - 2 * top > 0 && iw - 2 * left > 0) {
            x0 += left, y0 += top;
            iw -= 2 * left, ih -= 2 * top;
        }
    }
    if (p->resize_short > 0) {
        int rs = p->resize_short;
        int nw = iw <= ih ? rs : (int)fmin((double)rs * iw / ih, INT_MAX);   /* no overflow */
        int nh = iw <= ih ? (int)fmin((double)rs * ih / iw, INT_MAX) : rs;
        nw = nw < 1 ? 1 : nw;
        nh = nh < 1 ? 1 : nh;
        sx = (double)nw / iw, sy = (double)nh / ih;
        iw = nw, ih = nh;
    }
    if (p->crop > 0 && (p->crop != iw || p->crop != ih)) {
        x0 += centre_offset(iw, p->crop) / sx;
        y0 += centre_offset(ih, p->crop) / sy;
        iw = ih = p->crop;
    }
    r[0] = x0, r[1] = y0, r[2] = iw / sx, r[3] = ih / sy;
}

/* Bilinear sample of map (h x w) at continuous pixel coordinates (u, v). */
static float sample_bilinear(const float *map, int h, int w, double u, double v)
{
    u = u < 0 ? 0 : (u > w - 1 ? w - 1 : u);
    v = v < 0 ? 0 : (v > h - 1 ? h - 1 : v);
    int x = (int)u, y = (int)v;
    int x1 = x + 1 < w ? x + 1 : x, y1 = y + 1 < h ? y + 1 : y;
    double fx = u - x, fy = v - y;
    double top = map[y * w + x] * (1 - fx) + map[y * w + x1] * fx;
    double bot = map[y1 * w + x] * (1 - fx) + map[y1 * w + x1] * fx;
    return (float)(top * (1 - fy) + bot * fy);
}

void nm_preprocess_unmap(const nm_preprocess *p, const float *map, int h, int w, int h0, int w0,
                         float *out)
{
    double r[4];
    kept_region(p, w0, h0, r);
    for (int y = 0; y < h0; y++)
        for (int x = 0; x < w0; x++) {
            double cx = x + 0.5 - r[0], cy = y + 0.5 - r[1];
            int inside = cx >= 0 && cy >= 0 && cx < r[2] && cy < r[3];
            out[(size_t)y * w0 + x] =
                inside ? sample_bilinear(map, h, w, cx / r[2] * w - 0.5, cy / r[3] * h - 0.5) : 0.f;
        }
}
