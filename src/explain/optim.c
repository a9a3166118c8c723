#include "explain/optim.h"

#include <math.h>
#include <stdlib.h>

/* TensorFlow 1 RMSPropOptimizer defaults: decay 0.9, momentum 0, epsilon 1e-10
 * inside the square root, mean-square slot initialised to ones. */
#define RMS_DECAY 0.9f
#define RMS_EPS 1e-10f
#define ADAM_B1 0.9f
#define ADAM_B2 0.999f
#define ADAM_EPS 1e-8f

int nm_optim_init(nm_optim *o, nm_optimizer kind, float lr, int64_t n)
{
    o->kind = kind;
    o->lr = lr;
    o->n = n;
    o->s1 = malloc(sizeof(float) * (size_t)n);
    o->s2 = calloc((size_t)n, sizeof(float));
    if (!o->s1 || !o->s2) return 0;
    for (int64_t i = 0; i < n; i++) o->s1[i] = kind == NM_OPT_RMSPROP ? 1.f : 0.f;
    return 1;
}

void nm_optim_free(nm_optim *o)
{
    free(o->s1);
    free(o->s2);
    o->s1 = o->s2 = NULL;
}

static void rmsprop_step(nm_optim *o, float *w, const float *g, int64_t from, int64_t count)
{
    for (int64_t i = from; i < from + count; i++) {
        o->s1[i] = RMS_DECAY * o->s1[i] + (1.f - RMS_DECAY) * g[i] * g[i];
        w[i] -= o->lr * g[i] / sqrtf(o->s1[i] + RMS_EPS);
    }
}

static void adam_step(nm_optim *o, float *w, const float *g, int64_t from, int64_t count, int t)
{
    float c1 = 1.f - powf(ADAM_B1, (float)t), c2 = 1.f - powf(ADAM_B2, (float)t);
    for (int64_t i = from; i < from + count; i++) {
        o->s1[i] = ADAM_B1 * o->s1[i] + (1.f - ADAM_B1) * g[i];
        o->s2[i] = ADAM_B2 * o->s2[i] + (1.f - ADAM_B2) * g[i] * g[i];
        w[i] -= o->lr * (o->s1[i] / c1) / (sqrtf(o->s2[i] / c2) + ADAM_EPS);
    }
}

/* A step of length lr * sqrt(count) along -g: the direction is a smooth
 * function of g, unlike RMSProp's and Adam's first steps, which move every
 * coordinate by about lr whatever the size of its gradient. */
static void normalized_step(nm_optim *o, float *w, const float *g, int64_t from, int64_t count)
{
    double ss = 0;
    for (int64_t i = from; i < from + count; i++) ss += (double)g[i] * g[i];
    float scale = o->lr / (float)(sqrt(ss / (double)count) + 1e-12);
    for (int64_t i = from; i < from + count; i++) w[i] -= scale * g[i];
}

void nm_optim_step(nm_optim *o, float *w, const float *g, int64_t from, int64_t count, int t)
{
    if (o->kind == NM_OPT_ADAM) adam_step(o, w, g, from, count, t);
    else if (o->kind == NM_OPT_NORMALIZED) normalized_step(o, w, g, from, count);
    else rmsprop_step(o, w, g, from, count);
}
