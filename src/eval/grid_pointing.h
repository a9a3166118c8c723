/* The grid pointing game (Böhle, Fritz, Schiele: CoDA-Nets, CVPR 2021;
 * B-cos networks, CVPR 2022): a 2 x 2 composite of images of four classes,
 * each explained for its own class; a map that localizes puts its mass in
 * that image's tile (docs/metrics.md). */
#ifndef NM_EVAL_GRID_POINTING_H
#define NM_EVAL_GRID_POINTING_H

#include <stdint.h>

#include "neuromask.h"

/* Tile t (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of an
 * h x w composite: rows [(t / 2) * (h / 2), + h / 2), columns [(t % 2) *
 * (w / 2), + w / 2); with an odd side the last row or column is in no tile. */
#define NM_GRID_TILES 4

typedef struct nm_grid_score {
    double top_share;       /* share of the map's top h*w/4 pixels (descending, ties by index) in the tile */
    int hit;                /* the map's maximum (the first by index) lies in the tile */
    double positive_share;  /* sum of max(map, 0) in the tile / over the map (Böhle et al.'s
                               localisation); NaN when no value is positive */
} nm_grid_score;

/* Scores of an h x w map for tile `tile`. NM_ERR_ARG for a bad tile or a
 * map too small (h, w < 2), NM_ERR_MEMORY. */
nm_status nm_grid_score_map(const float *map, int h, int w, int tile, nm_grid_score *out, nm_error *err);

/* Picks composites from n candidates of classes cls[0..n-1] (the images
 * the model classifies correctly on their own): the candidates shuffled by
 * `seed` (splitmix64, Fisher-Yates), then each composite takes the first
 * unused candidates of four distinct classes; each candidate is used at
 * most once. Writes candidate indices to out[4 k + t] and returns the
 * number of composites made (at most `want`). */
int nm_grid_pick(const int *cls, int n, int want, uint64_t seed, int *out);

#endif
