/* The weights are held once (graph/model.h, ops/conv.c): a loaded model
 * releases the plain copy of every Conv weight it keeps in oneDNN's layout
 * and its template keeps none; named reads give the exact values back, and
 * re-planning for another batch size and back computes what the first plan
 * did. On the shared MobileNet v2, whose 1x1, 3x3 and depthwise Convs take
 * their backward's weights from the forward's by each route (same layout,
 * held copy, per-call copy). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/model.h"
#include "onnx/onnx_import.h"
#include "testutil.h"

/* The template's passes on a fresh import: the folded weights, plain. */
static nm_graph *reference(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *bytes = malloc((size_t)size);
    size_t got = bytes ? fread(bytes, 1, (size_t)size, f) : 0;
    fclose(f);
    nm_graph *g = NULL;
    nm_error err = {0};
    nm_status s = got == (size_t)size ? nm_onnx_import_owned(bytes, got, path, &g, &err) : NM_ERR_IO;
    if (s) free(got == (size_t)size ? NULL : bytes);
    if (!s) s = nm_graph_sort(g, &err);
    if (!s) s = nm_graph_remove_identities(g, &err);
    if (!s) s = nm_graph_fold_batchnorm(g, &err);
    if (s) {
        printf("reference: %s\n", err.msg);
        nm_graph_free(g);
        return NULL;
    }
    return g;
}

/* Every released weight of m reads back as the reference holds it. */
static int check_named_reads(nm_model *m, nm_graph *r, const char *when)
{
    nm_error err = {0};
    int released = 0, ok = 1;
    for (int i = 0; i < m->g->n_t && ok; i++) {
        if (!m->g->t[i].released) continue;
        released++;
        const char *name = m->g->t[i].name;
        int j = nm_graph_find_tensor(r, name);
        const float *v = NULL;
        nm_shape shape;
        ok &= nm_check(j >= 0 && nm_model_tensor(m, name, &shape, &v, NULL, &err) == NM_OK && v,
                       "%s: read '%s': %s", when, name, err.msg);
        ok &= nm_check(ok && r->t[j].numel == nm_shape_numel(&shape) &&
                           memcmp(v, r->t[j].data, sizeof(float) * (size_t)r->t[j].numel) == 0,
                       "%s: '%s' reads back other values", when, name);
    }
    return ok ? released : -1;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

int main(void)
{
    char path[4096];
    nm_test_shared("models/imagenet_mobilenet_v2_100_224.onnx", path, sizeof path);
    nm_error err = {0};
    nm_model *m = NULL;
    nm_load_options lo = {.batch = 1};
    if (!nm_check(nm_model_load_file(path, &lo, &m, &err) == NM_OK, "load: %s", err.msg)) return 1;
    nm_graph *r = reference(path);
    if (!nm_check(r != NULL, "reference graph")) return 1;

    /* Held once: the Conv weights released in the graph, nothing in the template. */
    int64_t weights = 0, released = 0, kept = 0;
    for (int i = 0; i < m->g->n_t; i++) {
        const nm_tensor *t = &m->g->t[i];
        if (!t->is_const || t->dtype != NM_FLOAT) continue;
        weights += t->numel;
        if (t->released) released += t->numel;
    }
    for (int i = 0; i < m->tmpl->n_t; i++) kept += m->tmpl->t[i].is_const && m->tmpl->t[i].data;
    printf("weights %lld floats, %lld released; template constants with a value: %lld\n", (long long)weights,
           (long long)released, (long long)kept);
    nm_check(released * 10 >= weights * 9, "only %lld of %lld weight floats released", (long long)released,
             (long long)weights);
    nm_check(kept == 0, "the template holds %lld constants", (long long)kept);

    /* Named reads give the folded values back, exactly. */
    int n = check_named_reads(m, r, "after load");
    nm_check(n > 0, "no weight released");

    /* forward + backward, then again after re-planning for batch 3 and back. */
    nm_shape in = nm_model_input_shape(m), out = nm_model_output_shape(m);
    int64_t nin = nm_shape_numel(&in), nout = nm_shape_numel(&out);
    float *x = malloc(sizeof(float) * (size_t)nin * 3), *g = malloc(sizeof(float) * (size_t)nout);
    float *y[2], *dx[2], *y3 = malloc(sizeof(float) * (size_t)nout * 3);
    uint64_t seed = 11;
    nm_test_rand_fill(x, nin, 0.f, 1.f, &seed);
    nm_test_rand_fill(g, nout, -1.f, 1.f, &seed);
    for (int k = 1; k < 3; k++) memcpy(x + k * nin, x, sizeof(float) * (size_t)nin);
    for (int p = 0; p < 2; p++) {
        y[p] = malloc(sizeof(float) * (size_t)nout);
        dx[p] = malloc(sizeof(float) * (size_t)nin);
        if (p == 1) {
            nm_check(nm_model_set_batch(m, 3, &err) == NM_OK, "batch 3: %s", err.msg);
            nm_check(nm_model_forward(m, x, y3, &err) == NM_OK, "forward at batch 3: %s", err.msg);
            nm_check(nm_model_set_batch(m, 1, &err) == NM_OK, "batch 1: %s", err.msg);
        }
        nm_check(nm_model_forward(m, x, y[p], &err) == NM_OK, "forward: %s", err.msg);
        nm_check(nm_model_backward(m, g, dx[p], &err) == NM_OK, "backward: %s", err.msg);
    }
    double scale = 1e-6;
    for (int64_t k = 0; k < nout; k++) scale = fmax(scale, fabs(y[0][k]));
    for (int b = 0; b < 3; b++)
        nm_check(max_diff(y3 + b * nout, y[0], nout) <= 1e-4 * scale, "batch 3, image %d: logits differ by %.3g", b,
                 max_diff(y3 + b * nout, y[0], nout));
    nm_check(max_diff(y[1], y[0], nout) <= 1e-5 * scale, "logits differ after re-planning by %.3g",
             max_diff(y[1], y[0], nout));
    double gscale = 1e-12;
    for (int64_t k = 0; k < nin; k++) gscale = fmax(gscale, fabs(dx[0][k]));
    nm_check(max_diff(dx[1], dx[0], nin) <= 1e-5 * gscale, "input gradients differ after re-planning by %.3g",
             max_diff(dx[1], dx[0], nin));
    nm_check(check_named_reads(m, r, "after re-planning") == n, "released weights changed after re-planning");

    for (int p = 0; p < 2; p++) free(y[p]), free(dx[p]);
    free(x), free(g), free(y3);
    nm_graph_free(r);
    nm_model_free(m);
    return nm_test_summary();
}
