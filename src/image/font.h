/* A small bitmap font for captions on rendered images: printable ASCII in a
 * 5x8 cell (7 rows above the baseline, 1 for descenders), advanced 6 columns
 * per character. Other bytes draw as a box. */
#ifndef NM_IMAGE_FONT_H
#define NM_IMAGE_FONT_H

#include "neuromask.h"

#define NM_FONT_ADVANCE 6   /* columns per character at scale 1, gap included */
#define NM_FONT_HEIGHT 8    /* rows of a glyph at scale 1, descender included */

/* Draw `text` with its top-left corner at (x, y), each font pixel a
 * scale x scale square; pixels outside the image are clipped. For a
 * 1-channel image the colour's luminance is drawn. */
void nm_font_draw(nm_image *img, int x, int y, const char *text, int scale, const float rgb[3]);

/* Width in pixels of the ink of `text` (no trailing gap); 0 for "". */
int nm_font_width(const char *text, int scale);

#endif
