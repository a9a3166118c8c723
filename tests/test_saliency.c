/* nm_explain against the PyTorch reference (tools/saliency_ref.py): gradient,
 * gradient x input, integrated gradients, Grad-CAM, occlusion and RISE (the
 * same masks) agree within 1e-3 relative (max |a - b| / max |b|) on the
 * reference's x. Also: IG completeness with 64 steps, determinism of the
 * seeded and optimised methods, and the perturbation games' sanity (the
 * extremal mask at the largest area keeps the class, the meaningful
 * perturbation's deletion removes it).
 * Usage: test_saliency REFDIR IG_STEPS [shared [METHODS]]
 * (IG_STEPS: the completeness check's step count, 0: the comparison with
 * PyTorch only, for the large models; "shared": skip without
 * NEUROMASK_SHARED; METHODS: a comma list of the reference maps to compare,
 * default all) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/saliency.h"
#include "testutil.h"

static const char *refdir;
static const char *only;   /* the maps to compare (comma list), NULL: all */

static int wanted(const char *refname)
{
    if (!only) return 1;
    size_t n = strlen(refname);
    for (const char *p = only; (p = strstr(p, refname)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

static const char *meta(const char *key)
{
    static char vals[32][512];
    static int used;
    char path[1024], k[64], v[512];
    snprintf(path, sizeof path, "%s/meta.txt", refdir);
    FILE *f = fopen(path, "r");
    while (f && fscanf(f, "%63s %511s", k, v) == 2)
        if (!strcmp(k, key)) {
            fclose(f);
            char *slot = vals[used++ % 32];
            snprintf(slot, 512, "%s", v);
            return slot;
        }
    if (f) fclose(f);
    printf("FAIL: %s has no '%s'\n", path, key);
    exit(1);
}

static void floats3(const char *s, float out[3])
{
    int n = sscanf(s, "%f,%f,%f", &out[0], &out[1], &out[2]);
    for (int i = n; i < 3; i++) out[i] = out[n > 0 ? n - 1 : 0];
}

typedef struct fixture {
    nm_model *m;
    nm_preprocess pp;
    float *x;
    int C, H, W, target;
    nm_saliency_options o;
} fixture;

static int explain(fixture *f, nm_method method, const nm_saliency_options *o, const float *x, nm_saliency *s)
{
    nm_error err;
    if (nm_explain(f->m, &f->pp, x ? x : f->x, method, o, s, &err)) {
        nm_check(0, "%s: %s", nm_method_name(method), err.msg);
        return 0;
    }
    return 1;
}

/* The target's probability on a pixel-space image. */
static float prob_of(fixture *f, const float *x)
{
    nm_saliency_options o = f->o;
    o.target_class = f->target;
    nm_saliency s;
    float p = explain(f, NM_METHOD_GRADIENT, &o, x, &s) ? s.prob : NAN;
    nm_saliency_free(&s);
    return p;
}

static double max_rel(const float *a, const float *b, int n)
{
    double diff = 0, scale = 0;
    for (int i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return diff / fmax(scale, 1e-30);
}

static void compare(fixture *f, nm_method method, const char *refname, const nm_saliency_options *o,
                    const char *label)
{
    nm_saliency s;
    if (!wanted(refname)) {
        printf("  %-22s not compared\n", label);
        return;
    }
    if (!explain(f, method, o, NULL, &s)) return;
    float *ref = nm_test_read_floats(refdir, refname, (size_t)f->H * f->W);
    double rel = max_rel(s.map, ref, f->H * f->W);
    printf("  %-22s max relative error vs PyTorch %.2e  (%.4f s)\n", label, rel, s.seconds);
    nm_check(s.target == f->target, "%s: target %d == reference %d", nm_method_name(method), s.target, f->target);
    nm_check(rel <= 1e-3, "%s: max relative error %.2e <= 1e-3", label, rel);
    free(ref);
    nm_saliency_free(&s);
}

static void load_fixture(fixture *f)
{
    nm_error err;
    if (nm_model_load_file(meta("model"), NULL, &f->m, &err)) {
        printf("FAIL: %s\n", err.msg);
        exit(1);
    }
    f->C = atoi(meta("channels"));
    f->H = atoi(meta("height"));
    f->W = atoi(meta("width"));
    f->target = atoi(meta("target"));
    f->x = nm_test_read_floats(refdir, "x", (size_t)f->C * f->H * f->W);
    memset(&f->pp, 0, sizeof f->pp);
    f->pp.scale = (float)atof(meta("scale"));
    f->pp.offset = (float)atof(meta("offset"));
    floats3(meta("mean"), f->pp.mean);
    floats3(meta("std"), f->pp.std);
    nm_saliency_defaults(&f->o);
    f->o.seed = (uint64_t)atoll(meta("seed"));
    f->o.ig_steps = atoi(meta("ig_steps"));
    f->o.occ_patch = atoi(meta("occ_patch"));
    f->o.occ_stride = atoi(meta("occ_stride"));
    f->o.rise_masks = atoi(meta("rise_masks"));
    f->o.rise_cell = atoi(meta("rise_cell"));
    f->o.rise_p = (float)atof(meta("rise_p"));
    f->o.gradcam_layer = meta("gradcam_layer");
}

static void against_pytorch(fixture *f)
{
    compare(f, NM_METHOD_GRADIENT, "gradient", &f->o, nm_method_name(NM_METHOD_GRADIENT));
    compare(f, NM_METHOD_GRADXINPUT, "gradxinput", &f->o, nm_method_name(NM_METHOD_GRADXINPUT));
    compare(f, NM_METHOD_INTEGRATED_GRADIENTS, "ig", &f->o, nm_method_name(NM_METHOD_INTEGRATED_GRADIENTS));
    compare(f, NM_METHOD_GRADCAM, "gradcam", &f->o, "gradcam");
    nm_saliency_options def = f->o;
    def.gradcam_layer = NULL;   /* the default layer is the reference's */
    compare(f, NM_METHOD_GRADCAM, "gradcam", &def, "gradcam, default layer");
    compare(f, NM_METHOD_OCCLUSION, "occlusion", &f->o, nm_method_name(NM_METHOD_OCCLUSION));
    compare(f, NM_METHOD_RISE, "rise", &f->o, nm_method_name(NM_METHOD_RISE));
}

static float logit_of(fixture *f, const float *x)
{
    nm_error err;
    int K = (int)nm_model_output_shape(f->m).dims[1], n = f->C * f->H * f->W;
    float *in = malloc(sizeof(float) * n), *z = malloc(sizeof(float) * K);
    nm_model_set_batch(f->m, 1, &err);
    for (int i = 0; i < n; i++) {
        int c = i / (f->H * f->W);
        in[i] = (x[i] * f->pp.scale + f->pp.offset - f->pp.mean[c]) / f->pp.std[c];
    }
    float v = nm_model_forward(f->m, in, z, &err) ? NAN : z[f->target];
    free(in), free(z);
    return v;
}

/* The completeness error at `steps` is below 1 % of f(x) - f(x0). With ReLU
 * networks the midpoint Riemann error is not monotone in the step count
 * (Fashion CNN: 1.5 % at 64 steps, 0.01 % at 128), hence the argument. */
static void ig_completeness(fixture *f, int steps)
{
    nm_saliency_options o = f->o;
    o.ig_steps = steps;
    nm_saliency s;
    if (!explain(f, NM_METHOD_INTEGRATED_GRADIENTS, &o, NULL, &s)) return;
    float *black = calloc((size_t)f->C * f->H * f->W, sizeof(float));
    double gap = (double)logit_of(f, f->x) - logit_of(f, black);
    printf("  IG, %d steps: completeness error %.3g = %.3g %% of f(x) - f(x0) = %.4g\n", steps, s.completeness_error,
           100 * fabs(s.completeness_error / gap), gap);
    nm_check(fabs(s.completeness_error) < 0.01 * fabs(gap), "IG completeness error %.3g < 1%% of %.4g at %d steps",
             s.completeness_error, gap, steps);
    nm_saliency_free(&s);
    /* At the reference's step count the error matches PyTorch's within 1e-3 of the gap. */
    double ref = atof(meta("ig_completeness"));
    if (explain(f, NM_METHOD_INTEGRATED_GRADIENTS, &f->o, NULL, &s)) {
        printf("  IG, %d steps: completeness error %.4g (PyTorch %.4g)\n", f->o.ig_steps, s.completeness_error, ref);
        nm_check(fabs(s.completeness_error - ref) <= 1e-3 * fabs(gap), "IG completeness error %.4g == PyTorch's %.4g",
                 s.completeness_error, ref);
        nm_saliency_free(&s);
    }
    free(black);
}

/* Two runs with the same options give the same map. */
static void deterministic(fixture *f, nm_method method, const nm_saliency_options *o)
{
    nm_saliency a, b;
    if (!explain(f, method, o, NULL, &a)) return;
    if (explain(f, method, o, NULL, &b)) {
        nm_check(!memcmp(a.map, b.map, sizeof(float) * (size_t)f->H * f->W), "%s: same seed, same map",
                 nm_method_name(method));
        printf("  %-22s deterministic run %.3f s\n", nm_method_name(method), a.seconds);
        nm_saliency_free(&b);
    }
    nm_saliency_free(&a);
}

static void determinism(fixture *f)
{
    nm_saliency_options o = f->o;
    o.sg_samples = 16;
    o.pert_steps = 40;
    o.neuromask.steps = 60;
    deterministic(f, NM_METHOD_SMOOTHGRAD, &o);
    deterministic(f, NM_METHOD_RISE, &o);
    deterministic(f, NM_METHOD_MEANINGFUL_PERTURBATION, &o);
    deterministic(f, NM_METHOD_EXTREMAL_PERTURBATION, &o);
    deterministic(f, NM_METHOD_NEUROMASK, &o);
    nm_saliency a, b;
    nm_saliency_options o2 = o;
    o2.seed = o.seed + 1;
    if (explain(f, NM_METHOD_SMOOTHGRAD, &o, NULL, &a) && explain(f, NM_METHOD_SMOOTHGRAD, &o2, NULL, &b)) {
        nm_check(memcmp(a.map, b.map, sizeof(float) * (size_t)f->H * f->W) != 0, "smoothgrad: another seed, another map");
        nm_saliency_free(&b);
    }
    nm_saliency_free(&a);
}

/* blur + keep (x - blur), keep = map or 1 - map. */
static float *perturbed(fixture *f, const float *blur, const float *map, int invert)
{
    int pixels = f->H * f->W;
    float *out = malloc(sizeof(float) * (size_t)f->C * pixels);
    for (int c = 0; c < f->C; c++)
        for (int i = 0; i < pixels; i++) {
            float keep = invert ? 1.f - map[i] : map[i];
            size_t k = (size_t)c * pixels + i;
            out[k] = blur[k] + keep * (f->x[k] - blur[k]);
        }
    return out;
}

static void perturbation_sanity(fixture *f)
{
    sal_ctx ctx = {.o = &f->o, .H = f->H, .W = f->W};
    size_t n = (size_t)f->C * f->H * f->W;
    float *blur = malloc(sizeof(float) * n);
    sal_gaussian_blur(f->x, blur, f->C, f->H, f->W, sal_blur_sigma(&ctx));
    float p_x = prob_of(f, f->x), p_blur = prob_of(f, blur);
    nm_saliency_options o = f->o;
    o.ep_n_areas = 1;
    o.ep_areas[0] = 0.2f;
    nm_saliency s;
    if (explain(f, NM_METHOD_EXTREMAL_PERTURBATION, &o, NULL, &s)) {
        float *kept = perturbed(f, blur, s.map, 0);
        float p = prob_of(f, kept);
        printf("  extremal perturbation, area 0.2: p %.4f -> %.4f preserved (blur alone %.4f), %.3f s\n", p_x, p,
               p_blur, s.seconds);
        nm_check(s.is_mask, "extremal perturbation gives a mask");
        nm_check(p >= 0.5f * p_x && p > p_blur, "the extremal mask keeps the class: p %.4f >= %.4f / 2, > %.4f", p,
                 p_x, p_blur);
        free(kept);
        nm_saliency_free(&s);
    }
    if (explain(f, NM_METHOD_MEANINGFUL_PERTURBATION, &o, NULL, &s)) {
        float *deleted = perturbed(f, blur, s.map, 1);
        float p = prob_of(f, deleted);
        printf("  meaningful perturbation: p %.4f -> %.4f after deletion, %.3f s\n", p_x, p, s.seconds);
        /* A blur that alone keeps the class (Fashion-MNIST) caps what deletion can do. */
        nm_check(p < 0.5f * p_x || p < p_blur, "the meaningful perturbation's deletion lowers p: %.4f < %.4f / 2 "
                 "or < %.4f (all blurred)", p, p_x, p_blur);
        free(deleted);
        nm_saliency_free(&s);
    }
    free(blur);
}

static void names_and_arguments(fixture *f)
{
    for (int k = 0; k < NM_METHOD_COUNT; k++)
        nm_check(nm_method_from_name(nm_method_name((nm_method)k)) == (nm_method)k, "name of method %d round-trips", k);
    nm_check(nm_method_from_name("no-such-method") == NM_METHOD_COUNT, "unknown names give NM_METHOD_COUNT");
    nm_saliency_options o = f->o;
    o.ig_steps = 0;
    nm_saliency s;
    nm_error err;
    nm_check(nm_explain(f->m, &f->pp, f->x, NM_METHOD_INTEGRATED_GRADIENTS, &o, &s, &err) == NM_ERR_ARG,
             "ig_steps = 0 is refused");
    o = f->o;
    o.gradcam_layer = "no-such-tensor";
    nm_check(nm_explain(f->m, &f->pp, f->x, NM_METHOD_GRADCAM, &o, &s, &err) == NM_ERR_ARG, "an unknown layer is refused");
    o = f->o;
    o.target_class = 100000;
    nm_check(nm_explain(f->m, &f->pp, f->x, NM_METHOD_GRADIENT, &o, &s, &err) == NM_ERR_ARG, "a class out of range is refused");
}

int main(int argc, char **argv)
{
    if (argc < 3) return printf("usage: %s REFDIR IG_STEPS [shared [METHODS]]\n", argv[0]), 2;
    refdir = argv[1];
    int ig_steps = atoi(argv[2]);
    only = argc > 4 ? argv[4] : NULL;
    if (argc > 3 && !strcmp(argv[3], "shared")) {
        char buf[1024];
        nm_test_shared("models/cifar10_resnet20.onnx", buf, sizeof buf);   /* skip without ../shared */
    }
    fixture f;
    load_fixture(&f);
    printf("%s: class %d, %d x %d x %d\n", meta("model"), f.target, f.C, f.H, f.W);
    against_pytorch(&f);
    if (ig_steps > 0) {
        ig_completeness(&f, ig_steps);
        determinism(&f);
        perturbation_sanity(&f);
        names_and_arguments(&f);
    }
    free(f.x);
    nm_model_free(f.m);
    return nm_test_summary();
}
