/* nm_load_options.precision = NM_PRECISION_BF16 against float32 on the
 * shared CIFAR ResNet-20: logits, the input gradient and a short NeuroMask
 * optimisation stay close. Where the CPU has no AVX512_BF16 the engine runs
 * float32 and the results must be identical. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "testutil.h"

static double cosine(const float *a, const float *b, int64_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb + 1e-30);
}

static double correlation(const float *a, const float *b, int64_t n)
{
    double ma = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= (double)n, mb /= (double)n;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) {
        ab += (a[i] - ma) * (b[i] - mb);
        aa += (a[i] - ma) * (a[i] - ma);
        bb += (b[i] - mb) * (b[i] - mb);
    }
    return ab / sqrt(aa * bb + 1e-30);
}

int main(void)
{
    char path[4096];
    nm_test_shared("models/cifar10_resnet20.onnx", path, sizeof path);
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int native = (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
    printf("AVX512_BF16 %s\n", native ? "present" : "absent: bf16 runs float32");
    nm_error err = {0};
    nm_model *m[2] = {NULL, NULL};
    for (int p = 0; p < 2; p++) {
        nm_load_options lo = {.batch = 1, .precision = p ? NM_PRECISION_BF16 : NM_PRECISION_FP32};
        if (!nm_check(nm_model_load_file(path, &lo, &m[p], &err) == NM_OK, "load: %s", err.msg)) return 1;
    }
    enum { N_IN = 3 * 32 * 32, N_OUT = 10 };
    float x[N_IN], logits[2][N_OUT], g[N_OUT], dx[2][N_IN];
    uint64_t seed = 3;
    nm_test_rand_fill(x, N_IN, 0.f, 1.f, &seed);
    nm_test_rand_fill(g, N_OUT, -1.f, 1.f, &seed);
    for (int p = 0; p < 2; p++) {
        nm_check(nm_model_forward(m[p], x, logits[p], &err) == NM_OK, "forward: %s", err.msg);
        nm_check(nm_model_backward(m[p], g, dx[p], &err) == NM_OK, "backward: %s", err.msg);
    }
    double lerr = 0, lmax = 1e-6;
    for (int k = 0; k < N_OUT; k++) {
        lerr = fmax(lerr, fabs(logits[1][k] - logits[0][k]));
        lmax = fmax(lmax, fabs(logits[0][k]));
    }
    double cos = cosine(dx[0], dx[1], N_IN);
    printf("bf16 vs fp32: logits max error / max|logit| %.3g, input-gradient cosine %.5f\n", lerr / lmax, cos);
    nm_check(native ? lerr / lmax < 3e-2 : lerr == 0, "bf16 logits within bounds (%.3g)", lerr / lmax);
    nm_check(native ? cos > 0.98 : cos > 1 - 1e-12, "bf16 input gradient within bounds (cosine %.5f)", cos);

    nm_neuromask_options o;
    nm_preprocess pp;
    nm_neuromask_preset("cifar", &o, &err);
    nm_preprocess_recipe("cifar", &pp, &err);
    o.steps = 200;
    nm_explanation e[2];
    for (int p = 0; p < 2; p++)
        if (!nm_check(nm_neuromask_explain(m[p], &pp, x, 1, &o, &e[p], &err) == NM_OK, "explain: %s", err.msg))
            return nm_test_summary();
    double corr = correlation(e[0].mask, e[1].mask, 32 * 32);
    printf("bf16 vs fp32: NeuroMask mask correlation after %d steps %.4f (%.3f s vs %.3f s)\n", o.steps, corr,
           e[1].seconds, e[0].seconds);
    nm_check(native ? corr > 0.5 : corr > 1 - 1e-12, "bf16 mask close to fp32 (correlation %.4f)", corr);
    for (int p = 0; p < 2; p++) {
        nm_explanation_free(&e[p]);
        nm_model_free(m[p]);
    }
    return nm_test_summary();
}
