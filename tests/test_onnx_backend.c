/* One ONNX backend conformance case: load <case>/model.onnx the way the
 * library does (import, passes, prepare), feed every test_data_set_N/input_K.pb
 * to graph input K, run forward and compare with output_K.pb within
 * |a - b| <= 1e-5 + 1e-4 |b|.
 *
 * Inputs that real exported models carry as initializers (int64 tensors such
 * as shapes, pads, axes and indices; Resize/Upsample scales; Clip bounds) are
 * given to the graph as constants before nm_graph_prepare, since shapes are
 * inferred at load; every other input is fed at run time.
 *
 * Models older than opset 7 are read as opset 7: the case list
 * (tools/list_onnx_cases.py) holds only those whose nodes mean the same there.
 *
 * Usage: test_onnx_backend <case dir>. Exit 0 pass, 1 fail, 77 when the test
 * data package is not installed. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx.pb-c.h"
#include "onnx/onnx_import.h"
#include "testutil.h"

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)(n > 0 ? n : 0);
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static nm_status load_tensor(const char *path, nm_tensor *t, nm_error *err)
{
    size_t n;
    void *bytes = read_file(path, &n);
    if (!bytes) return nm_fail(err, NM_ERR_IO, "%s: cannot read", path);
    nm_status st = nm_onnx_read_tensor(bytes, n, path, t, err);
    free(bytes);
    return st;
}

/* Re-encode a model of opset < NM_ONNX_OPSET_MIN as that opset. */
static void *raise_opset(void *bytes, size_t *n)
{
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, *n, bytes);
    if (!m) return bytes;
    int changed = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        Onnx__OperatorSetIdProto *o = m->opset_import[i];
        int std_domain = !o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0;
        if (std_domain && o->version < NM_ONNX_OPSET_MIN) {
            printf("model opset %lld read as opset %d\n", (long long)o->version, NM_ONNX_OPSET_MIN);
            o->version = NM_ONNX_OPSET_MIN;
            changed = 1;
        }
    }
    if (changed) {
        size_t size = onnx__model_proto__get_packed_size(m);
        void *out = malloc(size + 1);
        if (out) {
            onnx__model_proto__pack(m, out);
            free(bytes);
            bytes = out;
            *n = size;
        }
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return bytes;
}

static nm_status load_graph(const char *path, nm_graph **g, nm_error *err)
{
    size_t n;
    void *bytes = read_file(path, &n);
    if (!bytes) return nm_fail(err, NM_ERR_IO, "%s: cannot read", path);
    bytes = raise_opset(bytes, &n);
    nm_status st = nm_onnx_import(bytes, n, path, g, err);
    free(bytes);
    if (!st) st = nm_graph_sort(*g, err);
    if (!st) st = nm_graph_remove_identities(*g, err);
    if (!st) st = nm_graph_fold_batchnorm(*g, err);
    return st;
}

/* Does some node read tensor `t` at an input slot that real models fill with
 * an initializer (a value that decides shapes or acts as an attribute)? */
static int attribute_like_use(const nm_graph *g, int t)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *n = &g->nodes[k];
        for (int i = 1; i < n->n_in; i++) {
            if (n->in[i] != t) continue;
            if (n->op == NM_OP_RESIZE || n->op == NM_OP_UPSAMPLE || n->op == NM_OP_CLIP ||
                n->op == NM_OP_PAD || n->op == NM_OP_DROPOUT)
                return 1;
        }
    }
    return 0;
}

typedef struct data_set {
    nm_tensor in[16];
    int n_in;
    nm_tensor out[16];
    int n_out;
} data_set;

static void data_set_free(data_set *d)
{
    for (int i = 0; i < d->n_in; i++) {
        free(d->in[i].name);
        free(d->in[i].data);
    }
    for (int i = 0; i < d->n_out; i++) {
        free(d->out[i].name);
        free(d->out[i].data);
    }
}

static nm_status load_data_set(const char *dir, data_set *d, nm_error *err)
{
    char path[4096 + 32];   /* dir is at most 4095 characters */
    memset(d, 0, sizeof *d);
    for (int k = 0; k < 16; k++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", dir, k);
        if (!exists(path)) break;
        nm_status st = load_tensor(path, &d->in[d->n_in++], err);
        if (st) return st;
    }
    for (int k = 0; k < 16; k++) {
        snprintf(path, sizeof path, "%s/output_%d.pb", dir, k);
        if (!exists(path)) break;
        nm_status st = load_tensor(path, &d->out[d->n_out++], err);
        if (st) return st;
    }
    if (d->n_out == 0) return nm_fail(err, NM_ERR_IO, "%s: no output_0.pb", dir);
    return NM_OK;
}

/* Give graph input k its value: as a constant (ownership moves to the graph)
 * or as a shape, with the data copied in after prepare. */
static nm_status bind_input(nm_graph *g, int k, nm_tensor *v, nm_error *err)
{
    nm_tensor *t = &g->t[g->inputs[k]];
    if (t->dtype != v->dtype)
        return nm_fail(err, NM_ERR_ARG, "input %d ('%s'): model declares dtype %d, data has %d", k, t->name,
                       (int)t->dtype, (int)v->dtype);
    if (v->dtype == NM_INT64 || attribute_like_use(g, g->inputs[k])) {
        nm_tensor_set_const(t, v->dtype, &v->shape, v->data);
        v->data = NULL;
    } else {
        t->shape = v->shape;
        t->numel = v->numel;
    }
    return NM_OK;
}

/* Worst error over one output; returns the number of elements out of tolerance. */
static int64_t compare(const nm_tensor *got, const nm_tensor *want, double *worst_abs, double *worst_ratio)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < want->numel; i++) {
        double a = got->dtype == NM_INT64 ? (double)nm_i64(got)[i] : nm_f32(got)[i];
        double b = want->dtype == NM_INT64 ? (double)nm_i64(want)[i] : nm_f32(want)[i];
        if (isnan(a) && isnan(b)) continue;
        double e = fabs(a - b), tol = 1e-5 + 1e-4 * fabs(b);
        if (isnan(e)) e = INFINITY;
        if (e > *worst_abs) *worst_abs = e;
        if (e / tol > *worst_ratio) *worst_ratio = e / tol;
        if (!(e <= tol)) bad++;
    }
    return bad;
}

static int check_outputs(nm_graph *g, const data_set *d, const char *dir)
{
    int ok = nm_check(d->n_out == g->n_outputs, "%s: %d expected outputs, graph has %d", dir, d->n_out,
                      g->n_outputs);
    for (int k = 0; ok && k < d->n_out; k++) {
        const nm_tensor *got = &g->t[g->outputs[k]], *want = &d->out[k];
        char s1[160], s2[160];
        if (!nm_check(nm_shape_equal(&got->shape, &want->shape) && got->dtype == want->dtype,
                      "%s: output %d ('%s') is %s dtype %d, expected %s dtype %d", dir, k, got->name,
                      nm_shape_str(&got->shape, s1, sizeof s1), (int)got->dtype,
                      nm_shape_str(&want->shape, s2, sizeof s2), (int)want->dtype)) {
            ok = 0;
            continue;
        }
        double worst = 0, ratio = 0;
        int64_t bad = compare(got, want, &worst, &ratio);
        printf("%s: output %d ('%s') %s: worst |a-b| %.3g (%.3g x tolerance), %lld of %lld out of tolerance\n",
               dir, k, got->name, s1, worst, ratio, (long long)bad, (long long)want->numel);
        ok &= nm_check(bad == 0, "%s: output %d within tolerance", dir, k);
    }
    return ok;
}

static int run_data_set(const char *model, const char *dir)
{
    nm_error err = {0};
    data_set d;
    nm_graph *g = NULL;
    nm_status st = load_data_set(dir, &d, &err);
    if (!st) st = load_graph(model, &g, &err);
    if (!st && d.n_in != g->n_inputs)
        st = nm_fail(&err, NM_ERR_ARG, "%d input files, graph has %d inputs", d.n_in, g->n_inputs);
    for (int k = 0; !st && k < d.n_in; k++) st = bind_input(g, k, &d.in[k], &err);
    if (!st) st = nm_graph_prepare(g, 0u, &err);
    for (int k = 0; !st && k < d.n_in; k++) {
        nm_tensor *t = &g->t[g->inputs[k]];
        if (d.in[k].data && !t->is_const)
            memcpy(t->data, d.in[k].data, (size_t)t->numel * (t->dtype == NM_INT64 ? 8 : 4));
    }
    if (!st) st = nm_graph_forward(g, &err);
    int ok = nm_check(st == NM_OK, "%s: %s: %s", dir, nm_status_name(st), err.msg);
    if (ok) ok = check_outputs(g, &d, dir);
    nm_graph_free(g);
    data_set_free(&d);
    return ok;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <onnx backend case dir>\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    const char *root = getenv("NM_TESTDATA");
    if (!exists(dir) && root && !exists(root)) {
        printf("ONNX test data (%s) not installed: skipped\n", root);
        return NM_TEST_SKIP;
    }
    char model[4096], set[4096];
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    DIR *dp = opendir(dir);
    if (!nm_check(dp != NULL, "%s: cannot open case directory", dir)) return nm_test_summary();
    char *sets[64];
    int n_sets = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n_sets < 64)
        if (strncmp(e->d_name, "test_data_set_", 14) == 0) sets[n_sets++] = strdup(e->d_name);
    closedir(dp);
    qsort(sets, (size_t)n_sets, sizeof *sets, by_name);
    nm_check(n_sets > 0, "%s: no test_data_set_*", dir);
    for (int i = 0; i < n_sets; i++) {
        snprintf(set, sizeof set, "%s/%s", dir, sets[i]);
        run_data_set(model, set);
        free(sets[i]);
    }
    return nm_test_summary();
}
