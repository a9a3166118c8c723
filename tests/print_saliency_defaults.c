/* Prints nm_saliency_defaults as JSON with the keys `neuromask explain`
 * records under "options" (NeuroMask's grid resolved at H x W), so a test
 * can check that the command line explains with the library's defaults.
 * Usage: print_saliency_defaults H W */
#include <stdio.h>
#include <stdlib.h>

#include "neuromask.h"

int main(int argc, char **argv)
{
    static const char *const baselines[] = {"black", "blur", "mean", "noise"};
    if (argc != 3) return fprintf(stderr, "usage: %s H W\n", argv[0]), 2;
    nm_saliency_options s;
    nm_saliency_defaults(&s);
    const nm_neuromask_options *n = &s.neuromask;
    static const char *const optimizers[] = {"rmsprop", "adam", "normalized"};
    printf("{\"neuromask\": {\"class\": %d, \"steps\": %d, \"lr\": %.6g, \"l_pred\": %.6g, \"l_sparse\": %.6g, "
           "\"l_smooth\": %.6g, \"temperature\": %.6g, \"init_range\": %.6g, \"kernel\": %d, \"optimizer\": \"%s\", "
           "\"baseline\": \"%s\", \"blur_sigma\": %.6g, \"grid\": %d, \"tol\": %.6g, \"window\": %d, "
           "\"early_stop\": %s, \"init\": \"%s\", \"sparsity\": \"%s\", \"l_delete\": %.6g, \"alt_fill\": %d, "
           "\"alt_baseline\": \"%s\", \"average\": %d, \"calibrate\": %d, \"seed\": %llu},\n",
           n->target_class, n->steps, (double)n->lr, (double)n->l_pred, (double)n->l_sparse, (double)n->l_smooth,
           (double)n->temperature, (double)n->init_range, n->kernel, optimizers[n->optimizer],
           baselines[n->baseline], (double)n->blur_sigma, nm_neuromask_grid(n, atoi(argv[1]), atoi(argv[2])),
           (double)n->tol, n->window, n->early_stop ? "true" : "false", n->init == NM_INIT_ZERO ? "zero" : "uniform",
           n->sparsity == NM_SPARSITY_MASK ? "mask" : "logit", (double)n->l_delete, n->alt_fill,
           baselines[n->alt_baseline], n->average, n->calibrate, (unsigned long long)n->seed);
    printf(" \"methods\": {\"class\": %d, \"seed\": %llu, \"batch\": %d, \"ig_steps\": %d, \"ig_baseline\": \"%s\", "
           "\"sg_samples\": %d, \"sg_sigma\": %.6g, \"rise_masks\": %d, \"rise_cell\": %d, \"rise_p\": %.6g, "
           "\"occ_fill\": \"%s\", \"mp_l1\": %.6g, \"mp_tv\": %.6g, \"pert_steps\": %d}}\n",
           s.target_class, (unsigned long long)s.seed, s.batch, s.ig_steps, baselines[s.ig_baseline], s.sg_samples,
           (double)s.sg_sigma, s.rise_masks, s.rise_cell, (double)s.rise_p, baselines[s.occ_fill], (double)s.mp_l1,
           (double)s.mp_tv, s.pert_steps);
    return 0;
}
