/* The library in a few calls: load a model, preprocess an image, learn its
 * NeuroMask, print the target and how much of the image the mask keeps.
 * Usage: explain_one MODEL.onnx RECIPE IMAGE */
#include <stdio.h>
#include <stdlib.h>

#include "neuromask.h"

int main(int argc, char **argv)
{
    if (argc != 4) return fprintf(stderr, "usage: %s MODEL.onnx RECIPE IMAGE\n", argv[0]), 2;
    nm_error err;
    nm_model *model = NULL;
    nm_preprocess pp, identity = {.scale = 1, .std = {1, 1, 1}};
    nm_image img = {0}, view = {0};
    nm_neuromask_options opt;
    nm_explanation ex;
    if (nm_model_load_file(argv[1], NULL, &model, &err) || nm_preprocess_recipe(argv[2], &pp, &err) ||
        nm_image_load(argv[3], &img, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    nm_shape in = nm_model_input_shape(model);   /* [1, C, H, W] */
    int c = (int)in.dims[1], h = (int)in.dims[2], w = (int)in.dims[3];
    float *x = malloc(sizeof(float) * (size_t)(c * h * w));
    /* Geometry (resize, crop) first; the masking happens in pixel space and
     * NeuroMask applies the normalisation of `pp` itself. */
    if (!x || nm_preprocess_geometry(&pp, &img, h, w, &view, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    nm_preprocess_normalize(&identity, &view, c, x);
    nm_neuromask_preset(nm_neuromask_preset_for(h), &opt, &err);
    if (nm_neuromask_explain(model, &pp, x, 1, &opt, &ex, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    double mean = 0;
    for (int i = 0; i < h * w; i++) mean += ex.mask[i];
    printf("class %d: p %.3f -> %.3f with the mask (mean %.3f), %.2f s\n", ex.target[0], ex.prob_before[0],
           ex.prob_after[0], mean / (h * w), ex.seconds);
    nm_explanation_free(&ex);
    nm_image_free(&img);
    nm_image_free(&view);
    free(x);
    nm_model_free(model);
    return 0;
}
