/* The grid pointing game of `neuromask eval` (docs/metrics.md). */
#include "eval_grid.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_common.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/grid_pointing.h"
#include "image/npy.h"

typedef struct grid_files {
    FILE *composites, *scores;
    char composites_tmp[4096], scores_tmp[4096];
} grid_files;

/* The composite k: each tile's image through the model's geometry at tile
 * size, pixel space, [C,H,W]; pixels in no tile (odd sides) are 0. */
static nm_status build_composite(const eval_grid_input *in, const int *tiles, float *comp, float *tile_buf,
                                 nm_error *err)
{
    static const nm_preprocess identity = {.scale = 1.f, .std = {1.f, 1.f, 1.f}};
    int th = in->h / 2, tw = in->w / 2;
    memset(comp, 0, sizeof(float) * (size_t)in->c * in->h * in->w);
    for (int t = 0; t < NM_GRID_TILES; t++) {
        const char *path = in->images[tiles[t]];
        nm_image img, geo;
        nm_status s = nm_image_load(path, &img, err);
        if (s) return s;
        s = nm_preprocess_geometry(in->pre, &img, th, tw, &geo, err);
        nm_image_free(&img);
        if (s) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return nm_fail(err, s, "%s: %s", path, msg);
        }
        nm_preprocess_normalize(&identity, &geo, in->c, tile_buf);
        nm_image_free(&geo);
        int y0 = (t / 2) * th, x0 = (t % 2) * tw;
        for (int ch = 0; ch < in->c; ch++)
            for (int y = 0; y < th; y++)
                memcpy(comp + ((size_t)ch * in->h + y0 + y) * in->w + x0, tile_buf + ((size_t)ch * th + y) * tw,
                       sizeof(float) * (size_t)tw);
    }
    return NM_OK;
}

static nm_status save_composite(const eval_grid_input *in, int k, const float *comp, nm_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/grid/%04d.npy", in->out, k);
    int64_t dims[3] = {in->c, in->h, in->w};
    nm_status s = nm_npy_write_f32(path, comp, 3, dims, err);
    nm_image pic = {.w = in->w, .h = in->h, .c = in->c};
    size_t plane = (size_t)in->h * in->w;
    pic.data = s ? NULL : malloc(sizeof(float) * plane * in->c);
    if (!s && !pic.data) s = nm_fail(err, NM_ERR_MEMORY, "out of memory");
    for (size_t i = 0; !s && i < plane; i++)
        for (int ch = 0; ch < in->c; ch++) pic.data[i * in->c + ch] = comp[ch * plane + i];
    snprintf(path, sizeof path, "%s/grid/%04d.png", in->out, k);
    if (!s) s = nm_image_write_png(path, &pic, err);
    free(pic.data);
    return s;
}

/* Each method explains each tile's class on composite k. */
static nm_status play(const eval_grid_input *in, int k, const int *tiles, const float *comp, grid_files *f,
                      nm_eval_grid_stats *stats, nm_error *err)
{
    nm_status s = NM_OK;
    for (int m = 0; !s && m < in->n_methods; m++)
        for (int t = 0; !s && t < NM_GRID_TILES; t++) {
            int target = in->info[tiles[t]].label;
            nm_saliency_options so = *in->so;
            so.target_class = so.neuromask.target_class = target;
            so.seed = so.neuromask.seed = in->seed + (uint64_t)(k * NM_GRID_TILES + t);
            nm_saliency sal;
            s = nm_explain(in->model, in->pre, comp, in->methods[m], &so, &sal, err);
            if (s) break;
            nm_grid_score g;
            s = nm_grid_score_map(sal.map, in->h, in->w, t, &g, err);
            if (!s && in->save_maps) {
                char path[4096];
                snprintf(path, sizeof path, "%s/maps/grid_%04d_t%d.%s.npy", in->out, k, t, in->method_names[m]);
                int64_t dims[2] = {in->h, in->w};
                s = nm_npy_write_f32(path, sal.map, 2, dims, err);
            }
            if (!s) {
                fprintf(f->scores, "%d,%d,%s,%d,%.6g,%.6g,%d,", k, t, in->method_names[m], target, (double)sal.prob,
                        g.top_share, g.hit);
                if (isfinite(g.positive_share)) fprintf(f->scores, "%.6g", g.positive_share);
                fprintf(f->scores, ",%.6g\n", sal.seconds);
                nm_eval_grid_stats *st = &stats[m];
                st->tiles++, st->hits += g.hit, st->top_share += g.top_share;
                if (isfinite(g.positive_share)) st->n_positive++, st->positive_share += g.positive_share;
                if (!in->quiet)
                    fprintf(stderr, "[grid %d tile %d] %s: class %d p %.3f top-25%% share %.3f %s\n", k, t,
                            in->method_names[m], target, (double)sal.prob, g.top_share, g.hit ? "hit" : "miss");
            }
            nm_saliency_free(&sal);
        }
    return s;
}

static int open_files(const eval_grid_input *in, grid_files *f)
{
    char path[4096];
    nm_error err = {0};
    snprintf(path, sizeof path, "%s/grid", in->out);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return cli_error("%s: cannot create: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/composites.csv", in->out);
    f->composites = nm_atomic_open(path, f->composites_tmp, sizeof f->composites_tmp, &err);
    snprintf(path, sizeof path, "%s/grid_pointing.csv", in->out);
    if (f->composites) f->scores = nm_atomic_open(path, f->scores_tmp, sizeof f->scores_tmp, &err);
    if (!f->scores) return cli_fail(&err);
    fputs("composite,tile,row,col,image,label\n", f->composites);
    fputs("composite,tile,method,target_class,prob,top25_share,hit,positive_share,seconds\n", f->scores);
    return CLI_OK;
}

static int close_files(const eval_grid_input *in, grid_files *f, int ok)
{
    if (!ok) {
        nm_atomic_abort(f->composites, f->composites_tmp);
        nm_atomic_abort(f->scores, f->scores_tmp);
        return CLI_OK;
    }
    char path[4096];
    nm_error err = {0};
    snprintf(path, sizeof path, "%s/composites.csv", in->out);
    nm_status s = nm_atomic_commit(f->composites, f->composites_tmp, path, &err);
    snprintf(path, sizeof path, "%s/grid_pointing.csv", in->out);
    if (!s) s = nm_atomic_commit(f->scores, f->scores_tmp, path, &err);
    else nm_atomic_abort(f->scores, f->scores_tmp);
    return s ? cli_fail(&err) : CLI_OK;
}

int eval_grid_run(const eval_grid_input *in, nm_eval_grid_stats *stats, int *made)
{
    int n = 0, classes = 0;
    int *cand = malloc(sizeof(int) * (size_t)in->n_images), *cls = malloc(sizeof(int) * (size_t)in->n_images);
    int *picks = malloc(sizeof(int) * NM_GRID_TILES * (size_t)(in->composites + 1));
    size_t image = (size_t)in->c * in->h * in->w;
    float *comp = malloc(sizeof(float) * image), *tile_buf = malloc(sizeof(float) * image);
    if (!cand || !cls || !picks || !comp || !tile_buf) {
        free(cand), free(cls), free(picks), free(comp), free(tile_buf);
        return cli_error("out of memory");
    }
    for (int i = 0; i < in->n_images; i++)
        if (in->info[i].label >= 0 && in->info[i].pred == in->info[i].label) {
            int seen = 0;
            for (int j = 0; j < n; j++) seen |= cls[j] == in->info[i].label;
            classes += !seen;
            cand[n] = i, cls[n++] = in->info[i].label;
        }
    *made = nm_grid_pick(cls, n, in->composites, in->seed, picks);
    memset(stats, 0, sizeof *stats * (size_t)in->n_methods);
    grid_files f = {0};
    int rc = *made ? open_files(in, &f)
                   : cli_error("--grid-pointing: no composite of 4 classes: %d of %d images are classified correctly "
                               "(by their --labels), of %d classes", n, in->n_images, classes);
    nm_error err = {0};
    nm_status s = NM_OK;
    for (int k = 0; !rc && !s && k < *made; k++) {
        int tiles[NM_GRID_TILES];
        for (int t = 0; t < NM_GRID_TILES; t++) {
            tiles[t] = cand[picks[k * NM_GRID_TILES + t]];
            fprintf(f.composites, "%d,%d,%d,%d,", k, t, t / 2, t % 2);
            nm_eval_csv_field(f.composites, in->images[tiles[t]]);
            fprintf(f.composites, ",%d\n", in->info[tiles[t]].label);
        }
        s = build_composite(in, tiles, comp, tile_buf, &err);
        if (!s) s = save_composite(in, k, comp, &err);
        if (!s) s = play(in, k, tiles, comp, &f, stats, &err);
    }
    if (!rc && s) rc = cli_fail(&err);
    if (f.scores || f.composites) {
        int closed = close_files(in, &f, !rc);
        if (!rc) rc = closed;
    }
    free(cand), free(cls), free(picks), free(comp), free(tile_buf);
    return rc;
}
