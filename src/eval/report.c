/* Writers of the evaluation report: results.csv, summary.md, index.html.
 * Each file is composed in memory and written atomically. */
#include "eval/report.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "image/render.h"

typedef void (*compose_fn)(const nm_eval_report *r, FILE *f);

static nm_status write_composed(const nm_eval_report *r, const char *path, compose_fn compose, nm_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", path);
    compose(r, f);
    int bad = ferror(f);
    fclose(f);
    nm_status s = bad ? nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", path) : nm_write_file_atomic(path, buf, len, err);
    free(buf);
    return s;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ------------------------------------------------------------ results.csv */

void nm_eval_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

#define CSV_NUMBER "%.6g"   /* results.csv's precision */

static void csv_number(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "," CSV_NUMBER, v);
    else fputc(',', f);
}

/* v as csv_number writes it: ins_del is the difference of the columns as
 * written, so a row read back (eval --resume) is written the same again. */
static double as_written(double v)
{
    char buf[64];
    if (!isfinite(v)) return v;
    snprintf(buf, sizeof buf, CSV_NUMBER, v);
    return strtod(buf, NULL);
}

void nm_eval_row_round(nm_eval_row *w)
{
    w->prob = (float)as_written(w->prob);
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++)
        w->deletion[p] = as_written(w->deletion[p]), w->insertion[p] = as_written(w->insertion[p]);
    w->kept_prob = as_written(w->kept_prob);
    w->mask_area = as_written(w->mask_area), w->roughness = as_written(w->roughness);
    w->road_morf = as_written(w->road_morf), w->road_lerf = as_written(w->road_lerf);
    w->road_morf_top1 = as_written(w->road_morf_top1), w->road_lerf_top1 = as_written(w->road_lerf_top1);
    w->spearman = as_written(w->spearman), w->stability = as_written(w->stability);
    w->seconds = as_written(w->seconds);
}

void nm_eval_curve_round(float *v, int n)
{
    for (int i = 0; i < n; i++) v[i] = (float)as_written(v[i]);
}

static void compose_csv(const nm_eval_report *r, FILE *f)
{
    fputs(NM_EVAL_CSV_HEADER "\n", f);
    for (int i = 0; i < r->n_rows; i++) {
        const nm_eval_row *w = &r->rows[i];
        const nm_eval_image *im = &r->images[w->image];
        nm_eval_csv_field(f, im->path);
        fprintf(f, ",%s,%d,", r->methods[w->method], w->target);
        if (im->label >= 0) fprintf(f, "%d,%d", im->label, im->pred == im->label);
        else fputc(',', f);
        csv_number(f, w->prob);
        for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {
            csv_number(f, w->deletion[p]);
            csv_number(f, w->insertion[p]);
            csv_number(f, as_written(w->insertion[p]) - as_written(w->deletion[p]));
        }
        csv_number(f, w->road_morf);
        csv_number(f, w->road_lerf);
        csv_number(f, as_written(w->road_lerf) - as_written(w->road_morf));
        csv_number(f, w->road_morf_top1);
        csv_number(f, w->road_lerf_top1);
        if (w->kept >= 0) fprintf(f, ",%d", w->kept);
        else fputc(',', f);
        csv_number(f, w->kept_prob);
        csv_number(f, w->mask_area);
        csv_number(f, w->roughness);
        csv_number(f, w->spearman);
        csv_number(f, w->stability);
        csv_number(f, w->seconds);
        fputc('\n', f);
    }
}

nm_status nm_eval_write_csv(const nm_eval_report *r, const char *path, nm_error *err)
{
    return write_composed(r, path, compose_csv, err);
}

/* ------------------------------------------------------------- curves.csv */

void nm_eval_curve_name(int insertion, int protocol, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", insertion ? "insertion" : "deletion", protocol ? "_" : "",
             protocol ? nm_protocol_name((nm_protocol)protocol) : "");
}

static void csv_curve(FILE *f, const nm_eval_report *r, const nm_eval_row *w, int insertion, int p, const float *v)
{
    char kind[32];
    nm_eval_curve_name(insertion, p, kind, sizeof kind);
    nm_eval_csv_field(f, r->images[w->image].path);
    fprintf(f, ",%s,%s", r->methods[w->method], kind);
    for (int i = 0; i <= r->steps; i++) fprintf(f, ",%.6g", (double)v[i]);
    fputc('\n', f);
}

static void compose_curves(const nm_eval_report *r, FILE *f)
{
    fputs(NM_EVAL_CURVES_HEADER "\n", f);
    for (int i = 0; i < r->n_rows; i++) {
        const nm_eval_row *w = &r->rows[i];
        for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {
            if (w->deletion_curve[p]) csv_curve(f, r, w, 0, p, w->deletion_curve[p]);
            if (w->insertion_curve[p]) csv_curve(f, r, w, 1, p, w->insertion_curve[p]);
        }
    }
}

nm_status nm_eval_write_curves(const nm_eval_report *r, const char *path, nm_error *err)
{
    return write_composed(r, path, compose_curves, err);
}

/* ---------------------------------------------------------------- columns */

/* One metric of a row, as the summary and the gallery show it. A new metric
 * of nm_eval_row gets a line in `column_kinds` and appears in summary.md and
 * index.html (tables, sort links, per-image text) with nothing else to do.
 * The deletion / insertion columns exist once per protocol measured. */
typedef struct column_kind {
    const char *key;        /* data-KEY in index.html (per protocol: a %s for the protocol's name) */
    const char *label;      /* short, in each gallery cell */
    const char *title;      /* the table headers */
    int protocols;          /* 0: one column; 1: the main protocol's; 2: one per other protocol measured */
    int better;             /* +1: higher is better, -1: lower is better, 0: neither */
    int percent;            /* the mean is shown as a percentage */
    double (*value)(const nm_eval_row *w, int protocol);   /* NaN when not measured; NULL: ... */
    size_t field;           /* ... the double at this offset of nm_eval_row */
    const char *note;       /* what it is, under the tables */
} column_kind;

static double col_deletion(const nm_eval_row *w, int p) { return w->deletion[p]; }
static double col_insertion(const nm_eval_row *w, int p) { return w->insertion[p]; }
static double col_difference(const nm_eval_row *w, int p) { return w->insertion[p] - w->deletion[p]; }
static double col_kept(const nm_eval_row *w, int p) { return (void)p, w->kept >= 0 ? (double)w->kept : NAN; }
static double col_half(const nm_eval_row *w, int p)
{
    return (void)p, isfinite(w->kept_prob) ? (double)(w->kept_prob >= 0.5) : NAN;
}
static double col_road(const nm_eval_row *w, int p) { return (void)p, w->road_lerf - w->road_morf; }
#define FIELD(name) NULL, offsetof(nm_eval_row, name)

static const column_kind column_kinds[] = {
    {"del", "del", "deletion AUC (lower better)", 1, -1, 0, col_deletion, 0,
     "Deletion AUC: the target's probability as the map's top pixels are removed, averaged over the steps"},
    {"ins", "ins", "insertion AUC (higher better)", 1, 1, 0, col_insertion, 0,
     "Insertion AUC: the same as the map's top pixels are revealed (RISE: on a blurred copy)"},
    {"diff", "ins-del", "insertion - deletion", 1, 1, 0, col_difference, 0,
     "Insertion - deletion: both in one number (higher better); the wins count it"},
    {"diff%s", "ins-del %s", "ins-del %s", 2, 1, 0, col_difference, 0,
     "Ins-del P: insertion - deletion under protocol P (docs/metrics.md)"},
    {"keep", "kept", "keep rate", 0, 1, 1, col_kept, 0,
     "Keep rate (mask methods): the image times the mask is still classified as the target"},
    {"half", "p >= 1/2", "probability kept >= 1/2", 0, 1, 1, col_half, 0,
     "Probability kept (mask methods): the image times the mask keeps at least half of the target's probability"},
    {"area", "area", "mask area", 0, 0, 0, FIELD(mask_area),
     "Mask area: the fraction of the mask above 0.5 for mask methods, else the mean of the map scaled to [0, 1]"},
    {"rough", "rough", "roughness", 0, 0, 0, FIELD(roughness),
     "Roughness: the mean difference of the pixel ranks (scaled to [0, 1]) of neighbouring pixels, 0 for a "
     "constant map, about 0.33 for noise"},
    {"rho", "sanity", "sanity Spearman (lower better)", 0, -1, 0, FIELD(spearman),
     "Sanity: Spearman rank correlation between the map on the trained model and on the model with every layer "
     "re-initialised (lower is better; undefined for a constant map)"},
    {"stab", "stability", "stability (higher better)", 0, 1, 0, FIELD(stability),
     "Stability: Spearman between the maps of the image and of the image plus uniform noise of +-1e-4"},
    {"road", "ROAD", "ROAD LeRF - MoRF (higher better)", 0, 1, 0, col_road, 0,
     "ROAD: the target's mean probability with the least relevant pixels imputed minus with the most relevant "
     "(Rong et al. 2022; docs/metrics.md)"},
    {"sec", "sec", "seconds per image", 0, 0, 0, FIELD(seconds), "Seconds: the explanation alone"},
};
#define N_KINDS ((int)(sizeof column_kinds / sizeof column_kinds[0]))
#define MAX_COLUMNS (N_KINDS + NM_PROTOCOL_COUNT)
#define WIN_COLUMN 2   /* insertion - deletion of the main protocol */

/* A column of this report: a kind, for one protocol. */
typedef struct report_column {
    const column_kind *kind;
    int protocol;
    char key[32], label[48], title[64];
    int better, percent;
    const char *note;
} report_column;

static double column_value(const report_column *c, const nm_eval_row *w)
{
    if (c->kind->value) return c->kind->value(w, c->protocol);
    double v;
    memcpy(&v, (const char *)w + c->kind->field, sizeof v);
    return v;
}

static int primary_protocol(const nm_eval_report *r);

/* The columns of r, in column_kinds' order; the first three are the main
 * protocol's deletion, insertion and their difference. */
static int report_columns(const nm_eval_report *r, report_column *out)
{
    int n = 0, main_p = primary_protocol(r);
    for (int k = 0; k < N_KINDS; k++) {
        const column_kind *ck = &column_kinds[k];
        for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {
            if (ck->protocols == 1 && p != main_p) continue;
            if (ck->protocols == 2 && (p == main_p || !(r->protocols >> p & 1))) continue;
            if (ck->protocols == 0 && p > 0) break;
            report_column *c = &out[n++];
            const char *name = nm_protocol_name((nm_protocol)p);
            c->kind = ck, c->protocol = ck->protocols ? p : 0;
            c->better = ck->better, c->percent = ck->percent, c->note = ck->note;
            snprintf(c->key, sizeof c->key, ck->key, name);
            snprintf(c->label, sizeof c->label, ck->label, name);
            snprintf(c->title, sizeof c->title, ck->title, name);
        }
    }
    return n;
}

/* cell[image * n_methods + method]: the row, or NULL. */
static const nm_eval_row **row_table(const nm_eval_report *r)
{
    const nm_eval_row **cell = calloc((size_t)r->n_images * r->n_methods + 1, sizeof *cell);
    for (int i = 0; cell && i < r->n_rows; i++) {
        const nm_eval_row *w = &r->rows[i];
        if (w->image >= 0 && w->image < r->n_images && w->method >= 0 && w->method < r->n_methods)
            cell[w->image * r->n_methods + w->method] = w;
    }
    return cell;
}

/* Some row has a value in column c. */
static int column_shown(const nm_eval_report *r, const report_column *c)
{
    for (int i = 0; i < r->n_rows; i++)
        if (isfinite(column_value(c, &r->rows[i]))) return 1;
    return 0;
}

typedef struct column_stats {
    int n;                  /* rows with a value */
    double mean;
    int n_paired;           /* images with a value for the method and the reference */
    double diff, se;        /* mean of method - reference over them, its standard error (NaN for < 2) */
} column_stats;

typedef struct method_summary {
    int images, wins;
    column_stats col[MAX_COLUMNS];
} method_summary;

static void summarise(const nm_eval_report *r, const nm_eval_row *const *cell, const report_column *cols,
                      int n_cols, method_summary *out)
{
    int nm = r->n_methods;
    for (int m = 0; m < nm; m++) {
        method_summary *s = &out[m];
        memset(s, 0, sizeof *s);
        for (int c = 0; c < n_cols; c++) {
            column_stats *cs = &s->col[c];
            double sum = 0, dsum = 0, dsq = 0;
            for (int i = 0; i < r->n_images; i++) {
                const nm_eval_row *w = cell[i * nm + m], *ref = cell[i * nm];
                if (!w) continue;
                if (c == 0) s->images++;
                double v = column_value(&cols[c], w);
                if (!isfinite(v)) continue;
                cs->n++, sum += v;
                double v0 = ref ? column_value(&cols[c], ref) : NAN;
                if (m > 0 && isfinite(v0)) cs->n_paired++, dsum += v - v0, dsq += (v - v0) * (v - v0);
            }
            cs->mean = cs->n ? sum / cs->n : NAN;
            cs->diff = cs->n_paired ? dsum / cs->n_paired : NAN;
            double var = cs->n_paired > 1 ? (dsq - dsum * dsum / cs->n_paired) / (cs->n_paired - 1) : NAN;
            cs->se = var >= 0 ? sqrt(var / cs->n_paired) : NAN;
        }
    }
    for (int i = 0; i < r->n_images; i++) {   /* wins: the best insertion - deletion of the image (ties: each) */
        double best = -INFINITY;
        for (int m = 0; m < nm; m++)
            if (cell[i * nm + m] && column_value(&cols[WIN_COLUMN], cell[i * nm + m]) > best)
                best = column_value(&cols[WIN_COLUMN], cell[i * nm + m]);
        for (int m = 0; m < nm; m++)
            if (cell[i * nm + m] && column_value(&cols[WIN_COLUMN], cell[i * nm + m]) == best) out[m].wins++;
    }
}

/* What summary.md and index.html are composed from. */
typedef struct report_tables {
    const nm_eval_row **cell;       /* row_table */
    method_summary *sum;            /* per method */
    report_column cols[MAX_COLUMNS];
    int n_cols;
    int shown[MAX_COLUMNS];         /* column_shown */
} report_tables;

/* 0 when out of memory (then nothing is left to free). */
static int tables_make(const nm_eval_report *r, report_tables *t)
{
    t->cell = row_table(r);
    t->sum = calloc((size_t)r->n_methods + 1, sizeof *t->sum);
    if (!t->cell || !t->sum) {
        free(t->cell), free(t->sum);
        return 0;
    }
    t->n_cols = report_columns(r, t->cols);
    summarise(r, t->cell, t->cols, t->n_cols, t->sum);
    for (int c = 0; c < t->n_cols; c++) t->shown[c] = column_shown(r, &t->cols[c]);
    return 1;
}

static void tables_free(report_tables *t)
{
    free(t->cell), free(t->sum);
}

static void print_mean(FILE *f, const report_column *c, double v)
{
    if (c->percent) fprintf(f, "%.1f %%", 100.0 * v);
    else fprintf(f, "%.4f", v);
}

static void print_diff(FILE *f, const report_column *c, const column_stats *cs, const char *pm)
{
    double k = c->percent ? 100.0 : 1.0;
    fprintf(f, "%+.4f", k * cs->diff);
    if (isfinite(cs->se)) fprintf(f, " %s %.4f", pm, k * cs->se);
}

/* The protocol of the main table's deletion / insertion columns: rise when
 * measured, else the first measured. */
static int primary_protocol(const nm_eval_report *r)
{
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++)
        if (r->protocols >> p & 1) return p;
    return NM_PROTOCOL_RISE;
}

static int n_protocols(const nm_eval_report *r)
{
    int n = 0;
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++) n += r->protocols >> p & 1;
    return n;
}

typedef struct method_stats {
    int images, masks, kept, n_rho, n_stab, n_road;
    double del[NM_PROTOCOL_COUNT], ins[NM_PROTOCOL_COUNT], area, rough, rho, stab, sec;
    double road_morf, road_lerf, road_morf_top1, road_lerf_top1;
} method_stats;

static method_stats stats_of(const nm_eval_report *r, int method)
{
    method_stats s = {0};
    for (int i = 0; i < r->n_rows; i++) {
        const nm_eval_row *w = &r->rows[i];
        if (w->method != method) continue;
        s.images++;
        for (int p = 0; p < NM_PROTOCOL_COUNT; p++) s.del[p] += w->deletion[p], s.ins[p] += w->insertion[p];
        s.area += w->mask_area, s.sec += w->seconds;
        s.rough += w->roughness;
        if (w->kept >= 0) s.masks++, s.kept += w->kept;
        if (isfinite(w->spearman)) s.n_rho++, s.rho += w->spearman;
        if (isfinite(w->stability)) s.n_stab++, s.stab += w->stability;
        if (isfinite(w->road_morf) && isfinite(w->road_lerf)) {
            s.n_road++, s.road_morf += w->road_morf, s.road_lerf += w->road_lerf;
            s.road_morf_top1 += w->road_morf_top1, s.road_lerf_top1 += w->road_lerf_top1;
        }
    }
    return s;
}

/* Insertion - deletion per protocol (deletion / insertion in brackets). */
static void compose_protocol_table(const nm_eval_report *r, FILE *f)
{
    fputs("\n## Deletion / insertion per protocol\n\nInsertion - deletion AUC (higher is better), deletion / "
          "insertion in brackets. `rise`: deletion to black, insertion from RISE's blur; every other protocol "
          "deletes to its fill and inserts from the image filled with it: `black`, `blur` (RISE's blur), `grey` "
          "(0.5), `mean` (the image's mean colour). See docs/metrics.md.\n\n| method |", f);
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++)
        if (r->protocols >> p & 1) fprintf(f, " ins-del %s |", nm_protocol_name((nm_protocol)p));
    fputs(" mean over protocols |\n|---|", f);
    for (int p = 0; p <= NM_PROTOCOL_COUNT; p++)
        if (p == NM_PROTOCOL_COUNT || r->protocols >> p & 1) fputs("---:|", f);
    fputc('\n', f);
    for (int m = 0; m < r->n_methods; m++) {
        method_stats s = stats_of(r, m);
        if (!s.images) continue;
        double n = s.images, all = 0;
        fprintf(f, "| %s |", r->methods[m]);
        for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {
            if (!(r->protocols >> p & 1)) continue;
            fprintf(f, " %.4f (%.3f / %.3f) |", (s.ins[p] - s.del[p]) / n, s.del[p] / n, s.ins[p] / n);
            all += (s.ins[p] - s.del[p]) / n;
        }
        fprintf(f, " %.4f |\n", all / n_protocols(r));
    }
}

static void compose_road_table(const nm_eval_report *r, FILE *f)
{
    fputs("\n## ROAD\n\nROAD (Rong et al. 2022) without retraining: the pixels the map ranks first (MoRF) or last "
          "(LeRF) removed at 10, 20, 30, 40, 50, 70 and 90 % and filled by noisy linear imputation; the mean "
          "over the fractions of the target's probability, and the share of the fractions where it stays "
          "top-1. LeRF - MoRF: higher is better. See docs/metrics.md.\n\n"
          "| method | images | LeRF - MoRF | MoRF (lower better) | LeRF (higher better) | MoRF top-1 | LeRF top-1 |\n"
          "|---|---:|---:|---:|---:|---:|---:|\n", f);
    for (int m = 0; m < r->n_methods; m++) {
        method_stats s = stats_of(r, m);
        if (!s.n_road) continue;
        double n = s.n_road;
        fprintf(f, "| %s | %d | %.4f | %.4f | %.4f | %.3f | %.3f |\n", r->methods[m], s.n_road,
                (s.road_lerf - s.road_morf) / n, s.road_morf / n, s.road_lerf / n, s.road_morf_top1 / n,
                s.road_lerf_top1 / n);
    }
}

static void compose_grid_table(const nm_eval_report *r, FILE *f)
{
    fprintf(f, "\n## Grid pointing game\n\n%d composites of 2 x 2 images of four classes, each classified "
               "correctly on its own (DIR/composites.csv); each tile's class explained on the composite. Top-25 %% "
               "share: the share of the map's top quarter of pixels inside the tile (chance 0.25). Hit rate: the "
               "map's maximum lies in the tile. Positive share: the map's positive mass inside the tile (Boehle "
               "et al.'s localisation). Per tile: grid_pointing.csv. See docs/metrics.md.\n\n"
               "| method | tiles | top-25 %% share | hit rate | positive share |\n|---|---:|---:|---:|---:|\n",
            r->grid_composites);
    for (int m = 0; m < r->n_methods; m++) {
        const nm_eval_grid_stats *g = &r->grid[m];
        if (!g->tiles) continue;
        fprintf(f, "| %s | %d | %.4f | %.4f | ", r->methods[m], g->tiles, g->top_share / g->tiles,
                (double)g->hits / g->tiles);
        if (g->n_positive) fprintf(f, "%.4f |\n", g->positive_share / g->n_positive);
        else fputs("n/a |\n", f);
    }
}

/* ------------------------------------------------------------- summary.md */

static void compose_summary(const nm_eval_report *r, FILE *f)
{
    int labelled = 0, correct = 0;
    for (int i = 0; i < r->n_images; i++)
        if (r->images[i].label >= 0) labelled++, correct += r->images[i].pred == r->images[i].label;
    fprintf(f, "# neuromask eval\n\nModel `%s`, %d image%s", r->model, r->n_images, r->n_images == 1 ? "" : "s");
    if (labelled) fprintf(f, " (top-1 accuracy %.1f %% on the %d labelled)", 100.0 * correct / labelled, labelled);
    int main_p = primary_protocol(r);
    if (main_p == NM_PROTOCOL_RISE)
        fprintf(f, ". Deletion and insertion: RISE's protocol (`rise`), %d steps, deleted pixels %s, insertion from "
                   "a blurred copy (kernel 11, sigma 5)", r->steps, r->deletion_fill);
    else
        fprintf(f, ". Deletion and insertion: the `%s` protocol, %d steps, deleted pixels become the fill, "
                   "insertion starts from the fill", nm_protocol_name((nm_protocol)main_p), r->steps);
    fputs("; AUC of the target's softmax probability.\n\n", f);
    report_tables t;
    if (!tables_make(r, &t)) {
        fputs("out of memory\n", f);   /* visible rather than an empty table */
        return;
    }
    const method_summary *sum = t.sum;
    const int *shown = t.shown;
    fputs("| method | images | wins |", f);
    for (int c = 0; c < t.n_cols; c++)
        if (shown[c]) fprintf(f, " %s |", t.cols[c].title);
    fputs("\n|---|---:|---:|", f);
    for (int c = 0; c < t.n_cols; c++)
        if (shown[c]) fputs("---:|", f);
    fputc('\n', f);
    for (int m = 0; m < r->n_methods; m++) {
        if (!sum[m].images) continue;
        fprintf(f, "| %s | %d | %d |", r->methods[m], sum[m].images, sum[m].wins);
        for (int c = 0; c < t.n_cols; c++) {
            if (!shown[c]) continue;
            fputc(' ', f);
            if (sum[m].col[c].n) print_mean(f, &t.cols[c], sum[m].col[c].mean);
            else fputc('-', f);
            fputs(" |", f);
        }
        fputc('\n', f);
    }
    if (r->n_methods > 1) {
        fprintf(f, "\nPaired differences to %s (method - %s over the images both have, mean +- standard error):\n\n"
                   "| method | images |", r->methods[0], r->methods[0]);
        for (int c = 0; c < t.n_cols; c++)
            if (shown[c] && t.cols[c].better) fprintf(f, " %s |", t.cols[c].title);
        fputs("\n|---|---:|", f);
        for (int c = 0; c < t.n_cols; c++)
            if (shown[c] && t.cols[c].better) fputs("---:|", f);
        fputc('\n', f);
        for (int m = 1; m < r->n_methods; m++) {
            fprintf(f, "| %s | %d |", r->methods[m], sum[m].col[WIN_COLUMN].n_paired);
            for (int c = 0; c < t.n_cols; c++) {
                if (!shown[c] || !t.cols[c].better) continue;
                fputc(' ', f);
                if (sum[m].col[c].n_paired) print_diff(f, &t.cols[c], &sum[m].col[c], "+-");
                else fputc('-', f);
                fputs(" |", f);
            }
            fputc('\n', f);
        }
    }
    fputs("\nWins: the images on which the method has the highest insertion - deletion (ties count for each).", f);
    for (int c = 0; c < t.n_cols; c++)   /* once per kind */
        if (shown[c] && (c == 0 || t.cols[c].note != t.cols[c - 1].note)) fprintf(f, " %s.", t.cols[c].note);
    fputc('\n', f);
    tables_free(&t);
    if (n_protocols(r) > 1) compose_protocol_table(r, f);
    if (r->road) compose_road_table(r, f);
    if (r->grid_composites) compose_grid_table(r, f);
}

nm_status nm_eval_write_summary(const nm_eval_report *r, const char *path, nm_error *err)
{
    return write_composed(r, path, compose_summary, err);
}

/* ------------------------------------------------------------- index.html */

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void html_number_attr(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, " data-%s=\"%.6g\"", key, v);
}

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>neuromask eval</title>\n<style>\n"
    "body{font-family:sans-serif;margin:1em;max-width:100%}table{border-collapse:collapse}\n"
    "td,th{border:1px solid #ccc;padding:4px;text-align:center;vertical-align:top}\n"
    "#summary td,#summary th{text-align:right}#summary td:first-child{text-align:left}\n"
    "td img{width:112px;height:112px;object-fit:contain;image-rendering:pixelated}\n"
    "th span{cursor:pointer;color:#0645ad;font-weight:normal;font-size:80%;margin:0 3px}\n"
    "th span:hover{text-decoration:underline}.m{font-size:80%;white-space:nowrap}\n"
    ".d{font-size:75%;color:#555;white-space:nowrap}.ref{font-size:75%;color:#555}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:2em}figure{margin:0;width:440px}.key{list-style:none;padding:0}\n"
    ".key li{display:inline-block;margin-right:1.2em}.sw{display:inline-block;width:1.6em;height:.6em;"
    "margin-right:.3em;vertical-align:middle}\n"
    ".js-error{color:#b00;font-weight:bold}svg text{font-size:11px;font-family:sans-serif}\n"
    "</style>\n"
    /* before anything else runs: a script error or a picture that does not load shows on the
     * page (and the browser test sees it); resource errors reach window only while capturing */
    "<script>window.addEventListener('error',function(e){var t=e.target,p=document.createElement('pre');"
    "p.className='js-error';p.textContent=t&&t.tagName?'could not load '+(t.getAttribute('src')||t.tagName):"
    "'script error: '+e.message;(document.body||document.documentElement).appendChild(p);},true);</script>\n"
    "</head><body>\n";

/* Sort the gallery's rows by the data-KEY attribute of column C; a second
 * click reverses. Rows without the value go last. With #selftest in the
 * address the page sorts itself by insertion AUC and says in #selftest
 * whether the rows came out in order (the browser test reads it). */
static const char html_script[] =
    "<script>\n"
    "function sortBy(el){var c=+el.dataset.c,k=el.dataset.k,dir=el.dataset.dir==='1'?-1:1;\n"
    " el.dataset.dir=dir===1?'1':'-1';var tb=document.querySelector('#t tbody');\n"
    " var rows=Array.prototype.slice.call(tb.rows);\n"
    " rows.sort(function(a,b){var x=a.cells[c].dataset[k],y=b.cells[c].dataset[k];\n"
    "  if(x===undefined||y===undefined)return x===y?0:(x===undefined?1:-1);\n"
    "  var nx=parseFloat(x),ny=parseFloat(y);\n"
    "  if(isNaN(nx)||isNaN(ny))return x.localeCompare(y)*dir;return (nx-ny)*dir;});\n"
    " rows.forEach(function(r){tb.appendChild(r);});}\n"
    "Array.prototype.forEach.call(document.querySelectorAll('th span[data-k]'),\n"
    " function(s){s.onclick=function(){sortBy(s);};});\n"
    "if(location.hash==='#selftest'){var s=document.querySelector('#t th span[data-k=\"ins\"]');\n"
    " s.click();var c=+s.dataset.c,v=Array.prototype.map.call(document.querySelector('#t tbody').rows,\n"
    "  function(r){return parseFloat(r.cells[c].dataset.ins);}),ok=v.length>0;\n"
    " for(var i=1;i<v.length;i++)ok=ok&&!(v[i]<v[i-1]);\n"
    " var d=document.createElement('div');d.id='selftest';d.textContent=(ok?'ok':'fail')+' '+v.join(' ');\n"
    " document.body.appendChild(d);}\n"
    "</script>\n";

static const char *class_name(const nm_eval_report *r, int c)
{
    return r->class_names && c >= 0 && c < r->n_classes ? r->class_names[c] : NULL;
}

static void html_class(FILE *f, const nm_eval_report *r, const char *what, int c)
{
    const char *name = class_name(r, c);
    fprintf(f, "<div class=\"m\">%s %d", what, c);
    if (name) fputc(' ', f), html_text(f, name);
    fputs("</div>", f);
}

/* Tableau 10: one colour per method in the curves. */
static const char *const palette[10] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

static void html_summary(const nm_eval_report *r, FILE *f, const report_tables *t)
{
    const method_summary *sum = t->sum;
    const int *shown = t->shown;
    fprintf(f, "<h2>Per-method summary</h2>\n<p>Means over the images; under each, the paired difference to "
               "<b>%s</b> (method - %s over the images both have, mean &plusmn; standard error). Wins: the "
               "images on which the method has the highest insertion - deletion (ties count for each).</p>\n"
               "<table id=\"summary\"><thead><tr><th>method</th><th>images</th><th>wins</th>",
            r->methods[0], r->methods[0]);
    for (int c = 0; c < t->n_cols; c++)
        if (shown[c]) fprintf(f, "<th data-k=\"%s\">%s</th>", t->cols[c].key, t->cols[c].title);
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int m = 0; m < r->n_methods; m++) {
        fprintf(f, "<tr data-method=\"%s\"><td><span class=\"sw\" style=\"background:%s\"></span>%s%s</td><td>%d</td>"
                   "<td>%d</td>", r->methods[m], palette[m % 10], r->methods[m],
                m == 0 ? " <span class=\"ref\">(reference)</span>" : "", sum[m].images, sum[m].wins);
        for (int c = 0; c < t->n_cols; c++) {
            if (!shown[c]) continue;
            const column_stats *cs = &sum[m].col[c];
            fprintf(f, "<td data-k=\"%s\">", t->cols[c].key);
            if (cs->n) print_mean(f, &t->cols[c], cs->mean);
            else fputc('-', f);
            if (m > 0 && t->cols[c].better && cs->n_paired) {
                fputs("<div class=\"d\">", f);
                print_diff(f, &t->cols[c], cs, "&plusmn;");
                fputs("</div>", f);
            }
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n<ul class=\"m\" id=\"notes\" style=\"white-space:normal\">", f);
    for (int c = 0; c < t->n_cols; c++)   /* once per kind */
        if (shown[c] && (c == 0 || t->cols[c].note != t->cols[c - 1].note)) fprintf(f, "<li>%s.</li>", t->cols[c].note);
    fputs("</ul>\n", f);
}

/* The mean curve of each method over its rows with curves, as a polyline
 * in an SVG chart of the fraction of pixels changed (x) against the
 * target's probability (y). */
static void html_chart(const nm_eval_report *r, FILE *f, const nm_eval_row *const *cell, int insertion,
                       const method_summary *sum)
{
    enum { W = 440, H = 280, L = 44, R = 12, T = 24, B = 36 };
    int n = r->steps + 1, main_p = primary_protocol(r);
    double *mean = calloc((size_t)n, sizeof *mean);
    if (!mean) return;
    fprintf(f, "<figure><svg id=\"%s-curves\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            insertion ? "insertion" : "deletion", W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"14\">%s (%s protocol): mean probability of the target (%s is better)</text>\n",
            L, insertion ? "insertion" : "deletion", nm_protocol_name((nm_protocol)main_p), insertion ? "higher" : "lower");
    for (int g = 0; g <= 4; g++) {   /* grid and ticks at 0, 0.25, ... 1 on both axes */
        double y = T + (H - T - B) * (1.0 - g / 4.0), x = L + (W - L - R) * (g / 4.0);
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2g</text>\n",
                L, W - R, y, y, L - 4, y + 4, g / 4.0);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2g</text>\n",
                x, x, T, H - B, x, H - B + 14, g / 4.0);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">fraction of pixels %s, in the map's order</text>\n",
            (L + W - R) / 2, H - 6, insertion ? "revealed" : "removed");
    for (int m = 0; m < r->n_methods; m++) {
        int rows = 0;
        memset(mean, 0, sizeof *mean * (size_t)n);
        for (int i = 0; i < r->n_images; i++) {
            const nm_eval_row *w = cell[i * r->n_methods + m];
            const float *v = w ? (insertion ? w->insertion_curve[main_p] : w->deletion_curve[main_p]) : NULL;
            if (!v) continue;
            rows++;
            for (int k = 0; k < n; k++) mean[k] += v[k];
        }
        if (!rows) continue;
        fprintf(f, "<polyline data-method=\"%s\" data-images=\"%d\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                   "points=\"", r->methods[m], rows, palette[m % 10]);
        for (int k = 0; k < n; k++) {
            double p = mean[k] / rows;
            p = p < 0 ? 0 : p > 1 ? 1 : p;
            fprintf(f, "%s%.1f,%.1f", k ? " " : "", L + (W - L - R) * (double)k / (n - 1), T + (H - T - B) * (1.0 - p));
        }
        fputs("\"/>\n", f);
    }
    fputs("</svg><figcaption><ul class=\"key\">", f);
    for (int m = 0; m < r->n_methods; m++) {
        fprintf(f, "<li><span class=\"sw\" style=\"background:%s\"></span>%s", palette[m % 10], r->methods[m]);
        const column_stats *cs = &sum[m].col[insertion ? 1 : 0];
        if (cs->n) fprintf(f, " (AUC %.3f)", cs->mean);
        fputs("</li>", f);
    }
    fputs("</ul></figcaption></figure>\n", f);
    free(mean);
}

static void html_curves(const nm_eval_report *r, FILE *f, const nm_eval_row *const *cell, const method_summary *sum)
{
    int any = 0;
    for (int i = 0; i < r->n_rows; i++) any |= r->rows[i].deletion_curve[primary_protocol(r)] != NULL;
    fputs("<h2>Deletion and insertion curves</h2>\n", f);
    if (!any) {
        fputs("<p id=\"curves\">No curves in this report (curves.csv has none of its rows).</p>\n", f);
        return;
    }
    fputs("<p>Each line is a method's mean over its images. The area under it is the AUC.</p>\n"
          "<div class=\"charts\" id=\"curves\">\n", f);
    html_chart(r, f, cell, 0, sum);
    html_chart(r, f, cell, 1, sum);
    fputs("</div>\n", f);
}

/* One colour bar per kind of map among the methods, drawn from the colour
 * maps the overlays use (nm_map_scale_of, nm_colormap). */
static void html_legend(const nm_eval_report *r, FILE *f)
{
    static const char *const ends[3][3] = {
        [NM_MAP_MASK] = {"0 (removed)", "0.5", "1 (kept)"},
        [NM_MAP_SIGNED] = {"-a (lowers the class)", "0", "+a (raises it)"},
        [NM_MAP_NONNEGATIVE] = {"0", "a / 2", "a (most important)"},
    };
    static const char *const what[3] = {
        [NM_MAP_MASK] = "masks, 0..1",
        [NM_MAP_SIGNED] = "signed maps, -a..+a, 0 is white (no effect) and the overlay shows the image there",
        [NM_MAP_NONNEGATIVE] = "non-negative maps, 0..a",
    };
    fputs("<h2>Colour legend</h2>\n<p>Overlays: the map's colour over the image at half strength (signed maps: "
          "in proportion to |value|). a is the 99.5th percentile of |value| over the image's map (values beyond "
          "take the end colour), so colours compare places within one map, not maps.</p>\n<div id=\"legend\">\n", f);
    for (int k = 0; k < 3; k++) {
        int used = 0;
        for (int m = 0; m < r->n_methods; m++) used |= nm_method_map_kind(nm_method_from_name(r->methods[m])) == (nm_map_kind)k;
        if (!used) continue;
        nm_map_scale s = nm_map_scale_of(NULL, 0, (nm_map_kind)k);
        fprintf(f, "<div><svg width=\"420\" height=\"40\" role=\"img\"><defs><linearGradient id=\"bar-%s\">",
                nm_map_kind_name((nm_map_kind)k));
        for (int i = 0; i <= 16; i++) {
            float rgb[3];
            nm_colormap(s.cmap, i / 16.0f, rgb);
            fprintf(f, "<stop offset=\"%.4f\" stop-color=\"rgb(%d,%d,%d)\"/>", i / 16.0, (int)lroundf(255 * rgb[0]),
                    (int)lroundf(255 * rgb[1]), (int)lroundf(255 * rgb[2]));
        }
        fprintf(f, "</linearGradient></defs><rect x=\"10\" y=\"2\" width=\"400\" height=\"16\" fill=\"url(#bar-%s)\" "
                   "stroke=\"#000\"/><text x=\"10\" y=\"32\">%s</text><text x=\"210\" y=\"32\" "
                   "text-anchor=\"middle\">%s</text><text x=\"410\" y=\"32\" text-anchor=\"end\">%s</text></svg>"
                   "<span class=\"m\"> %s: ", nm_map_kind_name((nm_map_kind)k), ends[k][0], ends[k][1], ends[k][2],
                what[k]);
        for (int m = 0, first = 1; m < r->n_methods; m++)
            if (nm_method_map_kind(nm_method_from_name(r->methods[m])) == (nm_map_kind)k)
                fprintf(f, "%s%s", first ? "" : ", ", r->methods[m]), first = 0;
        fputs("</span></div>\n", f);
    }
    fputs("</div>\n", f);
}

static void html_header(const nm_eval_report *r, FILE *f, const report_tables *t)
{
    fputs("<table id=\"t\"><thead><tr><th>image<br><span data-c=\"0\" data-k=\"name\">name</span>"
          "<span data-c=\"0\" data-k=\"prob\">prob</span>", f);
    if (r->has_labels) fputs("<span data-c=\"0\" data-k=\"correct\">correct</span>", f);
    fputs("</th>", f);
    for (int m = 0; m < r->n_methods; m++) {
        fprintf(f, "<th>%s<br>", r->methods[m]);
        for (int c = 0; c < t->n_cols; c++)
            if (t->shown[c])
                fprintf(f, "<span data-c=\"%d\" data-k=\"%s\">%s</span>", m + 1, t->cols[c].key, t->cols[c].label);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
}

static void html_image_cell(const nm_eval_report *r, FILE *f, int i, const nm_eval_row *const *cells)
{
    const nm_eval_image *im = &r->images[i];
    const nm_eval_row *any = NULL;
    for (int m = 0; m < r->n_methods && !any; m++) any = cells[m];
    fputs("<td data-name=\"", f);
    html_text(f, base_name(im->path));
    fputc('"', f);
    if (any) html_number_attr(f, "prob", any->prob);
    if (im->label >= 0) fprintf(f, " data-correct=\"%d\"", im->pred == im->label);
    fputs(">", f);
    if (im->picture) fputs("<img src=\"", f), html_text(f, im->picture), fputs("\" alt=\"\">", f);
    fputs("<div class=\"m\">", f);
    html_text(f, base_name(im->path));
    fputs("</div>", f);
    html_class(f, r, "top-1", im->pred);
    if (im->label >= 0) html_class(f, r, im->label == im->pred ? "label (correct)" : "label (wrong)", im->label);
    if (any) fprintf(f, "<div class=\"m\">target %d, p %.3f</div>", any->target, (double)any->prob);
    fputs("</td>", f);
}

static void html_method_cell(FILE *f, const report_tables *t, const nm_eval_row *w)
{
    if (!w) {
        fputs("<td>-</td>", f);
        return;
    }
    fputs("<td", f);
    for (int c = 0; c < t->n_cols; c++) html_number_attr(f, t->cols[c].key, column_value(&t->cols[c], w));
    fputs(">", f);
    if (w->overlay) fputs("<img src=\"", f), html_text(f, w->overlay), fputs("\" alt=\"\">", f);
    int on_line = 0;
    for (int c = 0; c < t->n_cols; c++) {   /* two values a line */
        double v = column_value(&t->cols[c], w);
        if (!isfinite(v)) continue;
        fputs(on_line ? " " : "<div class=\"m\">", f);
        if (t->cols[c].percent) fprintf(f, "%s %s", t->cols[c].label, v > 0 ? "yes" : "no");
        else fprintf(f, "%s %.3g", t->cols[c].label, v);
        if (++on_line == 2) fputs("</div>", f), on_line = 0;
    }
    fputs(on_line ? "</div></td>" : "</td>", f);
}

static void compose_html(const nm_eval_report *r, FILE *f)
{
    fputs(html_head, f);
    fputs("<h1>neuromask eval</h1>\n<p id=\"run\">Model <code>", f);
    html_text(f, r->model);
    fprintf(f, "</code>, %d images, %d methods. Deletion / insertion AUC: the %s protocol, %d steps (rise: deleted "
               "pixels %s, insertion from a blurred copy; the other protocols delete to their fill and insert from "
               "it; docs/metrics.md).</p>\n",
            r->n_images, r->n_methods, nm_protocol_name((nm_protocol)primary_protocol(r)), r->steps, r->deletion_fill);
    report_tables t;
    if (!tables_make(r, &t)) {
        fputs("out of memory</body></html>\n", f);   /* visible rather than an empty page */
        return;
    }
    html_summary(r, f, &t);
    if (r->grid_composites) {
        fprintf(f, "<h2>Grid pointing game</h2>\n<p>%d composites (composites.csv, grid/*.png), each tile's class "
                   "explained; per tile: grid_pointing.csv.</p>\n<table><tr><th>method</th><th>tiles</th>"
                   "<th>top-25 %% share</th><th>hit rate</th><th>positive share</th></tr>\n", r->grid_composites);
        for (int m = 0; m < r->n_methods; m++) {
            const nm_eval_grid_stats *g = &r->grid[m];
            if (!g->tiles) continue;
            fprintf(f, "<tr><td>%s</td><td>%d</td><td>%.3f</td><td>%.3f</td><td>", r->methods[m], g->tiles,
                    g->top_share / g->tiles, (double)g->hits / g->tiles);
            if (g->n_positive) fprintf(f, "%.3f", g->positive_share / g->n_positive);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    html_curves(r, f, t.cell, t.sum);
    html_legend(r, f);
    fputs("<h2>Maps</h2>\n<p>Each image and, beside it, each method's overlay. Click a metric under a column "
          "header to sort by it; click again to reverse.</p>\n", f);
    html_header(r, f, &t);
    for (int i = 0; i < r->n_images; i++) {
        fputs("<tr>", f);
        html_image_cell(r, f, i, t.cell + i * r->n_methods);
        for (int m = 0; m < r->n_methods; m++) html_method_cell(f, &t, t.cell[i * r->n_methods + m]);
        fputs("</tr>\n", f);
    }
    tables_free(&t);
    fputs("</tbody></table>\n", f);
    fputs(html_script, f);
    fputs("</body></html>\n", f);
}

nm_status nm_eval_write_html(const nm_eval_report *r, const char *path, nm_error *err)
{
    return write_composed(r, path, compose_html, err);
}
