/* ROAD, Remove And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci, ICML
 * 2022, "A Consistent and Efficient Evaluation Strategy for Attribution
 * Methods"), without retraining: the pixels that the map ranks first
 * (MoRF) or last (LeRF) are removed and filled by noisy linear imputation,
 * at the removal fractions of the paper's experiments, and the model's
 * probability of the target is measured (docs/metrics.md). */
#ifndef NM_EVAL_ROAD_H
#define NM_EVAL_ROAD_H

#include <stdint.h>

#include "neuromask.h"

/* The removal fractions of the paper's CIFAR-10 experiments and its
 * reference code (road_evaluation, percentages). */
#define NM_ROAD_FRACTIONS 7
extern const double nm_road_fractions[NM_ROAD_FRACTIONS];
/* The reference code's noise: N(0, 0.01^2) in pixel space [0, 1]. */
#define NM_ROAD_NOISE 0.01f

/* Noisy linear imputation of x [c,h,w] (pixel space) into out [c,h,w]: the
 * pixels with removed[i] != 0 take the values that make each of them the
 * weighted mean of its in-image neighbours (weights 1/6 for the 4 direct,
 * 1/12 for the 4 diagonal neighbours; removed neighbours are unknowns too),
 * plus Gaussian noise of standard deviation `noise` drawn from `seed`; the
 * other pixels are copied. The system is symmetric positive definite; it is
 * solved per channel by conjugate gradients in double precision to a
 * relative residual of 1e-9. NM_ERR_ARG when every pixel is removed.
 * *iterations (optional): the most CG iterations of a channel. */
nm_status nm_road_impute(const float *x, int c, int h, int w, const unsigned char *removed, float noise,
                         uint64_t seed, float *out, int *iterations, nm_error *err);

typedef struct nm_road_result {
    float morf[NM_ROAD_FRACTIONS];      /* target probability with the top fraction removed */
    float lerf[NM_ROAD_FRACTIONS];      /* ... with the bottom fraction removed */
    int morf_top1[NM_ROAD_FRACTIONS];   /* 1 when the target stays the top-1 class */
    int lerf_top1[NM_ROAD_FRACTIONS];
    double morf_mean, lerf_mean;        /* means over the fractions; LeRF - MoRF: higher is better */
} nm_road_result;

/* ROAD of `map` (h x w, ranked descending, ties by index) for class
 * `target` on x [c,h,w] in pixel space: for each fraction f, the top (MoRF)
 * or bottom (LeRF) floor(h*w*f) pixels imputed (noise sd `noise`, a seed
 * per image drawn from `seed`), the 14 images through the model `batch` at a
 * time (the model is re-planned for it). */
nm_status nm_road(nm_model *m, const nm_preprocess *pp, const float *x, const float *map, int target, float noise,
                  uint64_t seed, int batch, nm_road_result *out, nm_error *err);

#endif
