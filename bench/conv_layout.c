/* Which layout should a Conv layer run in? Times, per call, the forward and
 * backward-data work the Conv operator does on plain (NCHW) graph tensors:
 *   plain: primitives created on plain tags, used on the graph's buffers;
 *   any:   primitives on oneDNN's preferred layouts, with the reorders in and
 *          out that the operator runs per call (weights pre-reordered).
 * Build (from the repo root, after building the library into build/):
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -march=native -Iinclude -Isrc \
 *       bench/conv_layout.c build/libneuromask.a \
 *       -lprotobuf-c -ldnnl -lpng -ljpeg -lm -o /tmp/conv_layout
 * Run: /tmp/conv_layout [batch [name filter]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/dnnl_util.h"

typedef struct layer {
    const char *name;
    int64_t c, m, h, w, k, stride, pad, group;
} layer;

static const layer layers[] = {
    {"resnet20 conv1 3->16 32x32", 3, 16, 32, 32, 3, 1, 1, 1},
    {"resnet20 16->16 32x32", 16, 16, 32, 32, 3, 1, 1, 1},
    {"resnet18 conv1 3->64 7x7 s2", 3, 64, 224, 224, 7, 2, 3, 1},
    {"vgg conv1 3->64 224x224", 3, 64, 224, 224, 3, 1, 1, 1},
    {"resnet20 16->32 s2 32x32", 16, 32, 32, 32, 3, 2, 1, 1},
    {"resnet20 32->32 16x16", 32, 32, 16, 16, 3, 1, 1, 1},
    {"resnet20 64->64 8x8", 64, 64, 8, 8, 3, 1, 1, 1},
    {"3x3 128->128 28x28", 128, 128, 28, 28, 3, 1, 1, 1},
    {"1x1 64->256 56x56", 64, 256, 56, 56, 1, 1, 0, 1},
    {"1x1 256->64 56x56", 256, 64, 56, 56, 1, 1, 0, 1},
    {"1x1 32->64 112x112", 32, 64, 112, 112, 1, 1, 0, 1},
    {"1x1 512->512 7x7", 512, 512, 7, 7, 1, 1, 0, 1},
    {"1x1 s2 256->512 56x56", 256, 512, 56, 56, 1, 2, 0, 1},
    {"dw3x3 32 112x112", 32, 32, 112, 112, 3, 1, 1, 32},
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

#define CHECK(x)                                                         \
    do {                                                                 \
        nm_status st_ = (x);                                             \
        if (st_) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.msg); \
            exit(1);                                                     \
        }                                                                \
    } while (0)

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, int arg)
{
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

static const char *impl_of(const_dnnl_primitive_desc_t pd)
{
    const char *s = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s);
    return s;
}

/* Times forward and backward-data (ms per call) of one layer in one mode. */
static void run(nm_graph *g, const layer *L, int64_t batch, int plain, double *fwd_ms, double *bwd_ms,
                char *impls, size_t cap)
{
    nm_error err = {0};
    int64_t oh = (L->h + 2 * L->pad - L->k) / L->stride + 1, ow = (L->w + 2 * L->pad - L->k) / L->stride + 1;
    int64_t xd[4] = {batch, L->c, L->h, L->w}, yd[4] = {batch, L->m, oh, ow};
    int gw = L->group > 1, wr = 4 + gw;
    int64_t wd[5];
    if (gw) wd[0] = L->group;
    wd[gw] = L->m / L->group;
    wd[gw + 1] = L->c / L->group;
    wd[gw + 2] = wd[gw + 3] = L->k;
    dnnl_format_tag_t any = dnnl_format_tag_any;
    dnnl_memory_desc_t mx, my, mw, mb;
    CHECK(nm_dnnl_md(&mx, 4, xd, plain ? dnnl_abcd : any, &err));
    CHECK(nm_dnnl_md(&my, 4, yd, plain ? dnnl_abcd : any, &err));
    CHECK(nm_dnnl_md(&mw, wr, wd, plain ? nm_dnnl_plain_tag(wr) : any, &err));
    CHECK(nm_dnnl_md(&mb, 1, &L->m, dnnl_a, &err));
    dnnl_dims_t st = {L->stride, L->stride}, dil = {0, 0}, pad = {L->pad, L->pad};
    dnnl_convolution_desc_t fd, bd;
    dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &mx, &mw, &mb,
                                               &my, st, dil, pad, pad);
    dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &mx, &mw, &my, st, dil, pad,
                                                     pad);
    dnnl_primitive_desc_t fpd, bpd;
    dnnl_primitive_t fwd, bwd;
    CHECK(nm_dnnl_primitive(g, &fd, NULL, NULL, &fpd, &fwd, &err, "fwd"));
    CHECK(nm_dnnl_primitive(g, &bd, NULL, fpd, &bpd, &bwd, &err, "bwd"));
    snprintf(impls, cap, "%s / %s", impl_of(fpd), impl_of(bpd));

    nm_dnnl_arg src, wei, bias, dst, bwei, ddst, dsrc;
    nm_graph_scratch_begin(g);   /* buffers in oneDNN's layouts: regions of the graph's scratch */
    CHECK(nm_dnnl_arg_init(g, &src, NM_ARG_IN, 4, xd, md_of(fpd, DNNL_ARG_SRC), &err));
    CHECK(nm_dnnl_arg_init(g, &wei, NM_ARG_IN, wr, wd, md_of(fpd, DNNL_ARG_WEIGHTS), &err));
    CHECK(nm_dnnl_arg_init(g, &bias, NM_ARG_IN, 1, &L->m, md_of(fpd, DNNL_ARG_BIAS), &err));
    CHECK(nm_dnnl_arg_init(g, &dst, NM_ARG_OUT, 4, yd, md_of(fpd, DNNL_ARG_DST), &err));
    CHECK(nm_dnnl_arg_init(g, &bwei, NM_ARG_IN, wr, wd, md_of(bpd, DNNL_ARG_WEIGHTS), &err));
    CHECK(nm_dnnl_arg_init(g, &ddst, NM_ARG_IN, 4, yd, md_of(bpd, DNNL_ARG_DIFF_DST), &err));
    CHECK(nm_dnnl_arg_init(g, &dsrc, NM_ARG_ACC, 4, xd, md_of(bpd, DNNL_ARG_DIFF_SRC), &err));

    size_t nx = (size_t)(batch * L->c * L->h * L->w), ny = (size_t)(batch * L->m * oh * ow);
    size_t nw = (size_t)(L->m * (L->c / L->group) * L->k * L->k);
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *w = malloc(nw * 4), *b = calloc((size_t)L->m, 4);
    float *dy = malloc(ny * 4), *dx = calloc(nx, 4);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < ny; i++) dy[i] = (float)(i % 5) * 0.1f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)(i % 3) * 0.1f;
    CHECK(nm_dnnl_arg_freeze(g, &wei, w, &err));
    CHECK(nm_dnnl_arg_freeze(g, &bwei, w, &err));
    CHECK(nm_dnnl_arg_freeze(g, &bias, b, &err));
    CHECK(nm_graph_scratch_ready(g, &err));

    double t_f = 1e30, t_b = 1e30;
    for (int rep = 0; rep < 16; rep++) {
        int iters = 20;
        double t0 = now_ms();
        for (int it = 0; it < iters; it++) {
            nm_dnnl_arg_in(g, &src, x);
            nm_dnnl_arg_out_begin(&dst, y);
            dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src.prim}, {DNNL_ARG_WEIGHTS, wei.prim},
                                    {DNNL_ARG_BIAS, bias.prim}, {DNNL_ARG_DST, dst.prim}};
            nm_dnnl_exec(g, fwd, 4, a);
            nm_dnnl_arg_out_end(g, &dst, y);
        }
        double t1 = now_ms();
        for (int it = 0; it < iters; it++) {
            nm_dnnl_arg_in(g, &ddst, dy);
            nm_dnnl_arg_out_begin(&dsrc, dx);
            dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, ddst.prim}, {DNNL_ARG_WEIGHTS, bwei.prim},
                                    {DNNL_ARG_DIFF_SRC, dsrc.prim}};
            nm_dnnl_exec(g, bwd, 3, a);
            nm_dnnl_arg_out_end(g, &dsrc, dx);
        }
        double t2 = now_ms();
        if (rep == 0) continue; /* warm-up */
        if ((t1 - t0) / iters < t_f) t_f = (t1 - t0) / iters;
        if ((t2 - t1) / iters < t_b) t_b = (t2 - t1) / iters;
    }
    *fwd_ms = t_f;
    *bwd_ms = t_b;
    nm_dnnl_arg *args[] = {&src, &wei, &bias, &dst, &bwei, &ddst, &dsrc};
    for (int i = 0; i < 7; i++) nm_dnnl_arg_free(args[i]);
    dnnl_primitive_destroy(fwd);
    dnnl_primitive_destroy(bwd);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    free(x), free(y), free(w), free(b), free(dy), free(dx);
}

int main(int argc, char **argv)
{
    int64_t batch = argc > 1 ? atoll(argv[1]) : 1;
    nm_graph g = {0};
    g.source = "bench";
    nm_error err = {0};
    CHECK(nm_dnnl_ready(&g, &err));
    printf("batch %lld; ms per call (best of 15 x 20), forward / backward-data\n", (long long)batch);
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        if (argc > 2 && !strstr(layers[i].name, argv[2])) continue;
        double pf, pb, af, ab;
        char pi[256], ai[256];
        run(&g, &layers[i], batch, 1, &pf, &pb, pi, sizeof pi);
        run(&g, &layers[i], batch, 0, &af, &ab, ai, sizeof ai);
        printf("%-28s plain %7.3f / %7.3f   any %7.3f / %7.3f   [%s | %s]\n", layers[i].name, pf, pb, af, ab,
               pi, ai);
    }
    dnnl_stream_destroy(g.stream);
    dnnl_engine_destroy(g.engine);
    return 0;
}
