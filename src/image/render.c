/* Colour maps, overlays and the captioned panel written by `explain`. */
#include "image/render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/font.h"

/* ------------------------------------------------------------ colour maps */

static float clamp01(float v)
{
    if (!(v > 0.0f)) return 0.0f;   /* also NaN */
    return v < 1.0f ? v : 1.0f;
}

/* Google's Turbo through its published degree-5 polynomial fit (Mikhailov,
 * 2019); within a few percent of the table, which is what a heat map needs. */
static void turbo(float x, float rgb[3])
{
    static const float k[3][6] = {
        { 0.13572138f, 4.61539260f, -42.66032258f, 132.13108234f, -152.94239396f, 59.28637943f },
        { 0.09140261f, 2.19418839f, 4.84296658f, -14.18503333f, 4.27729857f, 2.82956604f },
        { 0.10667330f, 12.64194608f, -60.58204836f, 110.36276771f, -89.90310912f, 27.34824973f },
    };
    for (int c = 0; c < 3; c++) {
        float v = k[c][5];
        for (int i = 4; i >= 0; i--) v = v * x + k[c][i];   /* Horner */
        rgb[c] = clamp01(v);
    }
}

/* 17 evenly spaced samples (entries 0, 16, ..., 240, 255) of matplotlib's
 * 256-entry tables, interpolated linearly: within 0.025 of the full table. */
#define ANCHORS 17
static const float viridis_anchors[ANCHORS][3] = {
    {0.2670f, 0.0049f, 0.3294f}, {0.2823f, 0.0950f, 0.4173f}, {0.2788f, 0.1755f, 0.4834f},
    {0.2590f, 0.2515f, 0.5247f}, {0.2297f, 0.3224f, 0.5457f}, {0.1994f, 0.3876f, 0.5546f},
    {0.1727f, 0.4488f, 0.5579f}, {0.1490f, 0.5081f, 0.5573f}, {0.1276f, 0.5669f, 0.5506f},
    {0.1201f, 0.6222f, 0.5349f}, {0.1539f, 0.6802f, 0.5042f}, {0.2394f, 0.7356f, 0.4557f},
    {0.3607f, 0.7860f, 0.3878f}, {0.5063f, 0.8288f, 0.3004f}, {0.6681f, 0.8620f, 0.1963f},
    {0.8353f, 0.8860f, 0.1026f}, {0.9932f, 0.9062f, 0.1439f},
};
static const float inferno_anchors[ANCHORS][3] = {
    {0.0015f, 0.0005f, 0.0139f}, {0.0423f, 0.0281f, 0.1411f}, {0.1293f, 0.0473f, 0.2908f},
    {0.2383f, 0.0366f, 0.3964f}, {0.3415f, 0.0623f, 0.4294f}, {0.4412f, 0.0993f, 0.4316f},
    {0.5409f, 0.1347f, 0.4151f}, {0.6401f, 0.1714f, 0.3811f}, {0.7357f, 0.2159f, 0.3302f},
    {0.8173f, 0.2710f, 0.2704f}, {0.8903f, 0.3480f, 0.1983f}, {0.9443f, 0.4428f, 0.1204f},
    {0.9771f, 0.5508f, 0.0391f}, {0.9879f, 0.6677f, 0.0583f}, {0.9761f, 0.7900f, 0.1960f},
    {0.9487f, 0.9105f, 0.3953f}, {0.9884f, 0.9984f, 0.6449f},
};

static void interpolate(const float (*anchors)[3], int n_anchors, float x, float rgb[3])
{
    float pos = x * (float)(n_anchors - 1);
    int i = (int)pos;
    if (i >= n_anchors - 1) i = n_anchors - 2;
    float t = pos - (float)i;
    for (int c = 0; c < 3; c++) rgb[c] = (1.0f - t) * anchors[i][c] + t * anchors[i + 1][c];
}

/* ColorBrewer's RdBu (11 classes), reversed so that negative is blue, with
 * its centre made pure white: a value of 0 draws as no colour at all. */
#define DIVERGING_ANCHORS 11
static const float diverging_anchors[DIVERGING_ANCHORS][3] = {
    {0.0196f, 0.1882f, 0.3804f}, {0.1294f, 0.4000f, 0.6745f}, {0.2627f, 0.5765f, 0.7647f},
    {0.5725f, 0.7725f, 0.8706f}, {0.8196f, 0.8980f, 0.9412f}, {1.0000f, 1.0000f, 1.0000f},
    {0.9922f, 0.8588f, 0.7804f}, {0.9569f, 0.6471f, 0.5098f}, {0.8392f, 0.3765f, 0.3020f},
    {0.6980f, 0.0941f, 0.1686f}, {0.4039f, 0.0000f, 0.1216f},
};

static int is_grey(const char *name)
{
    return strcmp(name, "gray") == 0 || strcmp(name, "grey") == 0;
}

int nm_colormap_known(const char *name)
{
    return !name || strcmp(name, "turbo") == 0 || strcmp(name, "viridis") == 0 ||
           strcmp(name, "inferno") == 0 || strcmp(name, "diverging") == 0 || is_grey(name);
}

void nm_colormap(const char *name, float v, float rgb[3])
{
    float x = clamp01(v);
    if (name && strcmp(name, "viridis") == 0) interpolate(viridis_anchors, ANCHORS, x, rgb);
    else if (name && strcmp(name, "inferno") == 0) interpolate(inferno_anchors, ANCHORS, x, rgb);
    else if (name && strcmp(name, "diverging") == 0) interpolate(diverging_anchors, DIVERGING_ANCHORS, x, rgb);
    else if (name && is_grey(name)) rgb[0] = rgb[1] = rgb[2] = x;
    else turbo(x, rgb);
}

/* ------------------------------------------------------------- map scales */

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The NM_MAP_CLIP_PERCENTILE-th percentile of |v| over the finite values,
 * or their maximum when that is 0 or memory is short. */
static float abs_percentile(const float *map, int n)
{
    float *a = malloc(sizeof(float) * (size_t)n), amax = 0.0f;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(map[i])) {
            float v = fabsf(map[i]);
            amax = v > amax ? v : amax;
            if (a) a[m++] = v;
        }
    float p = amax;
    if (a && m > 0) {
        qsort(a, (size_t)m, sizeof *a, compare_floats);
        size_t rank = (size_t)ceil((double)m * NM_MAP_CLIP_PERCENTILE / 100.0);   /* nearest rank */
        float q = a[rank > 0 ? rank - 1 : 0];
        if (q > 0.0f) p = q;
    }
    free(a);
    return p;
}

nm_map_scale nm_map_scale_of(const float *map, int n, nm_map_kind kind)
{
    nm_map_scale s = {.kind = kind, .lo = kind == NM_MAP_SIGNED ? -1.0f : 0.0f, .hi = 1.0f,
                      .cmap = kind == NM_MAP_SIGNED ? "diverging" : "inferno"};
    if (kind == NM_MAP_MASK || !map || n <= 0) return s;   /* no map: the kind's colours, a unit range */
    float lo = INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(map[i]) && map[i] < lo) lo = map[i];
    float a = abs_percentile(map, n);
    if (kind == NM_MAP_SIGNED) {
        if (!(a > 0.0f)) a = 1.0f;   /* all 0: white, as no evidence */
        s.lo = -a, s.hi = a;
    } else if (isfinite(lo)) {
        s.lo = lo < 0.0f ? lo : 0.0f, s.hi = a;
    }
    if (!(s.hi > s.lo)) s.hi = s.lo + 1.0f;   /* a constant map: one colour, no division by 0 */
    return s;
}

float nm_map_scale_unit(const nm_map_scale *s, float v)
{
    return clamp01((v - s->lo) / (s->hi - s->lo));
}

/* ----------------------------------------------------------------- images */

static nm_status image_new(int w, int h, int c, nm_image *out, nm_error *err)
{
    size_t n;
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0) return nm_fail(err, NM_ERR_ARG, "render: image of %dx%d pixels", w, h);
    if (!nm_mul_size((size_t)w, (size_t)h, &n) || !nm_mul_size(n, (size_t)c * sizeof(float), &n))
        return nm_fail(err, NM_ERR_LIMIT, "render: image of %dx%d pixels is too large", w, h);
    out->data = malloc(n);
    if (!out->data) return nm_fail(err, NM_ERR_MEMORY, "render: out of memory for a %dx%d image", w, h);
    out->w = w;
    out->h = h;
    out->c = c;
    return NM_OK;
}

static nm_status check_inputs(const char *what, const nm_image *img, const float *mask, nm_error *err)
{
    if (!img || !img->data || img->w <= 0 || img->h <= 0 || (img->c != 1 && img->c != 3))
        return nm_fail(err, NM_ERR_ARG, "%s: needs a 1- or 3-channel image", what);
    if (!mask) return nm_fail(err, NM_ERR_ARG, "%s: no mask", what);
    return NM_OK;
}

/* Pixel i of img as RGB. */
static void pixel_rgb(const nm_image *img, size_t i, float rgb[3])
{
    const float *p = img->data + i * img->c;
    for (int c = 0; c < 3; c++) rgb[c] = clamp01(p[img->c == 3 ? c : 0]);
}

nm_status nm_render_map(const float *map, int w, int h, const nm_map_scale *s, nm_image *out,
                        nm_error *err)
{
    if (!map || !s) return nm_fail(err, NM_ERR_ARG, "nm_render_map: no map or no scale");
    int colour = s->kind == NM_MAP_SIGNED;
    nm_status st = image_new(w, h, colour ? 3 : 1, out, err);
    if (st != NM_OK) return st;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        float u = nm_map_scale_unit(s, map[i]);
        if (colour) nm_colormap(s->cmap, u, out->data + 3 * i);
        else out->data[i] = u;
    }
    return NM_OK;
}

nm_status nm_render_overlay(const nm_image *img, const float *map, const nm_map_scale *s, float alpha,
                            nm_image *out, nm_error *err)
{
    nm_status st = check_inputs("nm_render_overlay", img, map, err);
    if (st != NM_OK) return st;
    if (!s) return nm_fail(err, NM_ERR_ARG, "nm_render_overlay: no scale");
    if (!(alpha >= 0.0f && alpha <= 1.0f))
        return nm_fail(err, NM_ERR_ARG, "nm_render_overlay: alpha %g is not in [0,1]", alpha);
    st = image_new(img->w, img->h, 3, out, err);
    if (st != NM_OK) return st;
    for (size_t i = 0; i < (size_t)img->w * img->h; i++) {
        float base[3], heat[3], u = nm_map_scale_unit(s, map[i]);
        float a = s->kind == NM_MAP_SIGNED ? alpha * fabsf(2.0f * u - 1.0f) : alpha;
        pixel_rgb(img, i, base);
        nm_colormap(s->cmap, u, heat);
        for (int c = 0; c < 3; c++) out->data[3 * i + c] = (1.0f - a) * base[c] + a * heat[c];
    }
    return NM_OK;
}

/* ------------------------------------------------------------------ panel */

#define PANEL_MARGIN 8
#define PANEL_TITLE_GAP 4     /* between a title and its tile */
#define PANEL_CAPTION_GAP 10  /* between the tiles and the caption */
#define PANEL_TEXT_SCALE 2
#define PANEL_MAX_TEXT_W 1600 /* captions wider than this (and the tiles) are clipped */
#define PANEL_TILES 4
#define PANEL_MAX_TILE 4096   /* side of one tile; keeps the panel a sane PNG */
#define PANEL_MAX_LINES 200

static const float black[3] = { 0.0f, 0.0f, 0.0f };

/* src (1 or 3 channels) into the RGB dst at (x0, y0), each pixel s x s. */
static void blit_scaled(nm_image *dst, int x0, int y0, const nm_image *src, int s)
{
    for (int y = 0; y < src->h * s; y++) {
        float *row = dst->data + ((size_t)(y0 + y) * dst->w + x0) * 3;
        for (int x = 0; x < src->w * s; x++)
            pixel_rgb(src, (size_t)(y / s) * src->w + x / s, row + 3 * x);
    }
}

/* The tiles at native size: image, map, overlay, and for masks the masked
 * image; *n_tiles says how many. */
static nm_status make_tiles(const nm_image *img, const float *map, const nm_map_scale *s,
                            nm_image tiles[PANEL_TILES], int *n_tiles, nm_error *err)
{
    int n = *n_tiles = s->kind == NM_MAP_MASK ? 4 : 3;
    memset(tiles, 0, PANEL_TILES * sizeof *tiles);
    nm_status st = image_new(img->w, img->h, img->c, &tiles[0], err);
    if (st == NM_OK) {
        memcpy(tiles[0].data, img->data, (size_t)img->w * img->h * img->c * sizeof(float));
        st = image_new(img->w, img->h, 3, &tiles[1], err);
    }
    if (st == NM_OK) {
        for (size_t i = 0; i < (size_t)img->w * img->h; i++)
            nm_colormap(s->cmap, nm_map_scale_unit(s, map[i]), tiles[1].data + 3 * i);
        st = nm_render_overlay(img, map, s, 0.5f, &tiles[2], err);
    }
    if (st == NM_OK && n == 4) st = image_new(img->w, img->h, img->c, &tiles[3], err);
    if (st != NM_OK) {
        for (int t = 0; t < PANEL_TILES; t++) nm_image_free(&tiles[t]);
        return st;
    }
    for (size_t i = 0; n == 4 && i < (size_t)img->w * img->h; i++)
        for (int c = 0; c < img->c; c++)
            tiles[3].data[i * img->c + c] = clamp01(img->data[i * img->c + c]) * clamp01(map[i]);
    return NM_OK;
}

/* The colour bar's labels, top to bottom: hi, the middle (0 for a signed map), lo. */
static void bar_labels(const nm_map_scale *s, char labels[3][32])
{
    snprintf(labels[0], 32, "%s%.3g", s->kind == NM_MAP_SIGNED ? "+" : "", (double)s->hi);
    snprintf(labels[1], 32, "%.3g", s->kind == NM_MAP_SIGNED ? 0.0 : 0.5 * ((double)s->lo + (double)s->hi));
    snprintf(labels[2], 32, "%.3g", (double)s->lo);
}

/* The colour bar at (x, y), `h` tall, top = hi, with its labels to its right. */
static void draw_bar(nm_image *out, int x, int y, int h, const nm_map_scale *s, int text_scale)
{
    char labels[3][32];
    bar_labels(s, labels);
    for (int row = 0; row < h; row++) {
        float rgb[3];
        nm_colormap(s->cmap, 1.0f - (float)row / (float)(h > 1 ? h - 1 : 1), rgb);
        for (int col = 0; col < NM_PANEL_BAR_W; col++) {
            float *p = out->data + ((size_t)(y + row) * out->w + x + col) * 3;
            int edge = col == 0 || col == NM_PANEL_BAR_W - 1 || row == 0 || row == h - 1;
            for (int c = 0; c < 3; c++) p[c] = edge ? black[c] : rgb[c];
        }
    }
    int th = NM_FONT_HEIGHT * text_scale, lx = x + NM_PANEL_BAR_W + PANEL_TITLE_GAP;
    int ys[3] = {y, y + (h - th) / 2, y + h - th};
    for (int i = 0; i < 3; i++) nm_font_draw(out, lx, ys[i], labels[i], text_scale, black);
}

nm_status nm_render_panel(const nm_image *img, const float *map, const nm_map_scale *s,
                          const char *const *lines, int n_lines, nm_image *out, nm_error *err)
{
    const char *titles[PANEL_TILES] = { "image", "map", "overlay", "masked" };
    nm_status st = check_inputs("nm_render_panel", img, map, err);
    if (st != NM_OK) return st;
    if (!s) return nm_fail(err, NM_ERR_ARG, "nm_render_panel: no scale");
    if (s->kind == NM_MAP_MASK) titles[1] = "mask";
    if (n_lines < 0 || (n_lines > 0 && !lines))
        return nm_fail(err, NM_ERR_ARG, "nm_render_panel: bad caption lines");
    if (n_lines > PANEL_MAX_LINES)
        return nm_fail(err, NM_ERR_LIMIT, "nm_render_panel: %d caption lines (at most %d)", n_lines,
                       PANEL_MAX_LINES);

    int scale = (NM_PANEL_MIN_TILE + img->h - 1) / img->h;
    if (img->w > PANEL_MAX_TILE / scale || img->h > PANEL_MAX_TILE / scale)
        return nm_fail(err, NM_ERR_LIMIT, "nm_render_panel: image of %dx%d pixels is too large "
                       "for a panel", img->w, img->h);
    nm_image tiles[PANEL_TILES];
    int n_tiles = 0;
    st = make_tiles(img, map, s, tiles, &n_tiles, err);
    if (st != NM_OK) return st;
    int tile_w = img->w * scale, tile_h = img->h * scale;
    int title_scale = tile_w >= nm_font_width("overlay", PANEL_TEXT_SCALE) ? PANEL_TEXT_SCALE : 1;
    char labels[3][32];
    bar_labels(s, labels);
    int label_w = 0;
    for (int i = 0; i < 3; i++)
        if (nm_font_width(labels[i], PANEL_TEXT_SCALE) > label_w) label_w = nm_font_width(labels[i], PANEL_TEXT_SCALE);
    int bar_block_w = NM_PANEL_BAR_W + PANEL_TITLE_GAP + label_w;
    int tiles_w = n_tiles * tile_w + n_tiles * NM_PANEL_GAP + bar_block_w;
    int text_w = 0;
    for (int i = 0; i < n_lines; i++) {
        int lw = nm_font_width(lines[i] ? lines[i] : "", PANEL_TEXT_SCALE);
        if (lw > text_w) text_w = lw;
    }
    if (text_w > PANEL_MAX_TEXT_W) text_w = PANEL_MAX_TEXT_W;
    int content_w = tiles_w > text_w ? tiles_w : text_w;
    int line_h = (NM_FONT_HEIGHT + 2) * PANEL_TEXT_SCALE;
    int tiles_y = PANEL_MARGIN + NM_FONT_HEIGHT * title_scale + PANEL_TITLE_GAP;
    int caption_y = tiles_y + tile_h + PANEL_CAPTION_GAP;
    int panel_h = (n_lines > 0 ? caption_y + n_lines * line_h : tiles_y + tile_h) + PANEL_MARGIN;

    st = image_new(content_w + 2 * PANEL_MARGIN, panel_h, 3, out, err);
    if (st == NM_OK) {
        for (size_t i = 0; i < (size_t)out->w * out->h * 3; i++) out->data[i] = 1.0f;
        int x0 = PANEL_MARGIN + (content_w - tiles_w) / 2;
        for (int t = 0; t < n_tiles; t++) {
            int x = x0 + t * (tile_w + NM_PANEL_GAP);
            int tw = nm_font_width(titles[t], title_scale);
            nm_font_draw(out, x + (tile_w - tw) / 2, PANEL_MARGIN, titles[t], title_scale, black);
            blit_scaled(out, x, tiles_y, &tiles[t], scale);
        }
        int text_scale = tile_h >= 3 * NM_FONT_HEIGHT * PANEL_TEXT_SCALE ? PANEL_TEXT_SCALE : 1;
        draw_bar(out, x0 + n_tiles * (tile_w + NM_PANEL_GAP), tiles_y, tile_h, s, text_scale);
        for (int i = 0; i < n_lines; i++)
            if (lines[i])
                nm_font_draw(out, PANEL_MARGIN, caption_y + i * line_h, lines[i], PANEL_TEXT_SCALE, black);
    }
    for (int t = 0; t < PANEL_TILES; t++) nm_image_free(&tiles[t]);
    return st;
}
