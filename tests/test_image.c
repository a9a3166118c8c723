/* Image files and preprocessing: PNG/JPEG variants written here with libpng
 * and libjpeg, damaged files, PNG output, recipe parsing, geometry, and a
 * comparison with PIL + torchvision (tools/ref_preprocess.py) on synthetic
 * images and, with NEUROMASK_SHARED, on real ones. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "testutil.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    if (b && fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    return n;
}

/* ------------------------------------------------------- writing files */

/* A PNG from packed rows (bytes per row given); palette/trns optional. */
static void write_png(const char *path, int w, int h, int depth, int color, int interlace,
                      const unsigned char *data, size_t rowbytes, const png_color *palette, int n_pal,
                      const unsigned char *trns, int n_trns)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        nm_check(0, "libpng failed writing %s", path);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_pal);
    if (trns) png_set_tRNS(png, info, trns, n_trns, NULL);
    png_write_info(png, info);
    png_bytep *rows = malloc(sizeof *rows * h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    fclose(f);
}

static void write_jpeg(const char *path, int w, int h, int comps, J_COLOR_SPACE cs, int progressive,
                       const unsigned char *data)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "wb");
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = w;
    c.image_height = h;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 92, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)data + (size_t)c.next_scanline * w * comps;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* A smooth pattern with some noise, 8-bit interleaved. */
static unsigned char *pattern(int w, int h, int c, unsigned seed)
{
    unsigned char *p = malloc((size_t)w * h * c);
    uint64_t s = seed * 2654435761u + 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                double v = 128 + 90 * sin(x * (0.05 + 0.02 * k) + y * 0.031 * (k + 1)) +
                           30 * cos(x * 0.3 - y * 0.2) + (double)(s % 41) - 20;
                p[((size_t)y * w + x) * c + k] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return p;
}

/* ------------------------------------------------------------ decoding */

static int image_is(const nm_image *im, int w, int h, int c)
{
    return im->w == w && im->h == h && im->c == c && im->data;
}

static void test_png_formats(void)
{
    enum { W = 7, H = 5 };
    unsigned char g8[W * H], ga8[W * H * 2], rgb8[W * H * 3], rgba8[W * H * 4], g16[W * H * 2],
        rgb16[W * H * 6], pal[W * H], g1[H];
    for (int i = 0; i < W * H; i++) {
        int x = i % W, y = i / W;
        g8[i] = (unsigned char)(x * 37 + y * 11);
        ga8[2 * i] = g8[i], ga8[2 * i + 1] = (unsigned char)(i * 7);
        for (int k = 0; k < 3; k++) {
            rgb8[3 * i + k] = (unsigned char)(x * 30 + y * 7 + k * 50);
            rgba8[4 * i + k] = rgb8[3 * i + k];
            unsigned v = (unsigned)(x * 9000 + y * 1234 + k * 20000) & 0xffff;
            rgb16[6 * i + 2 * k] = (unsigned char)(v >> 8), rgb16[6 * i + 2 * k + 1] = (unsigned char)v;
        }
        rgba8[4 * i + 3] = (unsigned char)(255 - i);
        unsigned v = (unsigned)(x * 9000 + y * 1234) & 0xffff;
        g16[2 * i] = (unsigned char)(v >> 8), g16[2 * i + 1] = (unsigned char)v;
        pal[i] = (unsigned char)(i % 4);
    }
    for (int y = 0; y < H; y++) g1[y] = (unsigned char)(0xA5 ^ (y * 0x11));   /* 7 bits used */
    png_color palette[4] = { { 0, 0, 0 }, { 255, 0, 0 }, { 10, 200, 30 }, { 1, 2, 3 } };
    unsigned char trns[4] = { 255, 0, 128, 255 };

    write_png(tmp_path("g8.png"), W, H, 8, PNG_COLOR_TYPE_GRAY, 0, g8, W, NULL, 0, NULL, 0);
    write_png(tmp_path("g16.png"), W, H, 16, PNG_COLOR_TYPE_GRAY, 0, g16, 2 * W, NULL, 0, NULL, 0);
    write_png(tmp_path("g1.png"), W, H, 1, PNG_COLOR_TYPE_GRAY, 0, g1, 1, NULL, 0, NULL, 0);
    write_png(tmp_path("ga8.png"), W, H, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, ga8, 2 * W, NULL, 0, NULL, 0);
    write_png(tmp_path("rgb8.png"), W, H, 8, PNG_COLOR_TYPE_RGB, 0, rgb8, 3 * W, NULL, 0, NULL, 0);
    write_png(tmp_path("rgb16.png"), W, H, 16, PNG_COLOR_TYPE_RGB, 0, rgb16, 6 * W, NULL, 0, NULL, 0);
    write_png(tmp_path("rgba8.png"), W, H, 8, PNG_COLOR_TYPE_RGBA, 0, rgba8, 4 * W, NULL, 0, NULL, 0);
    write_png(tmp_path("pal.png"), W, H, 8, PNG_COLOR_TYPE_PALETTE, 0, pal, W, palette, 4, trns, 4);
    write_png(tmp_path("rgb8i.png"), W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, rgb8, 3 * W,
              NULL, 0, NULL, 0);

    struct { const char *name; int c; } cases[] = {
        { "g8.png", 1 }, { "g16.png", 1 }, { "g1.png", 1 }, { "ga8.png", 1 }, { "rgb8.png", 3 },
        { "rgb16.png", 3 }, { "rgba8.png", 3 }, { "pal.png", 3 }, { "rgb8i.png", 3 },
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        nm_image im;
        nm_error err = { 0 };
        const char *name = cases[t].name;
        nm_status st = nm_image_load(tmp_path(name), &im, &err);
        if (!nm_check(st == NM_OK && image_is(&im, W, H, cases[t].c), "load %s: %s", name, err.msg))
            continue;
        double worst = 0;
        for (int i = 0; i < W * H; i++)
            for (int k = 0; k < im.c; k++) {
                double want;
                int x = i % W, y = i / W;
                if (!strcmp(name, "g8.png") || !strcmp(name, "ga8.png")) want = g8[i] / 255.0;
                else if (!strcmp(name, "g16.png")) want = ((g16[2 * i] << 8) | g16[2 * i + 1]) / 65535.0;
                else if (!strcmp(name, "g1.png")) want = (g1[y] >> (7 - x)) & 1;
                else if (!strcmp(name, "rgb16.png"))
                    want = ((rgb16[6 * i + 2 * k] << 8) | rgb16[6 * i + 2 * k + 1]) / 65535.0;
                else if (!strcmp(name, "pal.png")) {
                    png_color p = palette[pal[i]];
                    want = (k == 0 ? p.red : k == 1 ? p.green : p.blue) / 255.0;
                } else want = rgb8[3 * i + k] / 255.0;
                double d = fabs(im.data[i * im.c + k] - want);
                worst = d > worst ? d : worst;
            }
        nm_check(worst < 1e-6, "%s: values (max diff %g)", name, worst);
        nm_image_free(&im);
    }
}

static void test_png_write(void)
{
    nm_image im = { 13, 9, 3, NULL }, back;
    nm_error err = { 0 };
    uint64_t s = 7;
    im.data = malloc(sizeof(float) * 13 * 9 * 3);
    nm_test_rand_fill(im.data, 13 * 9 * 3, 0.0f, 1.0f, &s);
    im.data[0] = -0.5f, im.data[1] = 1.5f, im.data[2] = NAN;   /* clamped */
    mkdir(tmp_path("out"), 0755);
    const char *path = tmp_path("out/rt.png");
    nm_check(nm_image_write_png(path, &im, &err) == NM_OK, "write png: %s", err.msg);
    nm_check(count_files(tmp_path("out")) == 1, "only the PNG is left in the directory");
    if (nm_check(nm_image_load(path, &back, &err) == NM_OK && image_is(&back, 13, 9, 3),
                 "read back: %s", err.msg)) {
        double worst = 0;
        for (int i = 3; i < 13 * 9 * 3; i++) {
            double d = fabs(back.data[i] - im.data[i]);
            worst = d > worst ? d : worst;
        }
        nm_check(worst <= 0.5 / 255 + 1e-6, "round trip within half a step (%g)", worst);
        nm_check(back.data[0] == 0.0f && back.data[1] == 1.0f && back.data[2] == 0.0f,
                 "out-of-range values clamped");
        nm_image_free(&back);
    }
    im.c = 1;
    nm_check(nm_image_write_png(path, &im, &err) == NM_OK, "write grey png over it: %s", err.msg);
    nm_check(nm_image_load(path, &back, &err) == NM_OK && back.c == 1, "grey png reads as grey");
    nm_image_free(&back);
    nm_check(nm_image_write_png(tmp_path("missing/dir/x.png"), &im, &err) == NM_ERR_IO &&
                 strstr(err.msg, "missing/dir/x.png"),
             "write into a missing directory: %s", err.msg);
    im.c = 2;
    nm_check(nm_image_write_png(path, &im, &err) == NM_ERR_ARG, "write 2 channels refused");
    nm_check(count_files(tmp_path("out")) == 1, "no temporary files left after failures");
    free(im.data);
}

static int images_equal(const nm_image *a, const nm_image *b)
{
    return a->w == b->w && a->h == b->h && a->c == b->c &&
           !memcmp(a->data, b->data, sizeof(float) * a->w * a->h * a->c);
}

static void test_jpeg(void)
{
    unsigned char *rgb = pattern(64, 48, 3, 1), *grey = pattern(64, 48, 1, 2), *cmyk = pattern(16, 8, 4, 3);
    write_jpeg(tmp_path("base.jpg"), 64, 48, 3, JCS_RGB, 0, rgb);
    write_jpeg(tmp_path("prog.jpg"), 64, 48, 3, JCS_RGB, 1, rgb);
    write_jpeg(tmp_path("grey.jpg"), 64, 48, 1, JCS_GRAYSCALE, 0, grey);
    write_jpeg(tmp_path("cmyk.jpg"), 16, 8, 4, JCS_CMYK, 0, cmyk);
    nm_image a, b, g;
    nm_error err = { 0 };
    nm_check(nm_image_load(tmp_path("base.jpg"), &a, &err) == NM_OK && image_is(&a, 64, 48, 3),
             "baseline JPEG: %s", err.msg);
    nm_check(nm_image_load(tmp_path("prog.jpg"), &b, &err) == NM_OK && image_is(&b, 64, 48, 3),
             "progressive JPEG: %s", err.msg);
    /* same quantised coefficients, sent in another order */
    nm_check(a.data && b.data && images_equal(&a, &b), "progressive decodes like baseline");
    nm_check(nm_image_load(tmp_path("grey.jpg"), &g, &err) == NM_OK && image_is(&g, 64, 48, 1),
             "grey JPEG stays 1 channel: %s", err.msg);
    double worst = 0;
    for (int i = 0; a.data && i < 64 * 48 * 3; i++) {
        double d = fabs(a.data[i] - rgb[i] / 255.0);
        worst = d > worst ? d : worst;
    }
    nm_check(worst < 0.25, "JPEG decode close to the source (max diff %.3f)", worst);
    nm_image_free(&g);
    nm_check(nm_image_load(tmp_path("cmyk.jpg"), &g, &err) == NM_ERR_UNSUPPORTED &&
                 starts_with(err.msg, tmp_path("cmyk.jpg")),
             "CMYK JPEG unsupported: %s", err.msg);
    nm_image_free(&a);
    nm_image_free(&b);
    nm_image_free(&g);
    free(rgb);
    free(grey);
    free(cmyk);
}

/* A PNG signature and IHDR of the given size (CRC not checked first). */
static void write_png_header(const char *path, uint32_t w, uint32_t h)
{
    unsigned char b[33] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R' };
    for (int i = 0; i < 4; i++) {
        b[16 + i] = (unsigned char)(w >> (24 - 8 * i));
        b[20 + i] = (unsigned char)(h >> (24 - 8 * i));
    }
    b[24] = 8, b[25] = 2;
    write_bytes(path, b, sizeof b);
}

static void expect_fail(const char *name, nm_status want, const char *text)
{
    nm_image im;
    nm_error err = { 0 };
    const char *path = tmp_path(name);
    nm_status st = nm_image_load(path, &im, &err);
    nm_check(st == want && starts_with(err.msg, path) && strstr(err.msg, text) && !im.data,
             "%s: want %s '%s', got %s '%s'", name, nm_status_name(want), text, nm_status_name(st),
             err.msg);
    nm_image_free(&im);
}

static void test_bad_images(void)
{
    size_t n;
    unsigned char *big = pattern(40, 30, 3, 9);
    write_png(tmp_path("ok.png"), 40, 30, 8, PNG_COLOR_TYPE_RGB, 0, big, 120, NULL, 0, NULL, 0);
    write_jpeg(tmp_path("ok.jpg"), 40, 30, 3, JCS_RGB, 0, big);
    unsigned char *b = read_bytes(tmp_path("ok.png"), &n);
    write_bytes(tmp_path("trunc.png"), b, n / 2);
    b[n / 2] ^= 0x55;   /* inside IDAT: the CRC no longer matches */
    write_bytes(tmp_path("corrupt.png"), b, n);
    free(b);
    b = read_bytes(tmp_path("ok.jpg"), &n);
    write_bytes(tmp_path("trunc.jpg"), b, n / 2);
    write_bytes(tmp_path("header.jpg"), b, 40);
    free(b);
    write_png_header(tmp_path("zero.png"), 0, 0);
    write_png_header(tmp_path("huge.png"), 100000, 100000);
    write_png_header(tmp_path("many.png"), 60000, 60000);
    write_bytes(tmp_path("random.png"), "\x13\x57\xfe\x00garbage bytes", 17);
    write_bytes(tmp_path("empty.jpg"), "", 0);
    write_bytes(tmp_path("sig.png"), "\x89PNG\r\n\x1a\n", 8);
    mkdir(tmp_path("dir.png"), 0755);

    expect_fail("trunc.png", NM_ERR_PARSE, "truncated PNG");
    expect_fail("corrupt.png", NM_ERR_PARSE, "PNG");
    expect_fail("trunc.jpg", NM_ERR_PARSE, "truncated JPEG");
    expect_fail("header.jpg", NM_ERR_PARSE, "JPEG");
    expect_fail("zero.png", NM_ERR_PARSE, "image is 0x0");
    expect_fail("huge.png", NM_ERR_LIMIT, "above the limit");
    expect_fail("many.png", NM_ERR_LIMIT, "above the limit");
    expect_fail("random.png", NM_ERR_PARSE, "not a PNG or JPEG image");
    expect_fail("empty.jpg", NM_ERR_PARSE, "empty file");
    expect_fail("sig.png", NM_ERR_PARSE, "truncated PNG");
    expect_fail("nothere.png", NM_ERR_IO, "cannot open");
    expect_fail("dir.png", NM_ERR_IO, "directory");
    free(big);
}

/* -------------------------------------------------------- preprocessing */

static void test_recipes(void)
{
    nm_preprocess p;
    nm_error err = { 0 };
    nm_check(nm_preprocess_recipe("torchvision", &p, &err) == NM_OK && p.resize_short == 256 &&
                 p.crop == 224 && p.scale == 1.0f && p.mean[1] == 0.456f && p.std[2] == 0.225f,
             "torchvision recipe");
    nm_check(nm_preprocess_recipe("inception", &p, &err) == NM_OK && p.crop_fraction == 0.875f &&
                 p.offset == -1.0f && p.mean[0] == 0 && p.std[0] == 1,
             "inception recipe");
    nm_check(nm_preprocess_recipe("cifar", &p, &err) == NM_OK && p.resize_short == 0 && p.crop == 0,
             "cifar recipe");
    nm_check(nm_preprocess_recipe("darknet", &p, &err) == NM_OK && p.mean[0] == 0 && p.std[0] == 1 &&
                 p.crop == 224,
             "darknet recipe");
    nm_check(nm_preprocess_recipe("fashion", &p, &err) == NM_OK && p.size == 28 && p.mean[0] == 0.2860f,
             "fashion recipe");
    nm_check(nm_preprocess_recipe("imagenet", &p, &err) == NM_ERR_ARG && strstr(err.msg, "imagenet"),
             "unknown recipe: %s", err.msg);

    nm_check(nm_preprocess_parse("resize=256,crop=224,scale=1,mean=0.485:0.456:0.406,std=0.229:0.224:0.225",
                                 &p, &err) == NM_OK &&
                 p.resize_short == 256 && p.crop == 224 && p.mean[2] == 0.406f && p.std[0] == 0.229f,
             "spec string: %s", err.msg);
    nm_check(nm_preprocess_parse("inception", &p, &err) == NM_OK && p.crop_fraction == 0.875f,
             "spec: recipe name");
    nm_check(nm_preprocess_parse("torchvision, crop=200, mean=0.5", &p, &err) == NM_OK &&
                 p.resize_short == 256 && p.crop == 200 && p.mean[2] == 0.5f && p.std[1] == 0.224f,
             "spec: recipe then overrides: %s", err.msg);
    nm_check(nm_preprocess_parse("central=0.875,size=128,scale=2,offset=-1", &p, &err) == NM_OK &&
                 p.size == 128 && p.scale == 2 && p.offset == -1,
             "spec: central/size/scale/offset");
    const char *bad[] = { "", "foo=1", "mean=1:2", "mean=1:2:3:4", "std=0", "resize=-3", "crop=1.5",
                          "scale=abc", "nosuch", "resize=", "central=2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        nm_check(nm_preprocess_parse(bad[i], &p, &err) == NM_ERR_ARG && err.msg[0],
                 "bad spec '%s' refused (%s)", bad[i], err.msg);
}

static void test_geometry(void)
{
    nm_preprocess p;
    nm_error err = { 0 };
    nm_image in = { 9, 9, 1, malloc(sizeof(float) * 81) }, out;
    for (int i = 0; i < 81; i++) in.data[i] = (float)i / 1000.0f;   /* not 8-bit values */
    nm_preprocess_parse("crop=4", &p, &err);
    /* (9 - 4) / 2 = 2.5 rounds half to even: 2 */
    nm_check(nm_preprocess_geometry(&p, &in, 4, 4, &out, &err) == NM_OK && image_is(&out, 4, 4, 1) &&
                 out.data[0] == in.data[2 * 9 + 2] && out.data[15] == in.data[5 * 9 + 5],
             "centre crop keeps float values, torchvision rounding");
    nm_image_free(&out);
    nm_preprocess_parse("crop=6", &p, &err);   /* (9-6)/2 = 1.5 -> 2 */
    nm_check(nm_preprocess_geometry(&p, &in, 6, 6, &out, &err) == NM_OK && out.data &&
                 out.data[0] == in.data[2 * 9 + 2],
             "centre crop offset 1.5 rounds to 2");
    nm_image_free(&out);
    nm_preprocess_parse("scale=1", &p, &err);
    nm_check(nm_preprocess_geometry(&p, &in, 9, 9, &out, &err) == NM_OK && images_equal(&in, &out),
             "no geometry: identity");
    nm_image_free(&out);
    nm_check(nm_preprocess_geometry(&p, &in, 5, 3, &out, &err) == NM_OK && image_is(&out, 3, 5, 1),
             "resized to the model's size (h 5, w 3)");
    nm_image_free(&out);
    nm_preprocess_parse("crop=20", &p, &err);
    nm_check(nm_preprocess_geometry(&p, &in, 20, 20, &out, &err) == NM_OK && out.data &&
                 out.data[0] == 0.0f && fabsf(out.data[6 * 20 + 6] - in.data[0]) < 1e-7f,
             "crop larger than the image pads with zeros");
    nm_image_free(&out);
    nm_preprocess_recipe("torchvision", &p, &err);
    nm_image one = { 1, 1, 3, (float[]){ 0.2f, 0.4f, 0.6f } };
    nm_check(nm_preprocess_geometry(&p, &one, 224, 224, &out, &err) == NM_OK &&
                 image_is(&out, 224, 224, 3) && fabsf(out.data[3 * 1000 + 1] - 102 / 255.0f) < 1e-6f,
             "1x1 image up to 224x224: %s", err.msg);
    nm_image_free(&out);

    /* values: grey -> 3 channels, RGB -> grey, mean/std */
    nm_image g = { 2, 1, 1, (float[]){ 0.0f, 1.0f } }, rgb = { 1, 1, 3, (float[]){ 1.0f, 0.5f, 0.0f } };
    float t[6];
    nm_preprocess_recipe("torchvision", &p, &err);
    nm_preprocess_normalize(&p, &g, 3, t);
    nm_check(fabsf(t[0] - (-0.485f / 0.229f)) < 1e-6f && fabsf(t[3] - (1 - 0.456f) / 0.224f) < 1e-6f &&
                 fabsf(t[5] - (1 - 0.406f) / 0.225f) < 1e-6f,
             "grey replicated to 3 normalised planes");
    nm_preprocess_parse("scale=2,offset=-1", &p, &err);
    nm_preprocess_normalize(&p, &rgb, 1, t);
    nm_check(fabsf(t[0] - ((0.299f + 0.587f * 0.5f) * 2 - 1)) < 1e-6f, "RGB to grey by luma");
    free(in.data);
}

/* --------------------------------------------------- reference (PIL) */

typedef struct ref_job {
    char recipe[16];
    int h, w, c;
    char path[1024];
} ref_job;

static ref_job jobs[64];
static int n_jobs;

static void add_job(const char *recipe, int h, int w, int c, const char *path)
{
    if (n_jobs == 64) return;
    ref_job *j = &jobs[n_jobs++];
    snprintf(j->recipe, sizeof j->recipe, "%s", recipe);
    j->h = h, j->w = w, j->c = c;
    snprintf(j->path, sizeof j->path, "%s", path);
}

static float *read_floats(const char *path, size_t want)
{
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    if (!b || n != want * sizeof(float)) {
        free(b);
        return NULL;
    }
    return (float *)b;
}

/* Largest difference in [0,1] pixel units for one job; -1 on failure. */
static double compare_job(const ref_job *j, const char *ref_path)
{
    nm_error err = { 0 };
    nm_image im, geo;
    if (nm_image_load(j->path, &im, &err) != NM_OK) {
        nm_check(0, "%s: %s", j->path, err.msg);
        return -1;
    }
    if (!strcmp(j->recipe, "raw")) {
        size_t n = (size_t)im.w * im.h * im.c;
        float *ref = read_floats(ref_path, n);
        double worst = ref ? 0 : -1;
        for (size_t i = 0; ref && i < n; i++) worst = fmax(worst, fabs(ref[i] - im.data[i]));
        free(ref);
        nm_image_free(&im);
        return worst;
    }
    nm_preprocess p;
    nm_preprocess_recipe(j->recipe, &p, &err);
    size_t n = (size_t)j->c * j->h * j->w;
    float *ours = malloc(n * sizeof(float)), *ref = read_floats(ref_path, n);
    double worst = -1;
    if (ref && nm_preprocess_geometry(&p, &im, j->h, j->w, &geo, &err) == NM_OK) {
        nm_preprocess_normalize(&p, &geo, j->c, ours);
        worst = 0;
        for (size_t i = 0; i < n; i++) {
            int k = (int)(i / ((size_t)j->h * j->w));
            worst = fmax(worst, fabs(ours[i] - ref[i]) * p.std[k] / p.scale);
        }
        nm_image_free(&geo);
    }
    free(ours);
    free(ref);
    nm_image_free(&im);
    return worst;
}

static void run_reference(void)
{
    const char *src = getenv("NM_SOURCE_DIR");
    char cmd[1024], list[512];
    if (!src || system("/usr/bin/python3 -c 'import torchvision, PIL' 2>/dev/null") != 0) {
        printf("note: no NM_SOURCE_DIR or no python3 torchvision: reference comparison skipped\n");
        return;
    }
    snprintf(list, sizeof list, "%s/jobs.txt", tmpdir);
    FILE *f = fopen(list, "w");
    for (int i = 0; i < n_jobs; i++)
        fprintf(f, "%s %d %d %d %s %s/ref%d.bin\n", jobs[i].recipe, jobs[i].h, jobs[i].w, jobs[i].c,
                jobs[i].path, tmpdir, i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tools/ref_preprocess.py %s", src, list);
    if (!nm_check(system(cmd) == 0, "tools/ref_preprocess.py ran")) return;
    double worst_by_recipe[6] = { 0 };
    const char *recipes[6] = { "raw", "cifar", "torchvision", "darknet", "inception", "fashion" };
    for (int i = 0; i < n_jobs; i++) {
        char ref[700];
        snprintf(ref, sizeof ref, "%s/ref%d.bin", tmpdir, i);
        double d = compare_job(&jobs[i], ref);
        nm_check(d >= 0 && d <= 2.0 / 255, "%s %dx%d %s: max diff %.3g (pixel units)", jobs[i].recipe,
                 jobs[i].h, jobs[i].w, jobs[i].path, d);
        for (int r = 0; r < 6; r++)
            if (!strcmp(recipes[r], jobs[i].recipe)) worst_by_recipe[r] = fmax(worst_by_recipe[r], d);
    }
    printf("max |neuromask - PIL/torchvision| in [0,1] pixel units over %d jobs:", n_jobs);
    for (int r = 0; r < 6; r++) printf(" %s %.2g", recipes[r], worst_by_recipe[r]);
    printf("\n");
}

/* First `n` image files of a directory, sorted. */
static void add_shared_dir(const char *rel, int n, const char *recipe, int h, int w)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", getenv("NEUROMASK_SHARED"), rel);
    struct dirent **names;
    int count = scandir(dir, &names, NULL, alphasort), used = 0;
    if (!nm_check(count > 0, "shared folder %s (NEUROMASK_SHARED is set)", dir)) return;
    for (int i = 0; i < count; i++) {
        const char *dot = strrchr(names[i]->d_name, '.');
        if (used < n && dot && (!strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpg") ||
                                !strcasecmp(dot, ".png"))) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            add_job(recipe, h, w, 3, path);
            if (!strcmp(recipe, "torchvision")) add_job("raw", 0, 0, 0, path);
            used++;
        }
        free(names[i]);
    }
    free(names);
}

static void plan_reference_jobs(void)
{
    unsigned char *rgb = pattern(300, 257, 3, 11), *grey = pattern(50, 80, 1, 12),
                  *photo = pattern(640, 480, 3, 13), *small = pattern(40, 30, 3, 14);
    write_png(tmp_path("rgb300.png"), 300, 257, 8, PNG_COLOR_TYPE_RGB, 0, rgb, 900, NULL, 0, NULL, 0);
    write_png(tmp_path("grey50.png"), 50, 80, 8, PNG_COLOR_TYPE_GRAY, 0, grey, 50, NULL, 0, NULL, 0);
    write_jpeg(tmp_path("prog640.jpg"), 640, 480, 3, JCS_RGB, 1, photo);
    write_png(tmp_path("small40.png"), 40, 30, 8, PNG_COLOR_TYPE_RGB, 0, small, 120, NULL, 0, NULL, 0);
    add_job("torchvision", 224, 224, 3, tmp_path("rgb300.png"));
    add_job("darknet", 224, 224, 3, tmp_path("rgb300.png"));
    add_job("inception", 224, 224, 3, tmp_path("rgb300.png"));
    add_job("inception", 128, 128, 3, tmp_path("rgb300.png"));
    add_job("cifar", 32, 32, 3, tmp_path("rgb300.png"));
    add_job("torchvision", 224, 224, 3, tmp_path("grey50.png"));
    add_job("fashion", 28, 28, 1, tmp_path("grey50.png"));
    add_job("torchvision", 224, 224, 3, tmp_path("prog640.jpg"));
    add_job("inception", 160, 160, 3, tmp_path("prog640.jpg"));
    add_job("cifar", 32, 32, 3, tmp_path("small40.png"));
    add_job("raw", 0, 0, 0, tmp_path("prog640.jpg"));
    add_job("raw", 0, 0, 0, tmp_path("base.jpg"));
    add_job("raw", 0, 0, 0, tmp_path("grey.jpg"));
    free(rgb);
    free(grey);
    free(photo);
    free(small);
    const char *shared = getenv("NEUROMASK_SHARED");
    if (!shared || !*shared) {
        printf("note: NEUROMASK_SHARED is not set: real images skipped\n");
        return;
    }
    add_shared_dir("images/imagenet_samples", 5, "torchvision", 224, 224);
    add_shared_dir("images/imagenet_samples", 2, "darknet", 224, 224);
    add_shared_dir("images/imagenet_val_227", 3, "inception", 128, 128);
    add_shared_dir("images/imagenet_val_227", 2, "inception", 224, 224);
    add_shared_dir("images/cifar10_test_jpg", 3, "cifar", 32, 32);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/nm_test_image.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL: cannot create a temporary directory\n");
        return 1;
    }
    test_png_formats();
    test_png_write();
    test_jpeg();
    test_bad_images();
    test_recipes();
    test_geometry();
    plan_reference_jobs();
    run_reference();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return nm_test_summary();
}
