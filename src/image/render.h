/* Pictures of an explanation: colour maps, the mask as an image, the mask
 * over the image, and a captioned panel of them side by side. Masks are
 * w x h floats in [0,1] (row-major), the size of the image they explain.
 * Every function that returns an image allocates out->data; free it with
 * nm_image_free. */
#ifndef NM_IMAGE_RENDER_H
#define NM_IMAGE_RENDER_H

#include "neuromask.h"

#define NM_PANEL_MIN_TILE 128   /* tiles are enlarged by an integer factor to at least this */
#define NM_PANEL_GAP 4          /* pixels between tiles */

/* Colour of v (clamped to [0,1]; NaN reads as 0) in the map `name`:
 * "turbo" (the default, also for NULL), "viridis", "inferno", "gray". */
void nm_colormap(const char *name, float v, float rgb[3]);
/* 1 when `name` is a map nm_colormap knows. */
int nm_colormap_known(const char *name);

/* The mask as a 1-channel image (white = kept). */
nm_status nm_render_mask(const float *mask, int w, int h, nm_image *out, nm_error *err);

/* RGB: (1 - alpha) * image + alpha * cmap(mask); a grey image is expanded
 * to RGB first. alpha in [0,1]. */
nm_status nm_render_overlay(const nm_image *img, const float *mask, float alpha, const char *cmap,
                            nm_image *out, nm_error *err);

/* RGB panel: image | mask | overlay (turbo, alpha 0.5) | masked image
 * (image * mask), each titled and enlarged with nearest neighbour to at
 * least NM_PANEL_MIN_TILE pixels tall, with `lines` of caption below, black
 * on white. */
nm_status nm_render_panel(const nm_image *img, const float *mask, const char *const *lines,
                          int n_lines, nm_image *out, nm_error *err);

#endif
