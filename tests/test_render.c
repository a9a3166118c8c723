/* Output writers of `explain`: colour maps, mask/overlay/panel images, the
 * bitmap font, atomic files and the .npy header. The panels are also written
 * as PNGs into the build folder for a person to look at. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "image/font.h"
#include "image/npy.h"
#include "image/render.h"
#include "testutil.h"

static float luma(const float rgb[3])
{
    return 0.2126f * rgb[0] + 0.7152f * rgb[1] + 0.0722f * rgb[2];
}

static void test_colormaps(void)
{
    float lo[3], mid[3], hi[3], a[3], b[3];
    nm_colormap("turbo", 0.0f, lo);
    nm_colormap("turbo", 0.5f, mid);
    nm_colormap("turbo", 1.0f, hi);
    nm_check(lo[2] > lo[1] && luma(lo) < 0.15f, "turbo(0) is dark blue-violet (%.2f %.2f %.2f)", lo[0], lo[1], lo[2]);
    nm_check(hi[0] > hi[1] && hi[0] > hi[2] && luma(hi) < 0.3f, "turbo(1) is dark red (%.2f %.2f %.2f)",
             hi[0], hi[1], hi[2]);
    nm_check(luma(mid) > 0.6f, "turbo(0.5) is bright (%.2f)", luma(mid));
    int in_range = 1;
    for (int i = 0; i <= 1000; i++) {
        nm_colormap(NULL, i / 1000.0f, a);
        for (int c = 0; c < 3; c++) in_range &= a[c] >= 0.0f && a[c] <= 1.0f;
    }
    nm_check(in_range, "turbo stays in [0,1]");
    nm_colormap(NULL, 0.3f, a);
    nm_colormap("turbo", 0.3f, b);
    nm_check(memcmp(a, b, sizeof a) == 0, "NULL map is turbo");
    nm_colormap("turbo", 2.0f, a);
    nm_check(memcmp(a, hi, sizeof a) == 0, "values above 1 clamp");
    nm_colormap("turbo", NAN, a);
    nm_check(memcmp(a, lo, sizeof a) == 0, "NaN reads as 0");

    static const char *const monotone[] = { "viridis", "inferno", "gray" };
    for (int m = 0; m < 3; m++) {
        int rising = 1;
        float prev = -1.0f;
        for (int i = 0; i <= 64; i++) {
            nm_colormap(monotone[m], i / 64.0f, a);
            rising &= luma(a) > prev;
            prev = luma(a);
        }
        nm_check(rising, "%s lightness rises monotonically", monotone[m]);
    }
    nm_colormap("viridis", 0.0f, a);
    nm_colormap("viridis", 1.0f, b);
    nm_check(fabsf(a[0] - 0.267f) < 0.01f && fabsf(a[2] - 0.329f) < 0.01f && b[0] > 0.95f && b[2] < 0.2f,
             "viridis endpoints: purple to yellow");
    nm_colormap("inferno", 0.0f, a);
    nm_colormap("inferno", 1.0f, b);
    nm_check(luma(a) < 0.01f && b[0] > 0.95f && b[1] > 0.95f, "inferno endpoints: black to pale yellow");
    nm_colormap("grey", 0.25f, a);
    nm_check(a[0] == 0.25f && a[1] == 0.25f && a[2] == 0.25f, "grey is the identity");
    nm_check(nm_colormap_known("turbo") && nm_colormap_known("viridis") && nm_colormap_known(NULL) &&
             !nm_colormap_known("jet") && !nm_colormap_known(""), "nm_colormap_known");
}

static int count_ink(const nm_image *img, float background)
{
    int n = 0;
    for (int i = 0; i < img->w * img->h * img->c; i += img->c) n += img->data[i] != background;
    return n;
}

static void test_font(void)
{
    static const float white[3] = { 1, 1, 1 };
    nm_check(nm_font_width("", 2) == 0, "empty text has no width");
    nm_check(nm_font_width("abc", 1) == 17, "width of 3 chars at scale 1: %d", nm_font_width("abc", 1));
    nm_check(nm_font_width("abc", 2) == 34, "width of 3 chars at scale 2: %d", nm_font_width("abc", 2));

    float buf[20 * 20 * 3] = { 0 };
    nm_image img = { 20, 20, 3, buf };
    nm_font_draw(&img, 1, 1, "I", 1, white);
    nm_check(count_ink(&img, 0.0f) == 11, "'I' has 11 pixels (got %d)", count_ink(&img, 0.0f));
    memset(buf, 0, sizeof buf);
    nm_font_draw(&img, 1, 1, "\x7f", 1, white);
    nm_check(count_ink(&img, 0.0f) == 20, "unknown byte draws a box (got %d)", count_ink(&img, 0.0f));
    memset(buf, 0, sizeof buf);
    nm_font_draw(&img, 0, 0, "I", 2, white);
    nm_check(count_ink(&img, 0.0f) == 44, "scale 2 quadruples the ink (got %d)", count_ink(&img, 0.0f));
    memset(buf, 0, sizeof buf);
    nm_font_draw(&img, -3, -5, "WWWWWWWW", 3, white);   /* clipped on all sides */
    nm_check(count_ink(&img, 0.0f) > 0, "clipped text still draws its visible part");

    float grey_buf[10 * 10] = { 0 };
    nm_image grey = { 10, 10, 1, grey_buf };
    nm_font_draw(&grey, 0, 0, "#", 1, white);
    nm_check(count_ink(&grey, 0.0f) == 20 && fabsf(grey_buf[1] - 1.0f) < 1e-6f, "draws on grey images");
}

/* A CIFAR-like 32x32 RGB scene (a red disc on a sky gradient) with a mask
 * on the disc, and a Fashion-like 28x28 grey image. */
static void make_scene(nm_image *img, float *mask, int w, int h, int c)
{
    img->w = w;
    img->h = h;
    img->c = c;
    img->data = malloc((size_t)w * h * c * sizeof(float));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float dx = x - w * 0.55f, dy = y - h * 0.5f, r = sqrtf(dx * dx + dy * dy) / w;
            float disc = r < 0.25f;
            float *p = img->data + ((size_t)y * w + x) * c;
            if (c == 3) {
                p[0] = disc ? 0.9f : 0.3f;
                p[1] = disc ? 0.15f : 0.5f + 0.3f * y / h;
                p[2] = disc ? 0.1f : 0.9f;
            } else {
                p[0] = disc ? 0.85f : 0.1f * x / w;
            }
            mask[(size_t)y * w + x] = 1.0f / (1.0f + expf((r - 0.22f) * 40.0f));
        }
}

static void out_path(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("NM_BUILD_DIR");
    snprintf(buf, cap, "%s/%s", dir && *dir ? dir : ".", name);
}

static void test_images(void)
{
    nm_error err = { 0 };
    nm_image img, out = { 0 };
    float mask[32 * 32];
    make_scene(&img, mask, 32, 32, 3);
    nm_map_scale ms = nm_map_scale_of(mask, 32 * 32, NM_MAP_MASK);
    nm_check(ms.lo == 0.0f && ms.hi == 1.0f, "a mask is drawn 0..1 (%g..%g)", ms.lo, ms.hi);

    nm_check(nm_render_map(mask, 32, 32, &ms, &out, &err) == NM_OK && out.w == 32 && out.h == 32 &&
             out.c == 1 && fabsf(out.data[5] - mask[5]) < 1e-6f, "a mask image is 32x32 grey, white = kept");
    nm_image_free(&out);

    nm_check(nm_render_overlay(&img, mask, &ms, 0.0f, &out, &err) == NM_OK &&
             memcmp(out.data, img.data, 32 * 32 * 3 * sizeof(float)) == 0, "alpha 0 is the image");
    nm_image_free(&out);
    float heat[3];
    nm_colormap(ms.cmap, mask[0], heat);
    nm_check(nm_render_overlay(&img, mask, &ms, 1.0f, &out, &err) == NM_OK && out.c == 3 &&
             fabsf(out.data[0] - heat[0]) < 1e-6f && fabsf(out.data[2] - heat[2]) < 1e-6f,
             "alpha 1 is the colour map");
    nm_image_free(&out);
    nm_check(nm_render_overlay(&img, mask, &ms, 1.5f, &out, &err) == NM_ERR_ARG && !out.data,
             "alpha above 1 is refused");
    nm_check(nm_render_overlay(&img, NULL, &ms, 0.5f, &out, &err) == NM_ERR_ARG, "no mask is refused");

    const char *lines[] = { "class 3 (cat): p 0.91 -> 0.87 masked",
                            "mask area 18.4%  steps 300  loss 0.123",
                            "cat_01.png {sparse: 0.05, smooth: 0.1}" };
    char path[4096];
    /* 32 px tiles x4 = 128; 4 tiles and 4 gaps, the bar and its widest label ("0.5"), 2 margins */
    int bar_block = NM_PANEL_BAR_W + 4 + nm_font_width("0.5", 2);
    nm_check(nm_render_panel(&img, mask, &ms, lines, 3, &out, &err) == NM_OK, "panel: %s", err.msg);
    nm_check(out.w == 4 * 128 + 4 * NM_PANEL_GAP + bar_block + 16 && out.c == 3, "panel width %d", out.w);
    nm_check(out.h == 8 + 16 + 4 + 128 + 10 + 3 * 20 + 8, "panel height %d", out.h);
    out_path(path, sizeof path, "render_panel_cifar.png");
    nm_check(nm_image_write_png(path, &out, &err) == NM_OK, "write %s: %s", path, err.msg);
    nm_image back = { 0 };
    nm_check(nm_image_load(path, &back, &err) == NM_OK && back.w == out.w && back.h == out.h,
             "panel PNG reads back");
    nm_image_free(&back);
    nm_image_free(&out);
    nm_check(nm_render_panel(&img, mask, &ms, NULL, 0, &out, &err) == NM_OK &&
             out.h == 8 + 16 + 4 + 128 + 8, "panel without caption: height %d", out.h);
    nm_image_free(&out);
    nm_image_free(&img);

    float fmask[28 * 28];
    make_scene(&img, fmask, 28, 28, 1);
    const char *fl[] = { "Fashion-MNIST: Ankle boot (9) p 0.99" };
    nm_check(nm_render_panel(&img, fmask, &ms, fl, 1, &out, &err) == NM_OK &&
             out.w == 4 * 140 + 16 + bar_block + 16, "28 px tiles are enlarged 5x (width %d)", out.w);
    out_path(path, sizeof path, "render_panel_fashion.png");
    nm_check(nm_image_write_png(path, &out, &err) == NM_OK, "write %s: %s", path, err.msg);
    nm_image_free(&out);
    nm_image_free(&img);

    /* A caption wider than the tiles widens the panel. */
    float tiny[4] = { 0.2f, 0.4f, 0.6f, 0.8f }, tmask[4] = { 0, 1, 1, 0 };
    nm_image t = { 2, 2, 1, tiny };
    const char *wide[] = { "a caption that is much wider than the four small tiles above it" };
    nm_check(nm_render_panel(&t, tmask, &ms, wide, 1, &out, &err) == NM_OK &&
             out.w == nm_font_width(wide[0], 2) + 16, "a wide caption widens the panel (%d)", out.w);
    nm_image_free(&out);
}

static int near(const float a[3], const float b[3], float tol)
{
    return fabsf(a[0] - b[0]) <= tol && fabsf(a[1] - b[1]) <= tol && fabsf(a[2] - b[2]) <= tol;
}

/* Signed maps: centred at 0 on a diverging map; non-negative maps 0..max. */
static void test_scales(void)
{
    static const float white[3] = { 1, 1, 1 };
    float v[5] = { -0.5f, 0.0f, 0.25f, 2.0f, -1.0f }, rgb[3], lo[3], hi[3];
    nm_map_scale s = nm_map_scale_of(v, 5, NM_MAP_SIGNED);
    nm_check(s.lo == -2.0f && s.hi == 2.0f && strcmp(s.cmap, "diverging") == 0,
             "a signed map is drawn -max|v|..+max|v| on the diverging map (%g..%g %s)", s.lo, s.hi, s.cmap);
    nm_check(nm_map_scale_unit(&s, 0.0f) == 0.5f, "0 sits in the middle of a signed scale");
    nm_colormap(s.cmap, nm_map_scale_unit(&s, 0.0f), rgb);
    nm_check(near(rgb, white, 0.0f), "0 is white (%.3f %.3f %.3f)", rgb[0], rgb[1], rgb[2]);
    nm_colormap(s.cmap, nm_map_scale_unit(&s, -2.0f), lo);
    nm_colormap(s.cmap, nm_map_scale_unit(&s, 2.0f), hi);
    nm_check(lo[2] > 0.3f && lo[2] > 2.0f * lo[0] && luma(lo) < 0.3f, "-a is dark blue (%.2f %.2f %.2f)", lo[0],
             lo[1], lo[2]);
    nm_check(hi[0] > 0.3f && hi[0] > 2.0f * hi[2] && luma(hi) < 0.3f, "+a is dark red (%.2f %.2f %.2f)", hi[0],
             hi[1], hi[2]);
    int toward_white = 1;
    float prev = -1.0f;
    for (int i = 0; i <= 32; i++) {   /* lightness rises to the centre and falls after it */
        nm_colormap("diverging", i / 64.0f, rgb);
        toward_white &= luma(rgb) > prev;
        prev = luma(rgb);
    }
    nm_check(toward_white, "the diverging map lightens toward its centre");

    float pos[4] = { 0.5f, 1.0f, 3.0f, 2.0f };
    nm_map_scale p = nm_map_scale_of(pos, 4, NM_MAP_NONNEGATIVE);
    nm_check(p.lo == 0.0f && p.hi == 3.0f && strcmp(p.cmap, "inferno") == 0, "non-negative: 0..max (%g..%g)",
             p.lo, p.hi);
    float many[1000];   /* 995 values up to 0.995 and 5 outliers of 50: drawn up to 0.995 */
    for (int i = 0; i < 1000; i++) many[i] = i < 995 ? (float)(i + 1) / 1000.0f : 50.0f;
    nm_map_scale c = nm_map_scale_of(many, 1000, NM_MAP_NONNEGATIVE);
    nm_check(fabsf(c.hi - 0.995f) < 1e-6f && nm_map_scale_unit(&c, 50.0f) == 1.0f,
             "the scale clips at the 99.5th percentile (%g)", c.hi);
    for (int i = 0; i < 1000; i++) many[i] = i % 2 ? many[i] : -many[i];
    c = nm_map_scale_of(many, 1000, NM_MAP_SIGNED);
    nm_check(fabsf(c.hi - 0.995f) < 1e-6f && c.lo == -c.hi, "a signed scale clips |v| the same (%g)", c.hi);
    nm_map_scale none = nm_map_scale_of(NULL, 0, NM_MAP_SIGNED);   /* the legend's: no map, the kind's colours */
    nm_check(strcmp(none.cmap, "diverging") == 0 && none.lo == -1.0f && none.hi == 1.0f,
             "a signed scale without a map is diverging -1..1 (%s)", none.cmap);
    float flat[3] = { 0.0f, 0.0f, 0.0f };
    nm_map_scale f = nm_map_scale_of(flat, 3, NM_MAP_SIGNED);
    nm_check(f.hi > f.lo && nm_map_scale_unit(&f, 0.0f) == 0.5f, "an all-0 signed map is drawn white");
    flat[0] = flat[1] = flat[2] = 4.0f;
    f = nm_map_scale_of(flat, 3, NM_MAP_NONNEGATIVE);
    nm_check(f.hi > f.lo, "a constant map still has a span (%g..%g)", f.lo, f.hi);

    /* The map file of a signed map is in colour: 0 white, the extremes the bar's ends. */
    nm_error err = { 0 };
    nm_image out = { 0 };
    nm_check(nm_render_map(v, 5, 1, &s, &out, &err) == NM_OK && out.c == 3, "a signed map image is RGB");
    nm_check(near(out.data + 3, white, 0.0f), "a 0 in a signed map image is white");
    nm_image_free(&out);

    /* A signed overlay leaves the image where the map is 0. */
    float pix[5 * 3];
    for (int i = 0; i < 15; i++) pix[i] = 0.1f * (float)(i % 7);
    nm_image img = { 5, 1, 3, pix };
    nm_check(nm_render_overlay(&img, v, &s, 0.5f, &out, &err) == NM_OK && near(out.data + 3, pix + 3, 1e-6f) &&
             !near(out.data + 9, pix + 9, 0.01f), "a signed overlay: 0 keeps the image, +a colours it");
    nm_image_free(&out);
}

/* Every panel has a colour bar whose pixels follow its map: top = hi,
 * bottom = lo, for a signed map white in the middle. Map tiles are titled
 * "mask" only for masks, and maps get three tiles. */
static void test_panel_bar(void)
{
    enum { W = 32, H = 32 };
    nm_error err = { 0 };
    nm_image img, out = { 0 };
    float mask[W * H], map[W * H];
    make_scene(&img, mask, W, H, 3);
    for (int i = 0; i < W * H; i++) map[i] = (float)(i % W - W / 2) / 10.0f;   /* -1.6 .. 1.5 */
    nm_map_scale s = nm_map_scale_of(map, W * H, NM_MAP_SIGNED);
    const char *lines[] = { "signed map" };
    nm_check(nm_render_panel(&img, map, &s, lines, 1, &out, &err) == NM_OK, "signed panel: %s", err.msg);
    int tile = 128, tiles_y = 8 + 16 + 4;
    int bar_x = 8 + 3 * (tile + NM_PANEL_GAP);   /* three tiles for a map */
    int cx = bar_x + NM_PANEL_BAR_W / 2, ok = 1;
    float want[3];
    for (int row = 2; row < tile - 2; row += 5) {
        nm_colormap("diverging", 1.0f - (float)row / (float)(tile - 1), want);
        ok &= near(out.data + ((size_t)(tiles_y + row) * out.w + cx) * 3, want, 1e-5f);
    }
    nm_check(ok, "the bar's pixels follow the diverging map, top = +a");
    float top[3], bottom[3];
    nm_colormap("diverging", 1.0f - 1.0f / (float)(tile - 1), top);
    nm_colormap("diverging", 1.0f / (float)(tile - 1), bottom);
    nm_check(near(out.data + ((size_t)(tiles_y + 1) * out.w + cx) * 3, top, 1e-5f) && top[0] > top[2] &&
             near(out.data + ((size_t)(tiles_y + tile - 2) * out.w + cx) * 3, bottom, 1e-5f) && bottom[2] > bottom[0],
             "the bar is red at the top and blue at the bottom");
    int ink = 0;   /* the labels right of the bar: "+1.6", "0", "-1.6" */
    for (int y = tiles_y; y < tiles_y + tile; y++)
        for (int x = bar_x + NM_PANEL_BAR_W + 4; x < out.w - 8; x++) ink += out.data[((size_t)y * out.w + x) * 3] < 0.5f;
    nm_check(ink > 3 * 40, "the bar carries labels (%d dark pixels)", ink);
    int expect_w = 8 + 3 * (tile + NM_PANEL_GAP) + NM_PANEL_BAR_W + 4 + nm_font_width("+1.6", 2) + 8;
    nm_check(out.w == expect_w, "a map panel has three tiles and the bar (width %d, expected %d)", out.w, expect_w);
    char path[4096];
    out_path(path, sizeof path, "render_panel_signed.png");
    nm_check(nm_image_write_png(path, &out, &err) == NM_OK, "write %s: %s", path, err.msg);
    nm_image_free(&out);

    /* The same map as a mask: four tiles, the bar inferno 0..1. */
    nm_map_scale ms = nm_map_scale_of(mask, W * H, NM_MAP_MASK);
    nm_check(nm_render_panel(&img, mask, &ms, NULL, 0, &out, &err) == NM_OK, "mask panel");
    bar_x = 8 + 4 * (tile + NM_PANEL_GAP);
    nm_colormap("inferno", 1.0f - 10.0f / (float)(tile - 1), want);
    nm_check(near(out.data + ((size_t)(tiles_y + 10) * out.w + bar_x + NM_PANEL_BAR_W / 2) * 3, want, 1e-5f),
             "a mask panel's bar is after four tiles and follows inferno");
    nm_image_free(&out);
    nm_image_free(&img);
}

static int dir_entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_atomic(void)
{
    char dir[4096], path[4200], tmp[4300], buf[64];
    nm_error err = { 0 };
    out_path(dir, sizeof dir, "render_atomic_XXXXXX");
    if (!mkdtemp(dir)) {
        nm_check(0, "mkdtemp %s", dir);
        return;
    }
    snprintf(path, sizeof path, "%s/out.bin", dir);
    nm_check(nm_write_file_atomic(path, "hello", 5, &err) == NM_OK, "atomic write: %s", err.msg);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    nm_check(n == 5 && memcmp(buf, "hello", 5) == 0, "content written");
    nm_check(dir_entries(dir) == 1, "no temporary file left after a commit");
    struct stat st;
    nm_check(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "file mode 0644");

    nm_check(nm_write_file_atomic(path, "bye", 3, &err) == NM_OK && stat(path, &st) == 0 &&
             st.st_size == 3, "an existing file is replaced");

    char path2[4200];
    snprintf(path2, sizeof path2, "%s/aborted.bin", dir);
    f = nm_atomic_open(path2, tmp, sizeof tmp, &err);
    nm_check(f != NULL && strstr(tmp, "/.aborted.bin.tmp.") != NULL, "temp name %s", tmp);
    if (f) {
        fputs("partial", f);
        nm_atomic_abort(f, tmp);
    }
    nm_check(access(path2, F_OK) != 0 && dir_entries(dir) == 1, "abort leaves no target and no temp");

    snprintf(path2, sizeof path2, "%s/missing/dir/x.bin", dir);
    nm_check(nm_write_file_atomic(path2, "x", 1, &err) == NM_ERR_IO && strstr(err.msg, path2),
             "missing directory: %s", err.msg);
    snprintf(path2, sizeof path2, "%s/", dir);
    nm_check(nm_write_file_atomic(path2, "x", 1, &err) == NM_ERR_ARG, "a directory path is refused");
    nm_check(dir_entries(dir) == 1, "failures leave nothing behind");

    /* .npy header bytes (numpy reads them back in test_npy). */
    snprintf(path2, sizeof path2, "%s/a.npy", dir);
    float v[6] = { 1, 2, 3, 4, 5, 6 };
    int64_t dims[2] = { 2, 3 };
    nm_check(nm_npy_write_f32(path2, v, 2, dims, &err) == NM_OK, "npy write: %s", err.msg);
    unsigned char h[200] = { 0 };
    f = fopen(path2, "rb");
    n = f ? fread(h, 1, sizeof h, f) : 0;
    if (f) fclose(f);
    size_t hlen = h[8] | (size_t)h[9] << 8;
    nm_check(n == 128 + 24 && memcmp(h, "\x93NUMPY\x01\x00", 8) == 0 && (10 + hlen) % 64 == 0 &&
             h[10 + hlen - 1] == '\n', "npy header is aligned to 64 and ends in a newline");
    nm_check(strstr((char *)h + 10, "'shape': (2, 3), }") != NULL, "npy shape text");
    int64_t bad = -1;
    nm_check(nm_npy_write_f32(path2, v, 1, &bad, &err) == NM_ERR_ARG, "negative dim refused");
    unlink(path2);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_colormaps();
    test_font();
    test_images();
    test_scales();
    test_panel_bar();
    test_atomic();
    return nm_test_summary();
}
