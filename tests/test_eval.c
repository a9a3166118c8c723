/* Evaluation: deletion/insertion AUC against tools/eval_ref.py (RISE's
 * CausalMetric on PyTorch), Spearman rank correlation, and cascading model
 * randomisation.
 *   test_eval auc REFDIR RECIPE MODEL   (MODEL "shared:REL" = under ../shared)
 *   test_eval road REFDIR RECIPE MODEL  (ROAD against tools/road_ref.py)
 *   test_eval units MODEL LAYERS        (spearman; randomize on MODEL with LAYERS layers) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/argsort.h"
#include "eval/grid_pointing.h"
#include "eval/protocols.h"
#include "eval/road.h"
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

/* ------------------------------------------------------------------ ROAD */

#define ROAD_PROB_TOL 1e-5     /* float32 engines on the same images: measured <= 1.4e-6 */
#define ROAD_IMPUTE_TOL 1e-6   /* CG to 1e-9 relative residual vs a dense float64 solve, both stored as float32: measured <= 6e-8 */

/* One line of road_ref.txt against nm_road (no noise), and the imputed
 * image of MoRF 0.5 against the reference's. */
static void check_road_line(nm_model *m, const nm_preprocess *pp, const float *x, const char *dir, char *line)
{
    char name[64], map_path[1024], path[1200];
    int target, n = 0;
    if (sscanf(line, "road %63s %1023s %d morf%n", name, map_path, &target, &n) != 3 || !n) {
        nm_check(0, "road_ref.txt line parses");
        return;
    }
    double ref[4][NM_ROAD_FRACTIONS];
    char *p = line + n;
    for (int g = 0; g < 4; g++) {
        for (int f = 0; f < NM_ROAD_FRACTIONS; f++) ref[g][f] = strtod(p, &p);
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;   /* the next group's name */
    }
    nm_shape in = nm_model_input_shape(m);
    int c = (int)in.dims[1], h = (int)in.dims[2], w = (int)in.dims[3], hw = h * w;
    float *map = nm_test_read_floats(NULL, map_path, (size_t)hw);
    nm_road_result r, r3;
    nm_error err = {0};
    nm_status s = nm_road(m, pp, x, map, target, 0.0f, 1, 16, &r, &err);
    nm_check(s == NM_OK, "%s: nm_road: %s", name, err.msg);
    s = nm_road(m, pp, x, map, target, 0.0f, 1, 3, &r3, &err);   /* 14 images: the last batch padded */
    nm_check(s == NM_OK, "%s: nm_road (batch 3): %s", name, err.msg);
    double worst = 0, worst3 = 0;
    int top1_same = 1;
    for (int f = 0; f < NM_ROAD_FRACTIONS; f++) {
        worst = fmax(worst, fmax(fabs(r.morf[f] - ref[0][f]), fabs(r.lerf[f] - ref[1][f])));
        worst3 = fmax(worst3, fmax(fabs(r3.morf[f] - r.morf[f]), fabs(r3.lerf[f] - r.lerf[f])));
        /* top-1 may differ only where the probability is within the tolerance of a tie */
        top1_same &= r.morf_top1[f] == (int)ref[2][f] && r.lerf_top1[f] == (int)ref[3][f];
    }
    printf("road %-10s MoRF mean %.6f LeRF mean %.6f; max diff to the reference %.2e\n", name, r.morf_mean,
           r.lerf_mean, worst);
    nm_check(worst <= ROAD_PROB_TOL, "%s: ROAD probabilities within %g of the reference (%.2e)", name,
             ROAD_PROB_TOL, worst);
    nm_check(top1_same, "%s: ROAD top-1 flags equal the reference's", name);
    nm_check(worst3 <= 1e-5, "%s: batch 3 gives the same probabilities (%.2e)", name, worst3);

    /* The imputation itself: MoRF at 0.5 of this map. */
    snprintf(path, sizeof path, "%s/%s.morf50.bin", dir, name);
    float *ref_img = nm_test_read_floats(NULL, path, (size_t)hw * c), *img = malloc(sizeof(float) * (size_t)hw * c);
    int *order = malloc(sizeof(int) * (size_t)hw);
    unsigned char *removed = calloc((size_t)hw, 1);
    nm_argsort(map, hw, 1, order);
    for (int j = 0; j < (int)(hw * 0.5); j++) removed[order[j]] = 1;
    int iterations = 0;
    s = nm_road_impute(x, c, h, w, removed, 0.0f, 0, img, &iterations, &err);
    double d = max_diff(img, ref_img, hw * c);
    printf("road %-10s MoRF 0.5 imputation: max diff %.2e (%d CG iterations)\n", name, d, iterations);
    nm_check(s == NM_OK && d <= ROAD_IMPUTE_TOL, "%s: imputed image within %g of the dense solve (%.2e)", name,
             ROAD_IMPUTE_TOL, d);
    free(map), free(ref_img), free(img), free(order), free(removed);
}

static int run_road(const char *dir, const char *recipe, const char *model_spec)
{
    nm_model *m = load_model(model_spec);
    nm_shape in = nm_model_input_shape(m);
    nm_preprocess pp;
    nm_error err = {0};
    if (nm_preprocess_recipe(recipe, &pp, &err)) return printf("FAIL: %s\n", err.msg), 1;
    char path[1024], line[8192];
    snprintf(path, sizeof path, "%s/x.bin", dir);
    float *x = nm_test_read_floats(NULL, path, (size_t)(in.dims[1] * in.dims[2] * in.dims[3]));
    snprintf(path, sizeof path, "%s/road_ref.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return printf("FAIL: cannot open %s (run tools/road_ref.py first)\n", path), 1;
    int cases = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "road ", 5) == 0) check_road_line(m, &pp, x, dir, line), cases++;
    fclose(f);
    nm_check(cases >= 4, "road_ref.txt has cases (%d)", cases);
    free(x);
    nm_model_free(m);
    return nm_test_summary();
}

/* Imputation units: a linear image is reproduced exactly (every interior
 * pixel is the weighted mean of its neighbours); removed pixels satisfy
 * their equations; the noise has the asked standard deviation, touches
 * only removed pixels and follows the seed. */
static void check_road_units(void)
{
    enum { H = 20, W = 24, C = 3, HW = H * W };
    float x[C * HW], out[C * HW], noisy[C * HW], again[C * HW];
    unsigned char removed[HW] = {0};
    nm_error err = {0};
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < H; y++)
            for (int i = 0; i < W; i++) x[ch * HW + y * W + i] = 0.1f * ch + 0.02f * i + 0.03f * y;
    for (int y = 3; y < 15; y++)   /* an interior block and scattered interior pixels */
        for (int i = 4; i < 17; i++) removed[y * W + i] = 1;
    for (int y = 1; y < H - 1; y += 3) removed[y * W + W - 3] = 1;
    int it = 0;
    nm_status s = nm_road_impute(x, C, H, W, removed, 0.0f, 0, out, &it, &err);
    double d = max_diff(x, out, C * HW);
    nm_check(s == NM_OK && d < 1e-6, "a linear image is reproduced (max diff %.2e, %d iterations)", d, it);

    /* Random image, 60 % removed at random (border included): each removed
     * pixel equals the weighted mean of its in-image neighbours. */
    uint64_t st = 11;
    nm_test_rand_fill(x, C * HW, 0, 1, &st);
    float u[HW];
    nm_test_rand_fill(u, HW, 0, 1, &st);
    int n_removed = 0;
    for (int i = 0; i < HW; i++) n_removed += removed[i] = u[i] < 0.6f;
    s = nm_road_impute(x, C, H, W, removed, 0.0f, 0, out, &it, &err);
    double worst = 0, kept_diff = 0;
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < H; y++)
            for (int i = 0; i < W; i++) {
                const float *o = out + ch * HW;
                if (!removed[y * W + i]) {
                    kept_diff = fmax(kept_diff, fabs(o[y * W + i] - x[ch * HW + y * W + i]));
                    continue;
                }
                double sum = 0, wsum = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = y + dy, xx = i + dx;
                        if ((!dy && !dx) || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                        double wt = dy && dx ? 1 / 12. : 1 / 6.;
                        sum += wt * o[yy * W + xx], wsum += wt;
                    }
                worst = fmax(worst, fabs(o[y * W + i] - sum / wsum));
            }
    nm_check(s == NM_OK && worst < 1e-6 && kept_diff == 0, "removed pixels satisfy their equations (max residual "
             "%.2e, %d removed, %d iterations); kept pixels unchanged", worst, n_removed, it);

    s = nm_road_impute(x, C, H, W, removed, NM_ROAD_NOISE, 5, noisy, NULL, &err);
    double sum = 0, sq = 0;
    int n = 0, outside = 0;
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < HW; i++) {
            double e = (double)noisy[ch * HW + i] - out[ch * HW + i];
            if (!removed[i]) outside |= e != 0;
            else sum += e, sq += e * e, n++;
        }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    /* n ~ 860: the sample sd is within 10 % of 0.01 with overwhelming probability (its s.e. is ~2.4 %) */
    nm_check(s == NM_OK && !outside && fabs(sd / NM_ROAD_NOISE - 1) < 0.1 && fabs(mean) < 4 * NM_ROAD_NOISE / sqrt(n),
             "noise: sd %.5f (0.01), mean %.2e over %d removed values, kept pixels untouched", sd, mean, n);
    nm_road_impute(x, C, H, W, removed, NM_ROAD_NOISE, 5, again, NULL, &err);
    nm_check(max_diff(noisy, again, C * HW) == 0, "the same seed, the same noise");
    nm_road_impute(x, C, H, W, removed, NM_ROAD_NOISE, 6, again, NULL, &err);
    nm_check(max_diff(noisy, again, C * HW) > 0, "another seed, other noise");

    memset(removed, 1, sizeof removed);
    nm_check(nm_road_impute(x, C, H, W, removed, 0.0f, 0, out, NULL, &err) == NM_ERR_ARG,
             "every pixel removed: refused (%s)", err.msg);
}

/* Grid pointing scores on hand-made maps, and the composite choice. */
static void check_grid(void)
{
    enum { H = 9, W = 8 };   /* odd height: row 8 is in no tile; tiles 4 x 4 */
    float map[H * W];
    nm_grid_score g;
    nm_error err = {0};
    for (int i = 0; i < H * W; i++) map[i] = 0;
    for (int y = 0; y < 4; y++)     /* tile 1 (top right) holds 16 values 1..16 */
        for (int x = 4; x < 8; x++) map[y * W + x] = (float)(1 + y * 4 + x - 4);
    map[8 * W + 0] = -5;            /* a negative value outside every tile */
    nm_check(nm_grid_score_map(map, H, W, 1, &g, &err) == NM_OK, "grid score: %s", err.msg);
    /* top 72 / 4 = 18 pixels: the 16 of tile 1, then two zeros of tile 0 (index order) */
    nm_check(fabs(g.top_share - 16.0 / 18.0) < 1e-12 && g.hit == 1 && fabs(g.positive_share - 1) < 1e-12,
             "tile 1: top share %.6f (16/18), hit %d, positive share %.3f", g.top_share, g.hit, g.positive_share);
    nm_grid_score_map(map, H, W, 0, &g, &err);
    nm_check(fabs(g.top_share - 2.0 / 18.0) < 1e-12 && g.hit == 0 && g.positive_share == 0,
             "tile 0: top share %.6f (2/18), miss, positive share 0", g.top_share);
    for (int i = 0; i < H * W; i++) map[i] = 1;   /* constant: ties by index, first max at pixel 0 */
    nm_grid_score_map(map, H, W, 0, &g, &err);
    /* top 18 in index order: rows 0 and 1 (4 + 4 of tile 0) and the first 2 of row 2 */
    nm_check(g.hit == 1 && fabs(g.top_share - 10.0 / 18.0) < 1e-12, "constant map: index order (top share %.4f = 10/18)",
             g.top_share);
    for (int i = 0; i < H * W; i++) map[i] = -1;
    nm_grid_score_map(map, H, W, 2, &g, &err);
    nm_check(isnan(g.positive_share), "no positive value: positive share NaN");
    nm_check(nm_grid_score_map(map, H, W, 4, &g, &err) == NM_ERR_ARG, "tile 4 refused");

    /* 10 candidates of classes 0,0,0,1,1,2,2,3,4,5: composites of 4 distinct classes, each once. */
    int cls[10] = {0, 0, 0, 1, 1, 2, 2, 3, 4, 5}, out[4 * 5], again[4 * 5];
    int made = nm_grid_pick(cls, 10, 5, 3, out);
    int ok = made >= 1 && made <= 2, seen[10] = {0};
    for (int k = 0; k < made; k++)
        for (int t = 0; t < 4; t++) {
            ok &= !seen[out[4 * k + t]]++;
            for (int q = 0; q < t; q++) ok &= cls[out[4 * k + q]] != cls[out[4 * k + t]];
        }
    nm_check(ok, "nm_grid_pick: %d composites of 4 distinct classes, each candidate once", made);
    nm_check(nm_grid_pick(cls, 10, 5, 3, again) == made && !memcmp(out, again, sizeof(int) * 4 * (size_t)made),
             "nm_grid_pick: the same seed, the same composites");
    nm_check(nm_grid_pick(cls, 10, 1, 3, again) == 1, "nm_grid_pick: at most `want`");
    int three[4] = {0, 1, 2, 2};
    nm_check(nm_grid_pick(three, 4, 3, 1, again) == 0, "nm_grid_pick: 3 classes make no composite");
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
    if (argc == 5 && !strcmp(argv[1], "road")) return run_road(argv[2], argv[3], argv[4]);
    if (argc == 4 && !strcmp(argv[1], "units")) {
        check_spearman();
        check_roughness();
        check_road_units();
        check_grid();
        check_randomize(argv[2], atoi(argv[3]));
        return nm_test_summary();
    }
    printf("usage: %s auc REFDIR RECIPE MODEL | units MODEL LAYERS\n", argv[0]);
    return 2;
}
