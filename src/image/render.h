/* Pictures of an explanation: colour maps, the mask as an image, the mask
 * over the image, and a captioned panel of them side by side. Maps are
 * w x h floats (row-major), the size of the image they explain, drawn
 * through an nm_map_scale chosen by the kind of map.
 * Every function that returns an image allocates out->data; free it with
 * nm_image_free. */
#ifndef NM_IMAGE_RENDER_H
#define NM_IMAGE_RENDER_H

#include "neuromask.h"

#define NM_PANEL_MIN_TILE 128   /* tiles are enlarged by an integer factor to at least this */
#define NM_PANEL_GAP 4          /* pixels between tiles */

#define NM_PANEL_BAR_W 14      /* width of the colour bar */

/* Colour of v (clamped to [0,1]; NaN reads as 0) in the map `name`:
 * "turbo" (the default, also for NULL), "viridis", "inferno", "gray", and
 * "diverging" (blue at 0, white at 0.5, red at 1: for signed maps). */
void nm_colormap(const char *name, float v, float rgb[3]);
/* 1 when `name` is a map nm_colormap knows. */
int nm_colormap_known(const char *name);

/* How the values of a map are drawn: [lo, hi] spans the colour map. */
typedef struct nm_map_scale {
    nm_map_kind kind;
    float lo, hi;           /* the values drawn at the colour map's two ends */
    const char *cmap;       /* nm_colormap name */
} nm_map_scale;

/* Maps other than masks are drawn up to this percentile of |v|, so that a
 * few extreme pixels (typical of gradient maps) do not wash out the rest;
 * values beyond it take the colour map's end. */
#define NM_MAP_CLIP_PERCENTILE 99.5

/* The scale of an n-value map of this kind. Masks: 0..1 ("inferno"). Signed
 * maps: -a..+a with a = the NM_MAP_CLIP_PERCENTILE-th percentile of |v|
 * ("diverging": 0 is white, so no evidence draws as nothing). Non-negative
 * maps: 0..a ("inferno"; min..a when a value is below 0). A span of 0
 * becomes lo..lo + 1. */
nm_map_scale nm_map_scale_of(const float *map, int n, nm_map_kind kind);
/* (v - lo) / (hi - lo) clamped to [0,1] (NaN reads as 0). */
float nm_map_scale_unit(const nm_map_scale *s, float v);

/* The map as an image of w x h pixels: masks and non-negative maps grey
 * (1 channel, white = lo..hi's top), signed maps in colour (3 channels). */
nm_status nm_render_map(const float *map, int w, int h, const nm_map_scale *s, nm_image *out,
                        nm_error *err);

/* RGB: the map's colour over the image, (1 - a) * image + a * colour, a
 * grey image expanded to RGB first. a = alpha, except for signed maps:
 * alpha * |v| / max(|lo|, |hi|), so a value of 0 leaves the image as it is.
 * alpha in [0,1]. */
nm_status nm_render_overlay(const nm_image *img, const float *map, const nm_map_scale *s, float alpha,
                            nm_image *out, nm_error *err);

/* RGB panel: image | mask or map | overlay (alpha 0.5) [| masked image
 * (image * mask), masks only] | a colour bar labelled with the scale (lo,
 * the middle or 0, hi), each tile titled and enlarged with nearest neighbour
 * to at least NM_PANEL_MIN_TILE pixels tall, with `lines` of caption below,
 * black on white. */
nm_status nm_render_panel(const nm_image *img, const float *map, const nm_map_scale *s,
                          const char *const *lines, int n_lines, nm_image *out, nm_error *err);

#endif
