/* The body shared by the PNG and JPEG fuzz targets: decode, then what the
 * CLI does with an image (geometry to a small model size, normalisation, and
 * a map mapped back onto the original). The recipe and size come from the
 * input's length, so every input replays the same way. */
#ifndef NM_FUZZ_IMAGE_H
#define NM_FUZZ_IMAGE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "neuromask.h"

/* The size a resize to short side s makes of w x h, as the library computes
 * it, and whether the library must refuse it (above 65535 a side or 2^28
 * pixels). */
static int nm_fuzz_resize_refused(double w, double h, double s, double *pixels)
{
    double lw = w <= h ? s : floor(s * w / h), lh = w <= h ? floor(s * h / w) : s;
    *pixels = lw * lh;
    return lw > 65535 || lh > 65535 || lw * lh > (double)(1 << 28);
}

/* Resampling big images is slow under the fuzzer's instrumentation, and its
 * cost does not depend on the bytes: geometry runs on images up to 2^14
 * pixels (16384 x 1 included) whose resize makes at most 2^18 pixels, or more
 * than the library allows (it must refuse). */
static int nm_fuzz_geometry_cheap(const nm_preprocess *pp, const nm_image *img)
{
    double pixels;
    if ((double)img->w * img->h > (1 << 14)) return 0;
    if (pp->resize_short <= 0) return 1;
    return nm_fuzz_resize_refused(img->w, img->h, pp->resize_short, &pixels) || pixels <= (1 << 18);
}

static void nm_fuzz_image(const uint8_t *data, size_t size, const char *name)
{
    static const char *const recipes[] = { "cifar", "torchvision", "darknet", "inception", "fashion" };
    nm_image img, geo;
    nm_preprocess pp;
    nm_error err = { 0 };
    if (nm_image_load_memory(data, size, name, &img, &err) != NM_OK) return;
    int side = 8 + (int)(size % 3) * 12, c = (size / 3) % 2 ? 1 : 3;
    nm_preprocess_recipe(recipes[size % 5], &pp, &err);
    /* The recipe's steps at this small size (256 / 224 would cost the most
     * and test nothing more), unless its own resize must be refused. */
    double pixels;
    if (!(pp.resize_short > 0 && nm_fuzz_resize_refused(img.w, img.h, pp.resize_short, &pixels))) {
        if (pp.resize_short) pp.resize_short = side + 4;
        if (pp.crop) pp.crop = side + 2;
    }
    if (nm_fuzz_geometry_cheap(&pp, &img) && nm_preprocess_geometry(&pp, &img, side, side, &geo, &err) == NM_OK) {
        size_t plane = (size_t)side * side;
        float *x = malloc(c * plane * sizeof *x), *map = malloc(plane * sizeof *map);
        float *back = malloc((size_t)img.w * img.h * sizeof *back);
        if (x) nm_preprocess_normalize(&pp, &geo, c, x);
        if (map && back) {
            for (size_t i = 0; i < plane; i++) map[i] = (float)(i % 7) / 7.0f;
            nm_preprocess_unmap(&pp, map, side, side, img.h, img.w, back);
        }
        free(x);
        free(map);
        free(back);
        nm_image_free(&geo);
    }
    nm_image_free(&img);
}

#endif
