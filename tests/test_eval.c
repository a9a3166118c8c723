/* Evaluation: deletion/insertion AUC against tools/eval_ref.py (RISE's
 * CausalMetric on PyTorch), Spearman rank correlation, and cascading model
 * randomisation.
 *   test_eval auc REFDIR RECIPE MODEL   (MODEL "shared:REL" = under ../shared)
 *   test_eval units MODEL LAYERS        (spearman; randomize on MODEL with LAYERS layers) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/protocols.h"
#include "graph/model.h"
#include "testutil.h"

#define AUC_TOL 1e-4

static nm_model *load_model(const char *spec)
{
    char buf[1024];
    const char *path = strncmp(spec, "shared:", 7) == 0 ? nm_test_shared(spec + 7, buf, sizeof buf) : spec;
    nm_model *m = NULL;
    nm_error err = {0};
    if (nm_model_load_file(path, NULL, &m, &err)) {
        printf("FAIL: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static double max_diff(const float *a, const float *b, int n)
{
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

static int fill_of(const char *name)
{
    static const char *const names[] = {"black", "zero", "blur", "grey", "mean"};   /* nm_auc_fill order */
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

/* The reference's AUCs of the cases read so far, by name. */
typedef struct ref_case {
    char name[64];
    int target;
    double del, ins;
} ref_case;
static ref_case ref_cases[64];
static int n_ref_cases;

static const ref_case *find_case(const char *name)
{
    for (int i = 0; i < n_ref_cases; i++)
        if (!strcmp(ref_cases[i].name, name)) return &ref_cases[i];
    return NULL;
}

/* nm_eval_protocols on every protocol for the map "random" against the
 * reference's cases random (rise: black/blur) and random_F (F/F), in one
 * call that computes each distinct half once; then one protocol alone
 * leaves the others NaN. */
static void check_protocols(nm_model *m, const nm_preprocess *pp, const float *x, const char *dir)
{
    nm_shape in = nm_model_input_shape(m);
    char path[1200];
    snprintf(path, sizeof path, "%s/map_random.bin", dir);
    float *map = nm_test_read_floats(NULL, path, (size_t)(in.dims[2] * in.dims[3]));
    const ref_case *rise = find_case("random");
    nm_check(rise != NULL, "ref.txt has the case 'random'");
    double pd[NM_PROTOCOL_COUNT], pi[NM_PROTOCOL_COUNT];
    nm_error err = {0};
    nm_auc_options o;
    nm_auc_defaults(&o);
    int target = rise ? rise->target : 0;
    nm_status s = nm_eval_protocols(m, pp, x, map, target, &o, (1u << NM_PROTOCOL_COUNT) - 1, pd, pi, NULL, NULL, &err);
    nm_check(s == NM_OK, "nm_eval_protocols (all): %s", err.msg);
    for (int p = 0; !s && p < NM_PROTOCOL_COUNT; p++) {
        char name[64];
        snprintf(name, sizeof name, p == NM_PROTOCOL_RISE ? "random" : "random_%s", nm_protocol_name((nm_protocol)p));
        const ref_case *c = find_case(name);
        nm_check(c && fabs(pd[p] - c->del) <= AUC_TOL && fabs(pi[p] - c->ins) <= AUC_TOL,
                 "protocol %s: deletion %.6f insertion %.6f == reference case %s (%.6f %.6f)",
                 nm_protocol_name((nm_protocol)p), pd[p], pi[p], name, c ? c->del : NAN, c ? c->ins : NAN);
    }
    s = nm_eval_protocols(m, pp, x, map, target, &o, 1u << NM_PROTOCOL_GREY, pd, pi, NULL, NULL, &err);
    int others_nan = 1;
    for (int q = 0; q < NM_PROTOCOL_COUNT; q++)
        if (q != NM_PROTOCOL_GREY) others_nan &= isnan(pd[q]) && isnan(pi[q]);
    nm_check(s == NM_OK && others_nan && isfinite(pd[NM_PROTOCOL_GREY]), "grey alone: the others are NaN");
    free(map);
}

/* One line of ref.txt against nm_deletion_insertion, at two engine batch sizes. */
static void check_case(nm_model *m, const nm_preprocess *pp, const float *x, const char *dir, const char *line)
{
    char name[64], map_path[1024], del_fill[16], ins_fill[16], path[1200];
    int steps, target;
    double ref_del, ref_ins;
    if (sscanf(line, "case %63s %1023s %15[^/]/%15s %d %d %lf %lf", name, map_path, del_fill, ins_fill, &steps,
               &target, &ref_del, &ref_ins) != 8 || fill_of(del_fill) < 0 || fill_of(ins_fill) < 0) {
        nm_check(0, "ref.txt line '%s' parses", line);
        return;
    }
    nm_shape in = nm_model_input_shape(m);
    int hw = (int)(in.dims[2] * in.dims[3]);
    float *map = nm_test_read_floats(NULL, map_path, (size_t)hw);
    snprintf(path, sizeof path, "%s/%s.del.bin", dir, name);
    float *ref_dc = nm_test_read_floats(NULL, path, (size_t)steps + 1);
    snprintf(path, sizeof path, "%s/%s.ins.bin", dir, name);
    float *ref_ic = nm_test_read_floats(NULL, path, (size_t)steps + 1);
    float *dc = malloc(sizeof(float) * (size_t)(steps + 1)), *ic = malloc(sizeof(float) * (size_t)(steps + 1));

    nm_auc_options o;
    nm_auc_defaults(&o);
    o.steps = steps;
    o.deletion_fill = (nm_auc_fill)fill_of(del_fill);
    o.insertion_fill = (nm_auc_fill)fill_of(ins_fill);
    double del = NAN, ins = NAN, del7 = NAN, ins7 = NAN;
    nm_error err = {0};
    nm_status s = nm_deletion_insertion(m, pp, x, map, target, &o, &del, &ins, dc, ic, &err);
    nm_check(s == NM_OK, "%s: nm_deletion_insertion: %s", name, err.msg);
    int rise = o.deletion_fill != NM_AUC_FILL_BLUR && o.insertion_fill == NM_AUC_FILL_BLUR;
    o.batch = 7;   /* 2 (steps + 1) is not a multiple: the last batch is padded (RISE's cases only: time) */
    s = rise ? nm_deletion_insertion(m, pp, x, map, target, &o, &del7, &ins7, NULL, NULL, &err) : NM_OK;
    nm_check(s == NM_OK, "%s: nm_deletion_insertion (batch 7): %s", name, err.msg);
    if (!rise) del7 = del, ins7 = ins;
    printf("%-14s steps %3d fills %s/%s: deletion %.6f (ref %.6f) insertion %.6f (ref %.6f); curves max diff %.2e "
           "%.2e\n", name, steps, del_fill, ins_fill, del, ref_del, ins, ref_ins, max_diff(dc, ref_dc, steps + 1),
           max_diff(ic, ref_ic, steps + 1));
    nm_check(fabs(del - ref_del) <= AUC_TOL, "%s: deletion AUC %.6f == reference %.6f", name, del, ref_del);
    nm_check(fabs(ins - ref_ins) <= AUC_TOL, "%s: insertion AUC %.6f == reference %.6f", name, ins, ref_ins);
    nm_check(max_diff(dc, ref_dc, steps + 1) <= AUC_TOL, "%s: deletion curve within %g", name, AUC_TOL);
    nm_check(max_diff(ic, ref_ic, steps + 1) <= AUC_TOL, "%s: insertion curve within %g", name, AUC_TOL);
    nm_check(fabs(del7 - del) <= 1e-5 && fabs(ins7 - ins) <= 1e-5, "%s: batch 7 gives the same AUCs", name);
    if (n_ref_cases < 64) {
        snprintf(ref_cases[n_ref_cases].name, sizeof ref_cases[0].name, "%s", name);
        ref_cases[n_ref_cases].target = target, ref_cases[n_ref_cases].del = ref_del;
        ref_cases[n_ref_cases++].ins = ref_ins;
    }
    free(map), free(ref_dc), free(ref_ic), free(dc), free(ic);
}

static int run_auc(const char *dir, const char *recipe, const char *model_spec)
{
    nm_model *m = load_model(model_spec);
    nm_shape in = nm_model_input_shape(m);
    nm_preprocess pp;
    nm_error err = {0};
    if (nm_preprocess_recipe(recipe, &pp, &err)) return printf("FAIL: %s\n", err.msg), 1;
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/x.bin", dir);
    float *x = nm_test_read_floats(NULL, path, (size_t)(in.dims[1] * in.dims[2] * in.dims[3]));
    snprintf(path, sizeof path, "%s/ref.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return printf("FAIL: cannot open %s (run tools/eval_ref.py first)\n", path), 1;
    int cases = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "case ", 5) == 0) check_case(m, &pp, x, dir, line), cases++;
    fclose(f);
    nm_check(cases >= 14, "ref.txt has cases (%d)", cases);
    check_protocols(m, &pp, x, dir);

    /* Bad arguments are errors, not crashes. */
    float *map = calloc((size_t)(in.dims[2] * in.dims[3]), sizeof(float));
    nm_check(nm_deletion_insertion(m, &pp, x, map, -1, NULL, NULL, NULL, NULL, NULL, &err) == NM_ERR_ARG,
             "target -1 refused");
    map[3] = NAN;
    nm_check(nm_deletion_insertion(m, &pp, x, map, 0, NULL, NULL, NULL, NULL, NULL, &err) == NM_ERR_NUMERIC,
             "NaN in the map refused");
    free(map), free(x);
    nm_model_free(m);
    return nm_test_summary();
}

static void check_spearman(void)
{
    float a[6] = {0.1f, 0.5f, 0.2f, 0.9f, 0.7f, 0.3f}, cube[6], neg[6];
    for (int i = 0; i < 6; i++) cube[i] = a[i] * a[i] * a[i], neg[i] = -a[i];
    nm_check(fabs(nm_spearman(a, a, 6) - 1) < 1e-12, "spearman(a, a) = 1");
    nm_check(fabs(nm_spearman(a, cube, 6) - 1) < 1e-12, "spearman(a, a^3) = 1 (monotone)");
    nm_check(fabs(nm_spearman(a, neg, 6) + 1) < 1e-12, "spearman(a, -a) = -1");
    float t[4] = {1, 2, 2, 3}, u[4] = {1, 2, 3, 4};
    double r = nm_spearman(t, u, 4);   /* scipy.stats.spearmanr: 0.9486832980505138 */
    nm_check(fabs(r - 0.9486832980505138) < 1e-12, "spearman with ties %.16f", r);
    float v[5] = {3, 1, 3, 3, 2}, w[5] = {5, 4, 3, 2, 1};
    r = nm_spearman(v, w, 5);          /* ranks (4,1,4,4,2) vs (5..1): 1 / sqrt(80) */
    nm_check(fabs(r - 0.11180339887498948) < 1e-12, "spearman with a triple tie %.16f", r);
    float c[4] = {2, 2, 2, 2};
    nm_check(isnan(nm_spearman(c, u, 4)), "spearman of a constant map is NaN");
}

static void check_roughness(void)
{
    float c[12] = {0}, ramp[12], checker[16];
    nm_check(nm_map_roughness(c, 3, 4) == 0, "roughness of a constant map is 0");
    /* 3 x 4 map increasing along the rows: ranks 1..12 in reading order.
     * Horizontal neighbours differ by 1 rank (9 pairs), vertical by 4 (8
     * pairs): (9 + 32) / 17 pairs / 11 = 41 / 187. */
    for (int i = 0; i < 12; i++) ramp[i] = (float)i;
    double r = nm_map_roughness(ramp, 3, 4);
    nm_check(fabs(r - 41.0 / 187.0) < 1e-12, "roughness of a ramp %.16f", r);
    /* 4 x 4 checkerboard of two values: ranks 4.5 and 12.5 (ties), every
     * neighbour pair differs by 8 ranks: 8 / 15. */
    for (int i = 0; i < 16; i++) checker[i] = (float)((i / 4 + i % 4) % 2);
    r = nm_map_roughness(checker, 4, 4);
    nm_check(fabs(r - 8.0 / 15.0) < 1e-12, "roughness of a checkerboard %.16f", r);
    nm_check(isnan(nm_map_roughness(c, 1, 1)), "roughness of one pixel is NaN");
    /* independent uniform noise: E|U - V| = 1/3 */
    enum { N = 256 };
    float *noise = malloc(sizeof(float) * N * N);
    uint64_t st = 7;
    nm_test_rand_fill(noise, (int64_t)N * N, 0, 1, &st);
    r = nm_map_roughness(noise, N, N);
    nm_check(fabs(r - 1.0 / 3.0) < 0.01, "roughness of noise %.4f, about 1/3", r);
    free(noise);
}

static void logits(nm_model *m, const float *x, float *out)
{
    nm_error err = {0};
    nm_check(nm_model_forward(m, x, out, &err) == NM_OK, "forward: %s", err.msg);
}

static double std_of(const nm_tensor *t)
{
    const float *v = nm_f32(t);
    double mean = 0, var = 0;
    for (int64_t i = 0; i < t->numel; i++) mean += v[i];
    mean /= (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++) var += (v[i] - mean) * (v[i] - mean);
    return sqrt(var / (double)t->numel);
}

/* Weight tensor (input 1) of the last layer node. */
static const nm_tensor *last_weight(nm_model *m)
{
    for (int i = m->g->n_nodes - 1; i >= 0; i--) {
        const nm_node *n = &m->g->nodes[i];
        if (n->op == NM_OP_CONV || n->op == NM_OP_GEMM || n->op == NM_OP_MATMUL) return nm_in(m->g, n, 1);
    }
    return NULL;
}

static void check_randomize(const char *model_spec, int want_layers)
{
    nm_model *m = load_model(model_spec);
    nm_shape in = nm_model_input_shape(m);
    int k = (int)nm_model_output_shape(m).dims[1];
    size_t n = (size_t)(in.dims[0] * in.dims[1] * in.dims[2] * in.dims[3]);
    float *x = malloc(sizeof(float) * n), *l0 = malloc(sizeof(float) * 4 * (size_t)k);
    float *l1 = l0 + k, *l2 = l1 + k, *l3 = l2 + k;
    uint64_t state = 42;
    nm_test_rand_fill(x, (int64_t)n, -1.f, 1.f, &state);
    nm_error err = {0};
    int layers = nm_model_layer_count(m);
    nm_check(layers == want_layers, "%s: %d layers with parameters (want %d)", model_spec, layers, want_layers);
    logits(m, x, l0);
    double std0 = std_of(last_weight(m));

    nm_check(nm_model_randomize(m, layers, 7, &err) == NM_OK, "randomize all: %s", err.msg);
    logits(m, x, l1);
    double std1 = std_of(last_weight(m));
    nm_check(max_diff(l0, l1, k) > 1e-3, "randomised logits differ (max diff %.3g)", max_diff(l0, l1, k));
    nm_check(fabs(std1 / std0 - 1) < 0.2, "randomised top weights keep their std (%.4g vs %.4g)", std1, std0);

    /* A new batch size re-plans the model; the randomisation must survive it. */
    nm_check(nm_model_set_batch(m, 2, &err) == NM_OK && nm_model_set_batch(m, (int)in.dims[0], &err) == NM_OK,
             "re-plan: %s", err.msg);
    logits(m, x, l2);
    nm_check(max_diff(l1, l2, k) == 0, "randomisation kept across re-planning (max diff %.3g)", max_diff(l1, l2, k));

    nm_check(nm_model_randomize(m, 0, 0, &err) == NM_OK, "restore: %s", err.msg);
    logits(m, x, l2);
    nm_check(max_diff(l0, l2, k) == 0, "restored logits are identical (max diff %.3g)", max_diff(l0, l2, k));

    nm_check(nm_model_randomize(m, layers + 5, 7, &err) == NM_OK, "randomize all again: %s", err.msg);
    logits(m, x, l3);
    nm_check(max_diff(l1, l3, k) == 0, "same seed, same randomised logits (max diff %.3g)", max_diff(l1, l3, k));

    nm_check(nm_model_randomize(m, 1, 7, &err) == NM_OK, "randomize the top layer: %s", err.msg);
    logits(m, x, l3);
    nm_check(max_diff(l0, l3, k) > 1e-4 && max_diff(l1, l3, k) > 1e-4, "top layer only: differs from both");

    /* The backward pass still works on randomised weights (saliency needs it). */
    nm_check(nm_model_randomize(m, layers, 3, &err) == NM_OK, "randomize: %s", err.msg);
    float *dx = malloc(sizeof(float) * n), *dy = calloc((size_t)(in.dims[0] * k), sizeof(float));
    dy[0] = 1;
    logits(m, x, l3);
    nm_check(nm_model_backward(m, dy, dx, &err) == NM_OK, "backward after randomize: %s", err.msg);
    nm_check(nm_model_randomize(m, 0, 0, &err) == NM_OK, "restore: %s", err.msg);
    logits(m, x, l2);
    nm_check(max_diff(l0, l2, k) == 0, "restored again: identical logits");
    free(x), free(l0), free(dx), free(dy);
    nm_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "auc")) return run_auc(argv[2], argv[3], argv[4]);
    if (argc == 4 && !strcmp(argv[1], "units")) {
        check_spearman();
        check_roughness();
        check_randomize(argv[2], atoi(argv[3]));
        return nm_test_summary();
    }
    printf("usage: %s auc REFDIR RECIPE MODEL | units MODEL LAYERS\n", argv[0]);
    return 2;
}
