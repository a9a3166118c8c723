/* Writers of the evaluation report: results.csv, summary.md, index.html.
 * Each file is composed in memory and written atomically. */
#include "eval/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"

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
    w->mask_area = as_written(w->mask_area), w->roughness = as_written(w->roughness);
    w->road_morf = as_written(w->road_morf), w->road_lerf = as_written(w->road_lerf);
    w->road_morf_top1 = as_written(w->road_morf_top1), w->road_lerf_top1 = as_written(w->road_lerf_top1);
    w->spearman = as_written(w->spearman), w->stability = as_written(w->stability);
    w->seconds = as_written(w->seconds);
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

/* ------------------------------------------------------------- summary.md */

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
    fprintf(f, "; AUC of the target's softmax probability.%s\n\n", r->sanity ? " Sanity: Spearman rank correlation "
            "between the map on the trained model and on the model with every layer re-initialised (lower is "
            "better)." : "");
    fputs("| method | images | deletion AUC (lower better) | insertion AUC (higher better) | insertion - deletion "
          "| keep rate | mask area | roughness | sanity Spearman | stability | seconds per image |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", f);
    for (int m = 0; m < r->n_methods; m++) {
        method_stats s = stats_of(r, m);
        if (!s.images) continue;
        double n = s.images;
        fprintf(f, "| %s | %d | %.4f | %.4f | %.4f | ", r->methods[m], s.images, s.del[main_p] / n,
                s.ins[main_p] / n, (s.ins[main_p] - s.del[main_p]) / n);
        if (s.masks) fprintf(f, "%.1f %% | ", 100.0 * s.kept / s.masks);
        else fputs("- | ", f);
        fprintf(f, "%.4f | %.4f | ", s.area / n, s.rough / n);
        if (s.n_rho) fprintf(f, "%.4f | ", s.rho / s.n_rho);
        else fputs(r->sanity ? "n/a (constant maps) | " : "- | ", f);
        if (s.n_stab) fprintf(f, "%.4f | ", s.stab / s.n_stab);
        else fputs(r->stability ? "n/a (constant maps) | " : "- | ", f);
        fprintf(f, "%.3f |\n", s.sec / n);
    }
    fputs("\nMask area: the fraction of the mask above 0.5 for mask methods, else the mean of the map scaled "
          "to [0, 1]. Roughness: the mean difference of the pixel ranks (scaled to [0, 1]) of neighbouring "
          "pixels, 0 for a constant map, about 0.33 for noise. Keep rate (mask methods): the masked image's top-1 class is the target. Sanity: the mean "
          "over the images where both maps vary (Spearman is undefined for a constant map). Stability: Spearman "
          "between the maps of the image and of the image plus uniform noise of +-1e-4 (higher is better).\n", f);
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
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>neuromask eval</title>\n<style>\n"
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}\n"
    "td,th{border:1px solid #ccc;padding:4px;text-align:center;vertical-align:top}\n"
    "td img{width:112px;height:112px;object-fit:contain;image-rendering:pixelated}\n"
    "th span{cursor:pointer;color:#0645ad;font-weight:normal;font-size:80%;margin:0 3px}\n"
    "th span:hover{text-decoration:underline}.m{font-size:80%;white-space:nowrap}\n"
    "</style></head><body>\n";

/* Sort the rows by the data-KEY attribute of column C; a second click
 * reverses. Rows without the value go last. */
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

static void html_header(const nm_eval_report *r, FILE *f)
{
    fputs("<table id=\"t\"><thead><tr><th>image<br><span data-c=\"0\" data-k=\"name\">name</span>"
          "<span data-c=\"0\" data-k=\"prob\">prob</span>", f);
    if (r->has_labels) fputs("<span data-c=\"0\" data-k=\"correct\">correct</span>", f);
    fputs("</th>", f);
    for (int m = 0; m < r->n_methods; m++) {
        int c = m + 1;
        fprintf(f, "<th>%s<br><span data-c=\"%d\" data-k=\"del\">deletion</span><span data-c=\"%d\" "
                   "data-k=\"ins\">insertion</span><span data-c=\"%d\" data-k=\"diff\">ins-del</span><br>",
                r->methods[m], c, c, c);
        for (int p = primary_protocol(r) + 1; p < NM_PROTOCOL_COUNT; p++)
            if (r->protocols >> p & 1)
                fprintf(f, "<span data-c=\"%d\" data-k=\"diff%s\">ins-del %s</span>", c,
                        nm_protocol_name((nm_protocol)p), nm_protocol_name((nm_protocol)p));
        if (r->road) fprintf(f, "<span data-c=\"%d\" data-k=\"road\">ROAD</span>", c);
        if (n_protocols(r) > 1 || r->road) fputs("<br>", f);
        fprintf(f, "<span data-c=\"%d\" data-k=\"area\">area</span><span data-c=\"%d\" data-k=\"rough\">roughness</span>",
                c, c);
        if (r->sanity) fprintf(f, "<span data-c=\"%d\" data-k=\"rho\">sanity</span>", c);
        if (r->stability) fprintf(f, "<span data-c=\"%d\" data-k=\"stab\">stability</span>", c);
        fprintf(f, "<span data-c=\"%d\" data-k=\"sec\">seconds</span></th>", c);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
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

static void html_method_cell(const nm_eval_report *r, FILE *f, const nm_eval_row *w)
{
    if (!w) {
        fputs("<td>-</td>", f);
        return;
    }
    int main_p = primary_protocol(r);
    fputs("<td", f);
    html_number_attr(f, "del", w->deletion[main_p]);
    html_number_attr(f, "ins", w->insertion[main_p]);
    html_number_attr(f, "diff", w->insertion[main_p] - w->deletion[main_p]);
    for (int p = main_p + 1; p < NM_PROTOCOL_COUNT; p++) {
        char key[32];
        snprintf(key, sizeof key, "diff%s", nm_protocol_name((nm_protocol)p));
        html_number_attr(f, key, w->insertion[p] - w->deletion[p]);
    }
    html_number_attr(f, "road", w->road_lerf - w->road_morf);
    html_number_attr(f, "area", w->mask_area);
    html_number_attr(f, "rough", w->roughness);
    html_number_attr(f, "rho", w->spearman);
    html_number_attr(f, "stab", w->stability);
    html_number_attr(f, "sec", w->seconds);
    fputs(">", f);
    if (w->overlay) fputs("<img src=\"", f), html_text(f, w->overlay), fputs("\" alt=\"\">", f);
    fprintf(f, "<div class=\"m\">del %.3f ins %.3f</div>", w->deletion[main_p], w->insertion[main_p]);
    for (int p = main_p + 1; p < NM_PROTOCOL_COUNT; p++)
        if (isfinite(w->insertion[p] - w->deletion[p]))
            fprintf(f, "<div class=\"m\">ins-del %s %.3f</div>", nm_protocol_name((nm_protocol)p),
                    w->insertion[p] - w->deletion[p]);
    if (isfinite(w->road_lerf - w->road_morf))
        fprintf(f, "<div class=\"m\">ROAD %.3f</div>", w->road_lerf - w->road_morf);
    fprintf(f, "<div class=\"m\">area %.3f rough %.3f", w->mask_area, w->roughness);
    if (w->kept >= 0) fputs(w->kept ? " kept" : " lost", f);
    fputs("</div>", f);
    if (isfinite(w->spearman)) fprintf(f, "<div class=\"m\">sanity %.3f</div>", w->spearman);
    if (isfinite(w->stability)) fprintf(f, "<div class=\"m\">stability %.3f</div>", w->stability);
    fprintf(f, "<div class=\"m\">%.2f s</div></td>", w->seconds);
}

static void compose_html(const nm_eval_report *r, FILE *f)
{
    fputs(html_head, f);
    fputs("<h1>neuromask eval</h1>\n<p>Model <code>", f);
    html_text(f, r->model);
    fprintf(f, "</code>, %d images. Deletion / insertion AUC: the %s protocol, %d steps (rise: deleted pixels %s; "
               "the other protocols delete to their fill and insert from it; docs/metrics.md). "
               "Overlays: the map scaled to [0, 1] over the image (turbo). Click a metric under a column "
               "header to sort by it; click again to reverse.</p>\n",
            r->n_images, nm_protocol_name((nm_protocol)primary_protocol(r)), r->steps, r->deletion_fill);
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
    html_header(r, f);
    const nm_eval_row **cell = row_table(r);
    for (int i = 0; cell && i < r->n_images; i++) {
        fputs("<tr>", f);
        html_image_cell(r, f, i, cell + i * r->n_methods);
        for (int m = 0; m < r->n_methods; m++) html_method_cell(r, f, cell[i * r->n_methods + m]);
        fputs("</tr>\n", f);
    }
    if (!cell) fputs("out of memory", f);   /* visible rather than an empty table */
    free(cell);
    fputs("</tbody></table>\n", f);
    fputs(html_script, f);
    fputs("</body></html>\n", f);
}

nm_status nm_eval_write_html(const nm_eval_report *r, const char *path, nm_error *err)
{
    return write_composed(r, path, compose_html, err);
}
