/* `neuromask eval --grid-pointing`: builds 2 x 2 composites of images of
 * four classes, each classified correctly on its own, explains each tile's
 * class on the composite with every method and scores the maps
 * (src/eval/grid_pointing.h). Writes DIR/composites.csv (which images, so
 * that others can rebuild or rescore), DIR/grid_pointing.csv (one row per
 * composite, tile and method), DIR/grid/NNNN.npy (the composite, pixel
 * space [C,H,W] float32) and .png, and with --save-maps
 * DIR/maps/grid_NNNN_tT.METHOD.npy. */
#ifndef NM_CLI_EVAL_GRID_H
#define NM_CLI_EVAL_GRID_H

#include "eval/report.h"

typedef struct eval_grid_input {
    nm_model *model;
    const nm_preprocess *pre;
    int c, h, w;
    int n_images;
    char *const *images;
    const nm_eval_image *info;      /* label and top-1 class of each image at full size */
    int n_methods;
    const nm_method *methods;
    const char *const *method_names;
    const nm_saliency_options *so;  /* the run's method options */
    uint64_t seed;
    int composites;                 /* how many to make (fewer when the images do not allow) */
    const char *out;
    int quiet, save_maps;
} eval_grid_input;

/* Plays the game; stats[n_methods] gets the per-method sums, *made the
 * number of composites. Returns CLI_OK or prints one error line. */
int eval_grid_run(const eval_grid_input *in, nm_eval_grid_stats *stats, int *made);

#endif
