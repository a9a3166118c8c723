/* Grad-CAM (Selvaraju et al. 2017): weights alpha_k = spatial mean of
 * d logit_c / dA_k over a convolutional layer's maps A, map = ReLU(sum_k
 * alpha_k A_k), upsampled bilinearly (half-pixel centres, as
 * F.interpolate(mode='bilinear', align_corners=False)) to the input size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "explain/mask_terms.h"
#include "explain/saliency.h"

const char *nm_gradcam_layer(const nm_model *m, const nm_saliency_options *o, nm_error *err)
{
    int n = nm_model_spatial_tensors(m, NULL, 0);
    const char **names = n > 0 ? malloc(sizeof(char *) * (size_t)n) : NULL;
    if (!names) {
        nm_fail(err, n > 0 ? NM_ERR_MEMORY : NM_ERR_UNSUPPORTED, "the model has no spatial tensor for Grad-CAM");
        return NULL;
    }
    nm_model_spatial_tensors(m, names, n);
    const char *layer = o && o->gradcam_layer ? o->gradcam_layer : names[n - 1];
    int found = 0;
    for (int i = 0; i < n && !found; i++) found = !strcmp(names[i], layer);
    if (!found) {
        char list[360] = "";
        size_t len = 0;
        for (int i = n - 1; i >= 0 && len < sizeof list; i--)   /* the last ones, the usual choices, first */
            len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", i < n - 1 ? ", " : "", names[i]);
        if (len >= sizeof list) strcpy(list + sizeof list - 5, " ...");
        nm_fail(err, NM_ERR_ARG, "Grad-CAM layer '%.64s' is not a spatial tensor of the model; its %d spatial "
                                 "tensors, last first: %s", layer, n, list);
        layer = NULL;
    }
    free(names);
    return layer;
}

nm_status sal_gradcam(sal_ctx *s, nm_saliency *out, nm_error *err)
{
    const char *layer = nm_gradcam_layer(s->m, s->o, err);
    if (!layer) return err ? err->code : NM_ERR_UNSUPPORTED;
    /* sal_prepare's forward pass was x itself at batch 1. */
    sal_onehot(s, 1);
    nm_status st = sal_backward(s, 1, NULL, err);
    if (st) return st;
    nm_shape shape;
    const float *a, *g;
    st = nm_model_tensor(s->m, layer, &shape, &a, &g, err);
    if (st) return st;
    if (shape.ndim != 4 || shape.dims[0] != 1)
        return nm_fail(err, NM_ERR_ARG, "Grad-CAM layer '%s' is not a [1,K,h,w] tensor", layer);
    if (!g) return nm_fail(err, NM_ERR_ARG, "Grad-CAM layer '%s' does not depend on the input", layer);
    int k = (int)shape.dims[1], h = (int)shape.dims[2], w = (int)shape.dims[3], hw = h * w;
    float *cam = calloc((size_t)hw, sizeof(float));
    if (!cam) return nm_fail(err, NM_ERR_MEMORY, "out of memory for Grad-CAM");
    for (int c = 0; c < k; c++) {
        const float *ac = a + (size_t)c * hw, *gc = g + (size_t)c * hw;
        double alpha = 0;
        for (int i = 0; i < hw; i++) alpha += gc[i];
        alpha /= hw;
        for (int i = 0; i < hw; i++) cam[i] += (float)alpha * ac[i];
    }
    for (int i = 0; i < hw; i++) cam[i] = cam[i] > 0 ? cam[i] : 0;
    upsample_bilinear_forward(cam, h, w, out->map, s->H, s->W);
    free(cam);
    return NM_OK;
}
