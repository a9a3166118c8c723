/* Image files: PNG (libpng) and JPEG (libjpeg) into float [0,1] HWC, and
 * 8-bit PNG output. The format is told by the magic bytes, never the file
 * name. Both libraries report errors through longjmp from our handlers, so a
 * damaged file becomes an nm_error, never an exit() or a crash. Sizes are
 * checked before any pixel buffer is allocated. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "core/atomic_file.h"
#include "core/error.h"

#define NM_IMAGE_MAX_SIDE 65535
#define NM_IMAGE_MAX_PIXELS ((int64_t)1 << 28)
#define NM_IMAGE_MAX_FILE ((long long)1 << 31)

void nm_image_free(nm_image *img)
{
    if (!img) return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = img->c = 0;
}

/* Refuse empty or oversized images; on success *bytes is the size of the
 * w*h*c floats. */
static nm_status image_check(const char *path, int64_t w, int64_t h, int c, size_t *bytes,
                             nm_error *err)
{
    int64_t pixels;
    if (w <= 0 || h <= 0) return nm_fail(err, NM_ERR_PARSE, "%s: image is %lldx%lld", path,
                                         (long long)w, (long long)h);
    if (w > NM_IMAGE_MAX_SIDE || h > NM_IMAGE_MAX_SIDE || !nm_mul_i64(w, h, &pixels) ||
        pixels > NM_IMAGE_MAX_PIXELS)
        return nm_fail(err, NM_ERR_LIMIT, "%s: image of %lldx%lld pixels is above the limit "
                       "(side %d, %lld pixels)", path, (long long)w, (long long)h,
                       NM_IMAGE_MAX_SIDE, (long long)NM_IMAGE_MAX_PIXELS);
    if (!nm_mul_size((size_t)pixels, (size_t)c * sizeof(float), bytes))
        return nm_fail(err, NM_ERR_LIMIT, "%s: image too large", path);
    return NM_OK;
}

/* image_check, then allocate img->data for w*h*c floats. */
static nm_status image_alloc(const char *path, int64_t w, int64_t h, int c, nm_image *img,
                             nm_error *err)
{
    size_t bytes;
    nm_status st = image_check(path, w, h, c, &bytes, err);
    if (st != NM_OK) return st;
    img->data = malloc(bytes);
    if (!img->data) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for a %lldx%lld image",
                                   path, (long long)w, (long long)h);
    img->w = (int)w;
    img->h = (int)h;
    img->c = c;
    return NM_OK;
}

/* Whole file into memory (images are decoded from memory so that a short
 * file is seen as "truncated", not as a read error in the middle). */
static nm_status read_file(const char *path, unsigned char **bytes, size_t *size, nm_error *err)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f) return nm_fail(err, NM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        int dir = S_ISDIR(st.st_mode);
        fclose(f);
        return nm_fail(err, NM_ERR_IO, "%s: %s", path, dir ? "is a directory" : "not a regular file");
    }
    if ((long long)st.st_size > NM_IMAGE_MAX_FILE) {
        fclose(f);
        return nm_fail(err, NM_ERR_LIMIT, "%s: file of %lld bytes is too large for an image", path,
                       (long long)st.st_size);
    }
    *size = (size_t)st.st_size;
    *bytes = malloc(*size ? *size : 1);
    if (!*bytes) {
        fclose(f);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory reading the file", path);
    }
    if (fread(*bytes, 1, *size, f) != *size) {
        int e = errno;
        fclose(f);
        free(*bytes);
        *bytes = NULL;
        return nm_fail(err, NM_ERR_IO, "%s: read error: %s", path, strerror(e));
    }
    fclose(f);
    return NM_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_reader {
    const unsigned char *bytes;
    size_t size, pos;
    const char *path;
    nm_status code;
    char msg[200];
    jmp_buf jmp;
} png_reader;

static void png_read_mem(png_structp png, png_bytep out, png_size_t n)
{
    png_reader *r = png_get_io_ptr(png);
    if (n > r->size - r->pos) {
        r->code = NM_ERR_PARSE;
        snprintf(r->msg, sizeof r->msg, "truncated PNG");
        png_error(png, "truncated");
    }
    memcpy(out, r->bytes + r->pos, n);
    r->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_reader *r = png_get_error_ptr(png);
    if (r->code == NM_OK) {
        r->code = NM_ERR_PARSE;
        snprintf(r->msg, sizeof r->msg, "bad PNG (%s)", msg);
    }
    longjmp(r->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;   /* warnings (e.g. a bad ancillary chunk) do not stop decoding */
}

/* The IHDR is read by hand first so that a 0x0 or absurd size gets a clear
 * message before libpng allocates anything. */
static nm_status png_check_header(const char *path, const unsigned char *b, size_t n, nm_error *err)
{
    uint32_t w, h;
    if (n < 33) return nm_fail(err, NM_ERR_PARSE, "%s: truncated PNG", path);
    if (be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
        return nm_fail(err, NM_ERR_PARSE, "%s: bad PNG (no IHDR chunk first)", path);
    w = be32(b + 16);
    h = be32(b + 20);
    if (w == 0 || h == 0) return nm_fail(err, NM_ERR_PARSE, "%s: image is %ux%u", path, w, h);
    if (w > NM_IMAGE_MAX_SIDE || h > NM_IMAGE_MAX_SIDE || (uint64_t)w * h > (uint64_t)NM_IMAGE_MAX_PIXELS)
        return nm_fail(err, NM_ERR_LIMIT, "%s: image of %ux%u pixels is above the limit "
                       "(side %d, %lld pixels)", path, w, h, NM_IMAGE_MAX_SIDE,
                       (long long)NM_IMAGE_MAX_PIXELS);
    return NM_OK;
}

/* Rows decoded by libpng: 8 or 16 bits, 1 or 3 channels after transforms. */
static void png_rows_to_float(png_bytep *rows, int w, int h, int c, int depth, float *out)
{
    for (int y = 0; y < h; y++) {
        const png_byte *row = rows[y];
        float *dst = out + (size_t)y * w * c;
        if (depth == 16) {
            for (int i = 0; i < w * c; i++) dst[i] = (float)((row[2 * i] << 8 | row[2 * i + 1]) / 65535.0);
        } else {
            for (int i = 0; i < w * c; i++) dst[i] = (float)(row[i] / 255.0);
        }
    }
}

static nm_status load_png(const char *path, const unsigned char *bytes, size_t size, nm_image *img,
                          nm_error *err)
{
    png_reader r = { .bytes = bytes, .size = size, .path = path, .code = NM_OK };
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep pixels = NULL;
    png_bytep *rows = NULL;
    nm_status st = png_check_header(path, bytes, size, err);
    if (st != NM_OK) return st;

    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_on_error, png_on_warning);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for the PNG decoder", path);
    }
    /* Everything touched after setjmp and read after longjmp is volatile or
     * set before setjmp. */
    png_bytep *volatile vrows = NULL;
    png_bytep volatile vpixels = NULL;
    if (setjmp(r.jmp)) {
        free(vrows);
        free(vpixels);
        png_destroy_read_struct(&png, &info, NULL);
        nm_image_free(img);
        return nm_fail(err, r.code, "%s: %s", path, r.msg);
    }
    png_set_read_fn(png, &r, png_read_mem);
    png_set_user_limits(png, NM_IMAGE_MAX_SIDE, NM_IMAGE_MAX_SIDE);
    png_read_info(png, info);

    int color = png_get_color_type(png, info);
    /* palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha (stripped next). */
    png_set_expand(png);
    png_set_strip_alpha(png);
    int passes = png_set_interlace_handling(png);
    (void)passes;
    png_read_update_info(png, info);

    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int c = png_get_channels(png, info);
    int depth = png_get_bit_depth(png, info);
    if (c != 1 && c != 3) {
        r.code = NM_ERR_UNSUPPORTED;
        snprintf(r.msg, sizeof r.msg, "PNG colour type %d gives %d channels", color, c);
        longjmp(r.jmp, 1);
    }
    size_t rowbytes = png_get_rowbytes(png, info), total;
    if (!nm_mul_size(rowbytes, (size_t)h, &total)) {
        r.code = NM_ERR_LIMIT;
        snprintf(r.msg, sizeof r.msg, "image too large");
        longjmp(r.jmp, 1);
    }
    vpixels = pixels = malloc(total);
    vrows = rows = malloc((size_t)h * sizeof *rows);
    if (!pixels || !rows) {
        r.code = NM_ERR_MEMORY;
        snprintf(r.msg, sizeof r.msg, "out of memory for a %dx%d image", w, h);
        longjmp(r.jmp, 1);
    }
    for (int y = 0; y < h; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    st = image_alloc(path, w, h, c, img, err);
    if (st == NM_OK) png_rows_to_float(rows, w, h, c, depth, img->data);
    free(rows);
    free(pixels);
    png_destroy_read_struct(&png, &info, NULL);
    return st;
}

/* ----------------------------------------------------------------- JPEG */

typedef struct jpeg_guard {
    struct jpeg_error_mgr mgr;   /* first: libjpeg sees a jpeg_error_mgr */
    jmp_buf jmp;
    int truncated;
    char msg[JMSG_LENGTH_MAX];
} jpeg_guard;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    cinfo->err->format_message(cinfo, g->msg);
    longjmp(g->jmp, 1);
}

/* Warnings (level -1) are mostly recoverable corruption, which we accept as
 * other decoders do; running out of data is not: libjpeg would pad the image
 * with grey and call it a success. That is the end of the file, or a marker
 * (EOI) where the compressed data still had rows to give: a few hundred bytes
 * would otherwise make a grey image of gigabytes. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    if (level == -1 && (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER)) {
        g->truncated = 1;
        longjmp(g->jmp, 1);
    }
}

static nm_status load_jpeg(const char *path, const unsigned char *bytes, size_t size, nm_image *img,
                           nm_error *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_guard guard;
    JSAMPLE *volatile row = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&guard, 0, sizeof guard);
    cinfo.err = jpeg_std_error(&guard.mgr);
    guard.mgr.error_exit = jpeg_on_error;
    guard.mgr.emit_message = jpeg_on_message;
    if (setjmp(guard.jmp)) {
        free(row);
        jpeg_destroy_decompress(&cinfo);
        nm_image_free(img);
        if (guard.truncated) return nm_fail(err, NM_ERR_PARSE, "%s: truncated JPEG", path);
        return nm_fail(err, NM_ERR_PARSE, "%s: bad JPEG (%s)", path, guard.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    J_COLOR_SPACE cs = cinfo.jpeg_color_space;
    if (cs == JCS_CMYK || cs == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: CMYK JPEG images are not supported", path);
    }
    int c = cs == JCS_GRAYSCALE ? 1 : 3;
    cinfo.out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    size_t total;
    nm_status st = image_check(path, cinfo.image_width, cinfo.image_height, c, &total, err);
    if (st != NM_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    img->w = (int)cinfo.image_width;
    img->h = (int)cinfo.image_height;
    img->c = c;
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_components != c) {
        jpeg_destroy_decompress(&cinfo);
        nm_image_free(img);
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: JPEG with %d components is not supported",
                       path, cinfo.output_components);
    }
    row = malloc((size_t)img->w * c);
    if (!row) {
        jpeg_destroy_decompress(&cinfo);
        nm_image_free(img);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", path);
    }
    /* The pixels grow with the rows decoded (doubling), so that a damaged
     * file claiming a huge size costs memory in proportion to what it holds,
     * not the gigabytes its header asks for. */
    size_t row_floats = (size_t)img->w * c, cap_rows = 0;
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        if (y == cap_rows) {
            cap_rows = cap_rows ? 2 * cap_rows : 64;
            if (cap_rows > (size_t)img->h) cap_rows = (size_t)img->h;
            float *more = realloc(img->data, cap_rows == (size_t)img->h ? total
                                                                      : cap_rows * row_floats * sizeof(float));
            if (!more) {
                jpeg_destroy_decompress(&cinfo);
                free(row);
                nm_image_free(img);
                return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for a %dx%d image", path,
                               (int)cinfo.image_width, (int)cinfo.image_height);
            }
            img->data = more;
        }
        float *dst = img->data + y * row_floats;
        JSAMPROW rows[1] = { row };
        jpeg_read_scanlines(&cinfo, rows, 1);
        for (size_t i = 0; i < row_floats; i++) dst[i] = (float)(row[i] / 255.0);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return NM_OK;
}

/* --------------------------------------------------------------- public */

nm_status nm_image_load_memory(const void *data, size_t size, const char *name, nm_image *img,
                               nm_error *err)
{
    static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    const unsigned char *bytes = data;
    memset(img, 0, sizeof *img);
    if (!name) name = "<memory>";
    if (!bytes && size) return nm_fail(err, NM_ERR_ARG, "%s: nm_image_load_memory: no bytes", name);
    if (size == 0) return nm_fail(err, NM_ERR_PARSE, "%s: empty file", name);
    if (size >= 8 && memcmp(bytes, png_sig, 8) == 0) return load_png(name, bytes, size, img, err);
    if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        return load_jpeg(name, bytes, size, img, err);
    return nm_fail(err, NM_ERR_PARSE, "%s: not a PNG or JPEG image", name);
}

nm_status nm_image_load(const char *path, nm_image *img, nm_error *err)
{
    unsigned char *bytes = NULL;
    size_t size = 0;
    memset(img, 0, sizeof *img);
    if (!path) return nm_fail(err, NM_ERR_ARG, "nm_image_load: no path");
    nm_status st = read_file(path, &bytes, &size, err);
    if (st != NM_OK) return st;
    st = nm_image_load_memory(bytes, size, path, img, err);
    free(bytes);
    return st;
}

/* ---------------------------------------------------------------- write */

typedef struct png_writer {
    char msg[200];
    jmp_buf jmp;
} png_writer;

static void png_write_on_error(png_structp png, png_const_charp msg)
{
    png_writer *w = png_get_error_ptr(png);
    snprintf(w->msg, sizeof w->msg, "%s", msg);
    longjmp(w->jmp, 1);
}

static unsigned char to_u8(float x)
{
    if (!(x > 0.0f)) return 0;   /* also NaN */
    if (x >= 1.0f) return 255;
    return (unsigned char)(x * 255.0f + 0.5f);
}

/* Encode img to an already open file. */
static nm_status png_encode(FILE *f, const char *path, const nm_image *img, nm_error *err)
{
    png_writer wr = { .msg = "" };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &wr, png_write_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile row = NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory for the PNG encoder", path);
    }
    if (setjmp(wr.jmp)) {
        free(row);
        png_destroy_write_struct(&png, &info);
        return nm_fail(err, NM_ERR_IO, "%s: writing PNG: %s", path, wr.msg);
    }
    row = malloc((size_t)img->w * img->c);
    if (!row) png_error(png, "out of memory");
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8,
                 img->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->h; y++) {
        const float *src = img->data + (size_t)y * img->w * img->c;
        for (int i = 0; i < img->w * img->c; i++) row[i] = to_u8(src[i]);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    free(row);
    png_destroy_write_struct(&png, &info);
    return NM_OK;
}

nm_status nm_image_write_png(const char *path, const nm_image *img, nm_error *err)
{
    if (!path || !img || !img->data || img->w <= 0 || img->h <= 0 || (img->c != 1 && img->c != 3))
        return nm_fail(err, NM_ERR_ARG, "%s: nm_image_write_png needs a 1- or 3-channel image",
                       path ? path : "(null)");
    if (img->w > NM_IMAGE_MAX_SIDE || img->h > NM_IMAGE_MAX_SIDE)
        return nm_fail(err, NM_ERR_LIMIT, "%s: image of %dx%d pixels is too large for PNG", path,
                       img->w, img->h);
    /* Written under a temporary name and renamed: readers never see a
     * half-written file and a failure leaves nothing behind. */
    char tmp[4096];
    FILE *f = nm_atomic_open(path, tmp, sizeof tmp, err);
    if (!f) return err ? err->code : NM_ERR_IO;
    nm_status st = png_encode(f, path, img, err);
    if (st != NM_OK) {
        nm_atomic_abort(f, tmp);
        return st;
    }
    return nm_atomic_commit(f, tmp, path, err);
}
