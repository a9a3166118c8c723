/* neuromask eval: run explanation methods over images and score them:
 * deletion / insertion AUC (RISE's protocol), keep rate and mask area of
 * mask methods, and optionally the model-randomisation sanity check. Writes
 * results.csv, summary.md and index.html (with overlays under img/). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_common.h"
#include "eval_files.h"
#include "eval_grid.h"
#include "eval_resume.h"
#include "shard.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/probability.h"
#include "eval/protocols.h"
#include "eval/report.h"
#include "eval/road.h"
#include "image/npy.h"
#include "image/render.h"

static const char eval_help[] =
    "Usage: neuromask eval --model M.onnx --methods A,B,... --out DIR [options] [IMAGE|DIR...]\n"
    "Explain each image with each method and score the maps: deletion and insertion AUC\n"
    "(Petsiuk et al. 2018: pixels removed / revealed in the map's order, area under the\n"
    "target's probability), keep rate, probability kept and mask area for mask methods,\n"
    "seconds, and with --sanity the Spearman correlation between the map on the trained\n"
    "model and on the model with every layer re-initialised (Adebayo et al. 2018), with\n"
    "--stability the Spearman correlation between the maps of the image and of the image\n"
    "plus noise far below one grey level. Writes DIR/results.csv, DIR/curves.csv (each row's deletion\n"
    "and insertion curves), DIR/summary.md (per-method means, paired differences to the\n"
    "first method of --methods, wins), DIR/index.html (the same tables, the mean curves,\n"
    "a colour legend and the overlays side by side; no external assets) and\n"
    "DIR/img/*.png, all refreshed as it goes (docs/outputs.md describes them), and for\n"
    "neuromask merge DIR/run.txt (the model's SHA-256, methods, options, class names)\n"
    "and DIR/images.tsv. A shard (--shard, or a Slurm array task) writes all of them\n"
    "into DIR/shard-K-of-N/ instead; neuromask merge DIR puts the shards together.\n"
    "\n"
    "Methods: gradient, gradxinput, integrated-gradients, smoothgrad, gradcam, occlusion,\n"
    "rise, meaningful-perturbation, extremal-perturbation, neuromask; all: every one.\n"
    "\n"
    "Options:\n"
    "  --model FILE         the ONNX classifier (input [N,C,H,W], C = 1 or 3)\n"
    "  --methods LIST       comma-separated method names, or all\n"
    "  --out DIR            output folder (created if missing)\n"
    "  --images DIR         the images of DIR (besides any given as arguments)\n"
    "  --recursive          a folder means the images of all its subfolders too (sorted\n"
    "                       by path; an ImageFolder tree)\n"
    "  --labels CSV         'file,label,...' with a header: true classes by file name;\n"
    "                       adds top-1 correctness (a 'class' or 'name' column names classes)\n"
    "  --limit N            only N images: the first N, or with --spread N spread evenly\n"
    "  --spread             pick the --limit images evenly over the sorted list\n"
    "  --class C            explain class C (default: the predicted class)\n"
    "  --auc-steps N        deletion / insertion steps (64); each moves ceil(H*W/N) pixels\n"
    "  --protocols LIST|all deletion / insertion protocols (default rise): rise (delete to\n"
    "                       black, insert from RISE's blur), and per fill F of black, blur,\n"
    "                       grey, mean (the image's mean colour): delete to F, insert from\n"
    "                       the image filled with F (docs/metrics.md)\n"
    "  --deletion-fill F    rise protocol: black (default) | mean: deleted pixels become the\n"
    "                       value that normalises to 0 (RISE's code on a normalised tensor)\n"
    "  --road               ROAD (Rong et al. 2022): the top (MoRF) / bottom (LeRF) 10..90 %\n"
    "                       of the pixels removed and filled by noisy linear imputation;\n"
    "                       mean target probability, LeRF - MoRF (docs/metrics.md)\n"
    "  --grid-pointing      instead of the per-image metrics, the grid pointing game (Boehle\n"
    "                       et al. 2021/2022): 2 x 2 composites of images of four classes,\n"
    "                       each classified correctly on its own (needs --labels; tiles of\n"
    "                       half the input side), chosen by --seed; each tile's class\n"
    "                       explained on the composite; share of the map's top 25 % in the\n"
    "                       tile and pointing hit rate. Writes DIR/composites.csv,\n"
    "                       DIR/grid_pointing.csv, DIR/grid/ (docs/metrics.md)\n"
    "  --composites N       composites of --grid-pointing (16; fewer if the images allow fewer)\n"
    "  --save-maps          also write each method's raw map as DIR/maps/NNNN_IMAGE.METHOD.npy\n"
    "                       (float32, model input H x W)\n"
    "  --sanity             model-randomisation check (every layer re-initialised)\n"
    "  --sanity-cascade     ... and per cascade depth (top 1, 2, ... layers) into\n"
    "                       DIR/sanity_cascade.csv (one explanation per depth: slow)\n"
    "  --stability          explain each image again with uniform noise of +-1e-4 added\n"
    "                       (1/40 of a grey level; same method seed) and record the\n"
    "                       Spearman correlation of the two maps\n"
    "  --seed N             seed of the sampling methods and the randomisation (0)\n"
    "  --batch N            images per engine call (16)\n"
    "  --class-names FILE   class names, one per line (default: the model's metadata\n"
    "                       (neuromask annotate), else the 'class' or 'name' column of --labels)\n"
    "  --threads N          threads (default: the free cores, following the load)\n"
    CLI_MAX_MEMORY_HELP
    "  --force              overwrite existing results\n"
    "  --resume             continue an interrupted run in DIR: keep the rows of\n"
    "                       DIR/results.csv (and their overlays) for the images and\n"
    "                       methods of this run, compute only the missing ones. The\n"
    "                       same model, images, methods and options as the first run:\n"
    "                       DIR/run.txt records them, and another run is refused\n"
    "  --quiet              no progress or result lines (progress: on a terminal one\n"
    "                       line in place; elsewhere a line with the ETA every 5 s, or\n"
    "                       every NEUROMASK_PROGRESS_SECONDS)\n"
    CLI_SHARD_HELP
    "  -h, --help           this help\n"
    "\n"
    "Method options (defaults as the library's nm_saliency_defaults):\n"
    "  --ig-steps N, --ig-baseline black|blur|mean|noise    integrated gradients\n"
    "  --sg-samples N, --sg-sigma F                         SmoothGrad\n"
    "  --gradcam-layer NAME                                 Grad-CAM tensor\n"
    "  --occ-patch N, --occ-stride N, --occ-fill NAME       occlusion\n"
    "  --rise-masks N, --rise-cell N, --rise-p F            RISE\n"
    "  --pert-steps N, --pert-grid N, --blur-sigma F        perturbation methods\n"
    "  --preset NAME        NeuroMask preset: default (used when none is named),\n"
    "                       cifar, imagenet (see explain --help)\n"
    "  --steps N, --early-stop   NeuroMask steps (as explain's --steps; also --nm-steps);\n"
    "                       stop once converged\n"
    "  --nm SPEC            NeuroMask options over the preset, 'key=value,...' (e.g.\n"
    "                       lr=0.1,optimizer=adam,grid=8,init=zero,sparsity=mask,\n"
    "                       baseline=blur; see nm_neuromask_parse)\n"
    "\n";

typedef struct eval_opts {
    const char *model, *out, *images_dir, *labels_csv, *methods, *preset, *fill, *class_names;
    const char *ig_baseline, *occ_fill, *nm_spec, *protocol_list;
    int limit, spread, auc_steps, batch, threads, force, resume, quiet, sanity, cascade, stability, seed, cls,
        nm_steps, early_stop, save_maps, recursive, road, grid, composites;
    unsigned protocols;         /* bit set of nm_protocol */
    int64_t max_bytes;
    nm_saliency_options so;     /* method options given on the command line */
    cli_preprocess_flags pre;
    cli_shard_flags shard_flags;
    cli_shard shard;            /* n == 0: the whole list */
    char *shard_out;            /* DIR/shard-K-of-N, which o->out then names */
    char **inputs;
    int n_inputs;
    int argc;                   /* the command line, for run.txt */
    char **argv;
} eval_opts;

static int method_option(cli_parser *p, eval_opts *o)
{
    nm_saliency_options *s = &o->so;
    return cli_int(p, "--ig-steps", 1, 100000, &s->ig_steps) || cli_string(p, "--ig-baseline", &o->ig_baseline) ||
           cli_int(p, "--sg-samples", 1, 100000, &s->sg_samples) || cli_float(p, "--sg-sigma", &s->sg_sigma) ||
           cli_string(p, "--gradcam-layer", &s->gradcam_layer) ||
           cli_int(p, "--occ-patch", 1, 4096, &s->occ_patch) || cli_int(p, "--occ-stride", 1, 4096, &s->occ_stride) ||
           cli_string(p, "--occ-fill", &o->occ_fill) || cli_int(p, "--rise-masks", 1, 1000000, &s->rise_masks) ||
           cli_int(p, "--rise-cell", 1, 1024, &s->rise_cell) || cli_float(p, "--rise-p", &s->rise_p) ||
           cli_int(p, "--pert-steps", 1, 1000000, &s->pert_steps) || cli_int(p, "--pert-grid", 1, 4096, &s->pert_grid) ||
           cli_float(p, "--blur-sigma", &s->blur_sigma) || cli_string(p, "--preset", &o->preset) ||
           cli_int(p, "--steps", 1, 1000000, &o->nm_steps) || cli_int(p, "--nm-steps", 1, 1000000, &o->nm_steps) ||
           cli_string(p, "--nm", &o->nm_spec);
}

static int parse_args(int argc, char **argv, eval_opts *o)
{
    cli_parser p = cli_parser_start("eval", argc, argv);
    o->inputs = calloc((size_t)argc + 1, sizeof *o->inputs);
    if (!o->inputs) return cli_error("out of memory");
    nm_saliency_defaults(&o->so);
    while (cli_next(&p)) {
        if (cli_positional(&p)) o->inputs[o->n_inputs++] = (char *)p.arg;
        else if (cli_string(&p, "--model", &o->model) || cli_string(&p, "--out", &o->out) ||
                 cli_string(&p, "--methods", &o->methods) || cli_string(&p, "--images", &o->images_dir) ||
                 cli_string(&p, "--labels", &o->labels_csv) || cli_string(&p, "--deletion-fill", &o->fill) ||
                 cli_string(&p, "--class-names", &o->class_names) ||
                 cli_string(&p, "--protocols", &o->protocol_list)) {}
        else if (cli_int(&p, "--limit", 1, 1 << 30, &o->limit) || cli_int(&p, "--auc-steps", 1, 1 << 20, &o->auc_steps) ||
                 cli_int(&p, "--class", 0, 1 << 24, &o->cls) || cli_int(&p, "--seed", 0, 1 << 30, &o->seed) ||
                 cli_int(&p, "--batch", 1, 1024, &o->batch) || cli_int(&p, "--threads", 1, 1024, &o->threads) ||
                 cli_max_memory(&p, &o->max_bytes)) {}
        else if (cli_flag(&p, "--spread")) o->spread = 1;
        else if (cli_flag(&p, "--save-maps")) o->save_maps = 1;
        else if (cli_flag(&p, "--road")) o->road = 1;
        else if (cli_flag(&p, "--grid-pointing")) o->grid = 1;
        else if (cli_int(&p, "--composites", 1, 100000, &o->composites)) {}
        else if (cli_flag(&p, "--sanity")) o->sanity = 1;
        else if (cli_flag(&p, "--sanity-cascade")) o->sanity = o->cascade = 1;
        else if (cli_flag(&p, "--stability")) o->stability = 1;
        else if (cli_flag(&p, "--early-stop")) o->early_stop = 1;
        else if (cli_flag(&p, "--force")) o->force = 1;
        else if (cli_flag(&p, "--resume")) o->resume = 1;
        else if (cli_flag(&p, "--quiet")) o->quiet = 1;
        else if (cli_flag(&p, "--recursive")) o->recursive = 1;
        else if (method_option(&p, o)) {}
        else if (cli_preprocess_option(&p, &o->pre)) {}
        else if (cli_shard_option(&p, &o->shard_flags)) {}
        else cli_unknown(&p);
    }
    if (p.help) {
        fputs(eval_help, stdout);
        fputs(cli_preprocess_help, stdout);
        return -1;
    }
    if (p.status) return p.status;
    if (!o->model) return cli_usage_error("eval", "--model is required (see --help)");
    if (!o->out) return cli_usage_error("eval", "--out is required (see --help)");
    if (!o->methods) return cli_usage_error("eval", "--methods is required (see --help)");
    if (o->fill && strcmp(o->fill, "black") && strcmp(o->fill, "mean"))
        return cli_usage_error("eval", "--deletion-fill must be black or mean (got '%s')", o->fill);
    char bad[64];
    o->protocols = o->protocol_list ? nm_protocols_parse(o->protocol_list, bad, sizeof bad) : 1u << NM_PROTOCOL_RISE;
    if (!o->protocols)
        return cli_usage_error("eval", "--protocols: unknown protocol '%s' (rise, black, blur, grey, mean or all)",
                               bad);
    if (o->grid && !o->labels_csv)
        return cli_usage_error("eval", "--grid-pointing needs --labels (each tile must be classified correctly)");
    if (o->grid && (o->resume || o->sanity || o->stability || o->road || o->protocol_list))
        return cli_usage_error("eval", "--grid-pointing plays the grid game only: it cannot be combined with "
                                       "--resume, --sanity, --stability, --road or --protocols");
    if (o->composites && !o->grid) return cli_usage_error("eval", "--composites needs --grid-pointing");
    if (o->resume && o->cascade)
        return cli_usage_error("eval", "--resume cannot be combined with --sanity-cascade "
                                       "(sanity_cascade.csv is written whole by one run)");
    if (o->images_dir) o->inputs[o->n_inputs++] = (char *)o->images_dir;
    if (o->n_inputs == 0) return cli_usage_error("eval", "no images given (--images DIR or IMAGE...)");
    int rc = cli_shard_resolve("eval", &o->shard_flags, &o->shard);
    if (!rc && o->shard.n && o->grid)   /* its composites draw from the whole list */
        rc = cli_usage_error("eval", "--grid-pointing plays on the whole list: it cannot run as shard %d of %d",
                             o->shard.k, o->shard.n);
    if (rc || !o->shard.n) return rc;
    char name[64];
    cli_shard_name(&o->shard, name, sizeof name);
    if (asprintf(&o->shard_out, "%s/%s", o->out, name) < 0) return cli_error("out of memory");
    o->out = o->shard_out;
    return CLI_OK;
}

/* ------------------------------------------------------------ the run */

typedef struct eval_run {
    nm_model *model;
    nm_preprocess pre;
    int c, h, w, k;
    int n_methods;
    nm_method methods[NM_METHOD_COUNT];
    const char *method_names[NM_METHOD_COUNT];
    nm_auc_options auc;
    cli_labels class_labels;    /* names from --class-names or the model */
    char **csv_names;           /* or from the labels CSV: k entries, may be NULL */
    char **label_files;         /* labels CSV: base names and classes */
    int *label_classes, n_label_rows;
    char **images;              /* this run's (shard's) images */
    int n_images;
    int first, n_total;         /* images[i] is image first + i of the n_total of the whole list */
    char list_sha256[65];       /* of the whole list */
    nm_eval_image *image_info;
    nm_eval_row *rows;
    int n_rows;
    char **strings;             /* owned picture / overlay paths */
    int n_strings;
    float *x, *xn, *logits, *scratch, *rmap;    /* pixel image; normalised batch; logits; mask work */
    float *curves;              /* per row slot and protocol p: deletion at 2p, insertion at 2p + 1,
                                   auc.steps + 1 points each */
    FILE *cascade;
    char cascade_tmp[4096];
    eval_resumed resumed;       /* --resume: the rows already in DIR/results.csv */
    cli_progress progress;
    int image, method;          /* the pair being scored, for the progress lines */
    nm_eval_grid_stats grid_stats[NM_METHOD_COUNT];     /* --grid-pointing */
    int grid_composites;
} eval_run;

static void add_method(eval_run *r, nm_method m)
{
    for (int i = 0; i < r->n_methods; i++)
        if (r->methods[i] == m) return;
    r->method_names[r->n_methods] = nm_method_name(m);
    r->methods[r->n_methods++] = m;
}

/* "a,b,c" or "all" (every method, in nm_method order). */
static int parse_methods(const char *list, eval_run *r)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy) return cli_error("out of memory");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        nm_method m = nm_method_from_name(t);
        if (!strcmp(t, "all"))
            for (int k = 0; k < NM_METHOD_COUNT; k++) add_method(r, (nm_method)k);
        else if (m == NM_METHOD_COUNT) {
            int rc = cli_usage_error("eval", "unknown method '%s' (see --help)", t);
            free(copy);
            return rc;
        } else add_method(r, m);
    }
    free(copy);
    return r->n_methods ? CLI_OK : cli_usage_error("eval", "--methods names no method");
}

static int pick_baseline(const char *value, nm_baseline *out)
{
    static const char *const names[] = {"black", "blur", "mean", "noise"};
    for (int i = 0; value && i < 4; i++)
        if (!strcmp(value, names[i])) return *out = (nm_baseline)i, CLI_OK;
    return value ? cli_usage_error("eval", "unknown baseline '%s' (black, blur, mean, noise)", value) : CLI_OK;
}

static int resolve_method_options(eval_opts *o, const eval_run *r)
{
    nm_error err = {0};
    nm_saliency_options *s = &o->so;
    /* no --preset: the library's defaults (nm_saliency_defaults, in o->so) */
    if (o->preset && nm_neuromask_preset(o->preset, &s->neuromask, &err)) return cli_usage_error("eval", "%s", err.msg);
    if (o->nm_spec && nm_neuromask_parse(o->nm_spec, &s->neuromask, &err)) return cli_usage_error("eval", "--nm: %s", err.msg);
    if (o->nm_steps) s->neuromask.steps = o->nm_steps;
    if (o->early_stop) s->neuromask.early_stop = 1;   /* else the preset's */
    s->target_class = o->cls;
    if (o->batch) s->batch = o->batch;
    int rc = pick_baseline(o->ig_baseline, &s->ig_baseline);
    if (!rc) rc = pick_baseline(o->occ_fill, &s->occ_fill);
    if (!rc && o->cls >= r->k)
        rc = cli_usage_error("eval", "--class %d, but the model has %d classes", o->cls, r->k);
    return rc;
}

/* ------------------------------------------------------------- labels */

static int column(char **fields, int n, const char *a, const char *b)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(fields[i], a) || (b && !strcmp(fields[i], b))) return i;
    return -1;
}

static int add_label_row(eval_run *r, const char *file, int label, int *cap)
{
    if (r->n_label_rows == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        char **nf = realloc(r->label_files, sizeof *nf * (size_t)*cap);
        if (nf) r->label_files = nf;
        int *nc = realloc(r->label_classes, sizeof *nc * (size_t)*cap);
        if (nc) r->label_classes = nc;
        if (!nf || !nc) return cli_error("out of memory");
    }
    r->label_files[r->n_label_rows] = strdup(file);
    r->label_classes[r->n_label_rows++] = label;
    return r->label_files[r->n_label_rows - 1] ? CLI_OK : cli_error("out of memory");
}

/* The 'file' and 'label' columns (and 'class' or 'name' for class names). */
static int load_label_csv(const char *path, eval_run *r)
{
    FILE *f = fopen(path, "r");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    char line[4096], *fields[64];
    int n = fgets(line, sizeof line, f) ? cli_split_csv(line, fields, 64) : 0, cap = 0, rc = CLI_OK;
    int col_file = column(fields, n, "file", NULL), col_label = column(fields, n, "label", NULL);
    int col_name = column(fields, n, "class", "name");
    if (col_file < 0 || col_label < 0) rc = cli_error("%s: needs a header with 'file' and 'label' columns", path);
    r->csv_names = calloc((size_t)r->k, sizeof *r->csv_names);
    if (!r->csv_names) rc = cli_error("out of memory");
    for (int line_no = 2; rc == CLI_OK && fgets(line, sizeof line, f); line_no++) {
        n = cli_split_csv(line, fields, 64);
        if (n < 0) {
            rc = cli_error("%s: line %d: broken quoting", path, line_no);
            break;
        }
        if (n <= col_file || !*fields[col_file]) continue;
        char *end = NULL;
        long label = n > col_label ? strtol(fields[col_label], &end, 10) : -1;
        if (!end || end == fields[col_label] || label < 0 || label >= r->k) {
            rc = cli_error("%s: '%s' has no class index in 0..%d in column 'label'", path, fields[col_file], r->k - 1);
            break;
        }
        rc = add_label_row(r, fields[col_file], (int)label, &cap);
        if (col_name >= 0 && n > col_name && *fields[col_name] && !r->csv_names[label])
            r->csv_names[label] = strdup(fields[col_name]);
    }
    fclose(f);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int label_of(const eval_run *r, const char *image)
{
    for (int i = 0; i < r->n_label_rows; i++)
        if (!strcmp(r->label_files[i], base_name(image))) return r->label_classes[i];
    return -1;
}

/* ------------------------------------------------------------- engine */

/* Logits of one pixel-space image (every slot of the current batch holds it). */
static nm_status predict(eval_run *r, const float *pix, float *logits, nm_error *err)
{
    nm_shape in = nm_model_input_shape(r->model);
    int batch = (int)in.dims[0];
    size_t plane = (size_t)r->h * r->w;
    for (int ch = 0; ch < r->c; ch++) {
        const nm_preprocess *p = &r->pre;
        for (size_t i = 0; i < plane; i++)
            r->xn[ch * plane + i] = (pix[ch * plane + i] * p->scale + p->offset - p->mean[ch]) / p->std[ch];
    }
    size_t image = (size_t)r->c * plane;
    float *in_buf = malloc(sizeof(float) * image * batch), *out = malloc(sizeof(float) * (size_t)r->k * batch);
    nm_status s = in_buf && out ? NM_OK : nm_fail(err, NM_ERR_MEMORY, "out of memory");
    for (int b = 0; !s && b < batch; b++) memcpy(in_buf + b * image, r->xn, sizeof(float) * image);
    if (!s) s = nm_model_predict(r->model, in_buf, out, err);
    if (!s) memcpy(logits, out, sizeof(float) * (size_t)r->k);
    free(in_buf), free(out);
    return s;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* ------------------------------------------------------------- outputs */

static const char *keep_string(eval_run *r, char *s)
{
    char **more = s ? realloc(r->strings, sizeof *more * (size_t)(r->n_strings + 1)) : NULL;
    if (!more) {
        free(s);
        return NULL;
    }
    r->strings = more;
    r->strings[r->n_strings++] = s;
    return s;
}

static char *picture_name(int index, const char *image, const char *suffix)
{
    return eval_output_name("img", "png", index, image, suffix);
}

/* --save-maps: "maps/NNNN_stem.method.npy". */
static char *map_name(int index, const char *image, const char *method)
{
    return eval_output_name("maps", "npy", index, image, method);
}

static nm_status save_map(const char *dir, const eval_run *r, int image, const char *method, const float *map,
                          nm_error *err)
{
    char *name = map_name(r->first + image, r->images[image], method), path[4096];
    if (!name) return nm_fail(err, NM_ERR_MEMORY, "out of memory");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    free(name);
    int64_t dims[2] = {r->h, r->w};
    return nm_npy_write_f32(path, map, 2, dims, err);
}

static nm_status write_png(const char *dir, const char *rel, const nm_image *img, nm_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return nm_image_write_png(path, img, err);
}

/* The map scaled to [0,1] (a mask is used as it is) for overlays and area. */
static void unit_map(const float *map, int n, int is_mask, float *out)
{
    float lo = map[0], hi = map[0];
    for (int i = 1; i < n; i++) lo = map[i] < lo ? map[i] : lo, hi = map[i] > hi ? map[i] : hi;
    if (is_mask) lo = 0, hi = 1;
    float span = hi - lo;
    for (int i = 0; i < n; i++) {
        float v = span > 0 ? (map[i] - lo) / span : 0.0f;
        out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
}

/* From --class-names or the model, else from the labels CSV (entries may be NULL), or NULL. */
static const char *const *class_names(const eval_run *r)
{
    return r->class_labels.n ? (const char *const *)r->class_labels.names : (const char *const *)r->csv_names;
}

static nm_status write_reports(const eval_opts *o, eval_run *r, int done_images, nm_error *err)
{
    const char *const *names = class_names(r);
    nm_eval_report rep = {.model = o->model, .steps = r->auc.steps, .sanity = o->sanity, .stability = o->stability,
                          .protocols = o->protocols, .road = o->road,
                          .deletion_fill = r->auc.deletion_fill == NM_AUC_FILL_BLACK ? "black" : "mean",
                          .has_labels = o->labels_csv != NULL, .n_methods = r->n_methods,
                          .grid_composites = r->grid_composites, .grid = r->grid_stats,
                          .methods = r->method_names, .n_images = done_images, .images = r->image_info,
                          .n_rows = r->n_rows, .rows = r->rows, .class_names = names, .n_classes = r->k};
    char path[4096];
    snprintf(path, sizeof path, "%s/results.csv", o->out);
    nm_status s = nm_eval_write_csv(&rep, path, err);
    snprintf(path, sizeof path, "%s/curves.csv", o->out);
    if (!s) s = nm_eval_write_curves(&rep, path, err);
    snprintf(path, sizeof path, "%s/summary.md", o->out);
    if (!s) s = nm_eval_write_summary(&rep, path, err);
    snprintf(path, sizeof path, "%s/index.html", o->out);
    if (!s) s = nm_eval_write_html(&rep, path, err);
    return s;
}

/* images.tsv: every image of this run; pred -1 for those not done yet. */
static int write_image_table(const eval_opts *o, const eval_run *r, int done_images)
{
    eval_image_entry *e = malloc(sizeof *e * (size_t)(r->n_images + 1));
    if (!e) return cli_error("out of memory");
    for (int i = 0; i < r->n_images; i++)
        e[i] = (eval_image_entry){.index = r->first + i, .path = r->images[i],
                                  .label = o->labels_csv ? label_of(r, r->images[i]) : -1,
                                  .pred = i < done_images ? r->image_info[i].pred : -1};
    char path[4096];
    snprintf(path, sizeof path, "%s/images.tsv", o->out);
    int rc = eval_images_write(path, e, r->n_images);
    free(e);
    return rc;
}

/* The command line without what does not shape the rows (where they go,
 * which shard, threads, --resume/--force/--quiet): one "argument" each. */
static int add_arguments(eval_header *h, const eval_opts *o)
{
    static const char *const with_value[] = {"--out", "--shard", "--shards", "--threads"};
    static const char *const flags[] = {"--resume", "--force", "--quiet"};
    int options = 1, rc = CLI_OK;
    for (int i = 1; rc == CLI_OK && i < o->argc; i++) {
        const char *a = o->argv[i];
        int skip = 0;
        for (int j = 0; options && j < 4 && !skip; j++) {
            size_t n = strlen(with_value[j]);
            if (!strncmp(a, with_value[j], n) && a[n] == '=') skip = 1;
            else if (!strcmp(a, with_value[j])) skip = 2;
        }
        for (int j = 0; options && j < 3 && !skip; j++) skip = !strcmp(a, flags[j]);
        if (options && !strcmp(a, "--")) options = 0;
        if (skip == 2) i++;
        if (!skip) rc = eval_header_add(h, "argument", "%s", a);
    }
    return rc;
}

/* run.txt: what makes this run's rows what they are (eval_files.h). */
static int write_run_header(const eval_opts *o, const eval_run *r)
{
    eval_header h = {0};
    char sha[65], path[4096];
    int rc = eval_sha256_file(o->model, sha);
    if (!rc) rc = eval_header_add(&h, "format", "neuromask eval run 1");
    if (!rc) rc = eval_header_add(&h, "neuromask", "%s", NM_CLI_VERSION);
    if (!rc) rc = eval_header_add(&h, "model", "%s", o->model);
    if (!rc) rc = eval_header_add(&h, "model_sha256", "%s", sha);
    if (!rc) rc = eval_header_add(&h, "images", "%d", r->n_total);
    if (!rc) rc = eval_header_add(&h, "images_sha256", "%s", r->list_sha256);
    if (!rc && o->labels_csv && !(rc = eval_sha256_file(o->labels_csv, sha)))
        rc = eval_header_add(&h, "labels_sha256", "%s", sha);
    for (int m = 0; !rc && m < r->n_methods; m++) rc = eval_header_add(&h, "method", "%s", r->method_names[m]);
    if (!rc) rc = eval_header_add(&h, "auc_steps", "%d", r->auc.steps);
    if (!rc) rc = eval_header_add(&h, "deletion_fill", "%s", r->auc.deletion_fill == NM_AUC_FILL_BLACK ? "black" : "mean");
    if (!rc) rc = eval_header_add(&h, "protocols", "%u", o->protocols);
    if (!rc) rc = eval_header_add(&h, "sanity", "%d", o->sanity);
    if (!rc) rc = eval_header_add(&h, "stability", "%d", o->stability);
    if (!rc) rc = eval_header_add(&h, "road", "%d", o->road);
    if (!rc) rc = eval_header_add(&h, "has_labels", "%d", o->labels_csv != NULL);
    if (!rc) rc = eval_header_add(&h, "cascade", "%d", o->cascade);
    if (!rc) rc = eval_header_add(&h, "save_maps", "%d", o->save_maps);
    if (!rc) rc = add_arguments(&h, o);
    if (!rc) rc = eval_header_add(&h, "classes", "%d", r->k);
    const char *const *names = class_names(r);
    for (int c = 0; !rc && names && c < r->k; c++)
        rc = eval_header_add(&h, names[c] ? "class" : "class_none", "%s", names[c] ? names[c] : "");
    if (!rc && o->shard.n) rc = eval_header_add(&h, "shard", "%d/%d", o->shard.k, o->shard.n);
    snprintf(path, sizeof path, "%s/run.txt", o->out);
    struct stat st;
    if (!rc && o->resume && stat(path, &st) == 0) {
        /* --resume continues the run DIR holds, not another one */
        eval_header old;
        const char *was = NULL, *now = NULL, *key = NULL;
        rc = eval_header_read(path, &old);
        if (!rc) key = eval_header_differs(&old, &h, NULL, &was, &now);
        if (key)
            rc = cli_error("%s: made by another run (%s: %s, this run: %s); --resume continues a run with the same "
                           "model, images, methods and options: use --force to start again, or another --out", path,
                           key, was ? was : "none", now ? now : "none");
        if (!rc || key) eval_header_free(&old);
    }
    if (!rc) rc = eval_header_write(&h, path);
    eval_header_free(&h);
    return rc;
}

/* Row slot `slot`'s curve storage: curve 2p + half, auc.steps + 1 points each. */
static float *row_curve(const eval_run *r, size_t slot, int p, int half)
{
    size_t points = (size_t)r->auc.steps + 1;
    return r->curves + (slot * 2 * NM_PROTOCOL_COUNT + 2 * (size_t)p + (size_t)half) * points;
}

/* ------------------------------------------------------------ sanity */

/* The map for `target` on the model with its top `layers` layers
 * re-initialised (kept across the method's own re-planning of the batch). */
static nm_status randomised_map(const eval_opts *o, eval_run *r, const nm_saliency_options *base, nm_method method,
                                int target, int layers, float *map, nm_error *err)
{
    nm_saliency_options so = *base;   /* the trained run's options and seeds */
    so.target_class = target;
    so.neuromask.target_class = target;
    nm_saliency sal;
    nm_status s = nm_model_randomize(r->model, layers, (uint64_t)o->seed, err);
    if (!s) s = nm_explain(r->model, &r->pre, r->x, method, &so, &sal, err);
    if (s) return s;
    memcpy(map, sal.map, sizeof(float) * (size_t)r->h * r->w);
    nm_saliency_free(&sal);
    return NM_OK;
}

static nm_status sanity(const eval_opts *o, eval_run *r, const nm_saliency_options *so, int image, nm_method method,
                        const float *map, int target, double *rho, nm_error *err)
{
    int pixels = r->h * r->w, layers = nm_model_layer_count(r->model);
    nm_status s = randomised_map(o, r, so, method, target, layers, r->rmap, err);
    if (!s) *rho = nm_spearman(map, r->rmap, pixels);
    for (int d = 1; !s && o->cascade && d <= layers; d++) {
        s = randomised_map(o, r, so, method, target, d, r->rmap, err);
        if (!s) fprintf(r->cascade, "%s,%s,%d,%.6g\n", r->images[image], nm_method_name(method), d,
                        nm_spearman(map, r->rmap, pixels));
    }
    nm_error restore_err = {0};
    nm_status s2 = nm_model_randomize(r->model, 0, 0, &restore_err);
    if (!s && s2) *err = restore_err, s = s2;
    return s;
}

/* ---------------------------------------------------------- stability */

/* Amplitude of the stability check's noise, pixel space: 1/40 of an 8-bit
 * grey level, so the perturbed image is the same image to any file format. */
#define NM_STABILITY_NOISE 1e-4f

/* The map of x plus seeded uniform noise, against `map`: Spearman. Uses
 * rmap and the scratch after the first pixels. */
static nm_status stability(eval_run *r, const nm_saliency_options *base, int image, nm_method method,
                           const float *map, int target, double *rho, nm_error *err)
{
    nm_saliency_options so = *base;   /* the same seeds, and the class of the unperturbed image */
    so.target_class = target;
    so.neuromask.target_class = target;
    size_t pixels = (size_t)r->h * r->w, n = pixels * (size_t)r->c;
    float *xp = r->scratch + pixels;
    uint64_t state = 0x57AB1E ^ (uint64_t)(r->first + image);
    for (size_t i = 0; i < n; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;   /* Knuth's LCG */
        float u = (float)(state >> 40) / 16777216.f;
        xp[i] = r->x[i] + NM_STABILITY_NOISE * (2.f * u - 1.f);
    }
    nm_saliency sal;
    nm_status s = nm_explain(r->model, &r->pre, xp, method, &so, &sal, err);
    if (s) return s;
    *rho = nm_spearman(map, sal.map, (int)pixels);
    nm_saliency_free(&sal);
    return NM_OK;
}

/* --------------------------------------------------------------- ROAD */

static nm_status road(eval_run *r, uint64_t seed, const float *map, int target, nm_eval_row *row, nm_error *err)
{
    nm_road_result res;
    nm_status s = nm_road(r->model, &r->pre, r->x, map, target, NM_ROAD_NOISE, seed, r->auc.batch, &res, err);
    if (s) return s;
    row->road_morf = res.morf_mean, row->road_lerf = res.lerf_mean;
    row->road_morf_top1 = row->road_lerf_top1 = 0;
    for (int f = 0; f < NM_ROAD_FRACTIONS; f++) {
        row->road_morf_top1 += res.morf_top1[f] / (double)NM_ROAD_FRACTIONS;
        row->road_lerf_top1 += res.lerf_top1[f] / (double)NM_ROAD_FRACTIONS;
    }
    return NM_OK;
}

/* --------------------------------------------------------- per image */

/* The fraction of the run's image / method pairs done. */
static double done_fraction(const eval_run *r, double within_pair)
{
    return ((double)r->image * r->n_methods + r->method + within_pair) / ((double)r->n_images * r->n_methods);
}

/* NeuroMask's steps inside one pair (the longest method). */
static void on_step(void *ctx, int step, int steps, const float *loss, int batch)
{
    eval_run *r = ctx;
    (void)batch;
    cli_progress_report(&r->progress, done_fraction(r, (double)step / steps), "[%d/%d] %s %s: step %d/%d loss %.4f",
                        r->image + 1, r->n_images, base_name(r->images[r->image]), r->method_names[r->method], step, steps,
                        (double)loss[0]);
}

static nm_status score_method(const eval_opts *o, eval_run *r, int image, nm_method method, int mi,
                              const nm_image *geo, nm_eval_row *row, nm_error *err)
{
    nm_saliency sal;
    nm_saliency_options so = o->so;
    so.seed = (uint64_t)o->seed + (uint64_t)(r->first + image);   /* the whole list's index: shards agree */
    so.neuromask.seed = so.seed;
    so.neuromask.progress = on_step;
    so.neuromask.progress_ctx = r;
    r->image = image, r->method = mi;
    nm_status s = nm_explain(r->model, &r->pre, r->x, method, &so, &sal, err);
    if (s) return s;
    int pixels = r->h * r->w;
    *row = (nm_eval_row){.image = image, .method = mi, .target = sal.target, .prob = sal.prob, .kept = -1, .kept_prob = NAN,
                         .spearman = NAN, .stability = NAN, .seconds = sal.seconds, .road_morf = NAN,
                         .road_lerf = NAN, .road_morf_top1 = NAN, .road_lerf_top1 = NAN};
    if (o->save_maps) s = save_map(o->out, r, image, nm_method_name(method), sal.map, err);
    if (!s && o->sanity) s = sanity(o, r, &so, image, method, sal.map, sal.target, &row->spearman, err);
    if (!s && o->stability) s = stability(r, &so, image, method, sal.map, sal.target, &row->stability, err);
    float *del_curves[NM_PROTOCOL_COUNT], *ins_curves[NM_PROTOCOL_COUNT];
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {
        del_curves[p] = row_curve(r, (size_t)(row - r->rows), p, 0);
        ins_curves[p] = row_curve(r, (size_t)(row - r->rows), p, 1);
        int on = o->protocols >> p & 1;
        row->deletion_curve[p] = on ? del_curves[p] : NULL;
        row->insertion_curve[p] = on ? ins_curves[p] : NULL;
    }
    if (!s) s = nm_eval_protocols(r->model, &r->pre, r->x, sal.map, sal.target, &r->auc, o->protocols,
                                  row->deletion, row->insertion, del_curves, ins_curves, err);
    for (int p = 0; !s && p < NM_PROTOCOL_COUNT; p++)   /* as curves.csv holds them, as for the numbers */
        if (o->protocols >> p & 1)
            nm_eval_curve_round(del_curves[p], r->auc.steps + 1), nm_eval_curve_round(ins_curves[p], r->auc.steps + 1);
    if (!s && o->road) s = road(r, so.seed, sal.map, sal.target, row, err);
    float *unit = r->scratch;
    unit_map(sal.map, pixels, sal.is_mask, unit);
    double area = 0;
    for (int i = 0; i < pixels; i++) area += sal.is_mask ? (sal.map[i] > 0.5f) : unit[i];
    row->mask_area = area / pixels;
    row->roughness = nm_map_roughness(sal.map, r->h, r->w);
    if (!s && sal.is_mask) {
        float *masked = r->scratch + pixels, *logits = r->logits + r->k;
        for (int ch = 0; ch < r->c; ch++)
            for (int i = 0; i < pixels; i++) masked[ch * pixels + i] = r->x[ch * pixels + i] * sal.map[i];
        s = predict(r, masked, logits, err);
        if (!s) row->kept = argmax(logits, r->k) == sal.target;
        if (!s) row->kept_prob = nm_class_probability(logits, r->k, sal.target) / sal.prob;
    }
    nm_eval_row_round(row);
    nm_image pic = {0};
    row->overlay = s ? NULL : keep_string(r, picture_name(r->first + image, r->images[image], nm_method_name(method)));
    if (!s && !row->overlay) s = nm_fail(err, NM_ERR_MEMORY, "out of memory");
    nm_map_scale scale = nm_map_scale_of(sal.map, pixels, nm_method_map_kind(method));
    if (!s) s = nm_render_overlay(geo, sal.map, &scale, 0.5f, &pic, err);
    if (!s) s = write_png(o->out, row->overlay, &pic, err);
    nm_image_free(&pic);
    nm_saliency_free(&sal);
    return s;
}

static nm_status load_image(eval_run *r, const char *path, nm_image *geo, nm_error *err)
{
    static const nm_preprocess identity = {.scale = 1.f, .std = {1.f, 1.f, 1.f}};
    nm_image img;
    nm_status s = nm_image_load(path, &img, err);
    if (s) return s;
    s = nm_preprocess_geometry(&r->pre, &img, r->h, r->w, geo, err);
    nm_image_free(&img);
    if (s) {
        char msg[sizeof err->msg];   /* geometry messages do not know the file */
        snprintf(msg, sizeof msg, "%s", err->msg);
        return nm_fail(err, s, "%s: %s", path, msg);
    }
    nm_preprocess_normalize(&identity, geo, r->c, r->x);
    return NM_OK;
}

static int output_exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* --resume: image i's row for method m from the earlier run, when it was
 * made for the same class, has its overlay (and map), and has what this run
 * measures. */
static int reuse_row(const eval_opts *o, eval_run *r, int i, int m, nm_eval_row *row)
{
    const eval_resumed_row *old = eval_resumed_find(&r->resumed, r->images[i], r->method_names[m]);
    int target = o->cls >= 0 ? o->cls : r->image_info[i].pred;
    if (!old || old->row.target != target || (o->sanity && !isfinite(old->row.spearman)) ||
        (o->stability && !isfinite(old->row.stability)))
        return 0;
    if (o->road && !(isfinite(old->row.road_morf) && isfinite(old->row.road_lerf))) return 0;
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++)
        if (o->protocols >> p & 1 && !(isfinite(old->row.deletion[p]) && isfinite(old->row.insertion[p]))) return 0;
    if (o->save_maps) {
        char *map = map_name(r->first + i, r->images[i], r->method_names[m]);
        int have = map && output_exists(o->out, map);
        free(map);
        if (!have) return 0;
    }
    char *name = picture_name(r->first + i, r->images[i], r->method_names[m]);
    if (!name || !output_exists(o->out, name)) {
        free(name);
        return 0;
    }
    *row = old->row;
    row->image = i, row->method = m, row->overlay = keep_string(r, name);
    size_t points = (size_t)r->auc.steps + 1, slot = (size_t)(row - r->rows);
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++)   /* a curve curves.csv lacks stays out of the mean curves */
        for (int half = 0; half < 2; half++) {
            int have = o->protocols >> p & 1 && old->has_curve >> (2 * p + half) & 1;
            float *dst = have ? row_curve(r, slot, p, half) : NULL;
            if (dst) memcpy(dst, old->curves + (size_t)(2 * p + half) * points, sizeof(float) * points);
            if (half) row->insertion_curve[p] = dst;
            else row->deletion_curve[p] = dst;
        }
    return row->overlay != NULL;
}

/* Seconds left once the current pair is done, from the pace so far. */
static double eta(const eval_run *r)
{
    double f = done_fraction(r, 1.0), el = nm_cpu_now() - r->progress.t0;
    return el / f - el;
}

static int eval_image(const eval_opts *o, eval_run *r, int i)
{
    nm_error err = {0};
    nm_image geo = {0};
    nm_eval_image *info = &r->image_info[i];
    info->path = r->images[i];
    info->label = o->labels_csv ? label_of(r, r->images[i]) : -1;
    nm_status s = load_image(r, r->images[i], &geo, &err);
    if (!s) s = predict(r, r->x, r->logits, &err);
    if (!s) info->pred = argmax(r->logits, r->k);
    info->picture = s ? NULL : keep_string(r, picture_name(r->first + i, r->images[i], NULL));
    if (!s && !info->picture) s = nm_fail(&err, NM_ERR_MEMORY, "out of memory");
    if (!s) s = write_png(o->out, info->picture, &geo, &err);
    for (int m = 0; !s && !o->grid && m < r->n_methods; m++) {   /* the grid game needs only the class */
        nm_eval_row *row = &r->rows[r->n_rows];
        if (reuse_row(o, r, i, m, row)) {
            r->n_rows++;
            if (!o->quiet)
                fprintf(stderr, "[%d/%d] %s %s: kept from %s/results.csv\n", i + 1, r->n_images,
                        base_name(r->images[i]), r->method_names[m], o->out);
            continue;
        }
        s = score_method(o, r, i, r->methods[m], m, &geo, row, &err);
        if (s == NM_ERR_CANCELLED) {   /* the rows so far stay; --resume computes the rest */
            s = NM_OK;
            break;
        }
        if (s) {
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", err.msg);
            nm_fail(&err, s, "%s: %s: %s", r->images[i], r->method_names[m], msg);
            break;
        }
        r->n_rows++;
        int p = 0;   /* the progress line shows the first protocol measured */
        while (!(o->protocols >> p & 1)) p++;
        if (!o->quiet)
            fprintf(stderr, "%s[%d/%d] %s %s: class %d p %.3f deletion %.4f insertion %.4f%s %.2fs, ETA %.0fs\n",
                    cli_progress_cr(&r->progress), i + 1, r->n_images, base_name(r->images[i]), r->method_names[m],
                    row->target, (double)row->prob, row->deletion[p], row->insertion[p],
                    row->kept < 0 ? "" : row->kept ? " kept" : " lost", row->seconds, eta(r));
    }
    nm_image_free(&geo);
    if (s) return cli_fail(&err);
    return CLI_OK;
}

/* ------------------------------------------------------------- setup */

static int open_side_file(const eval_opts *o, const char *name, const char *header, FILE **f, char *tmp)
{
    char path[4096];
    nm_error err = {0};
    snprintf(path, sizeof path, "%s/%s", o->out, name);
    *f = nm_atomic_open(path, tmp, 4096, &err);
    if (!*f) return cli_fail(&err);
    fputs(header, *f);
    return CLI_OK;
}

static int check_outputs(const eval_opts *o)
{
    static const char *const files[] = {"results.csv", "summary.md", "index.html", "curves.csv", "sanity_cascade.csv",
                                        "run.txt", "images.tsv", "composites.csv", "grid_pointing.csv"};
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/img", o->out);
    int rc = cli_mkdir_p(path);   /* and DIR (and DIR's parent for a shard) */
    snprintf(path, sizeof path, "%s/maps", o->out);
    if (!rc && o->save_maps && mkdir(path, 0755) != 0 && errno != EEXIST)
        return cli_error("%s: cannot create: %s", path, strerror(errno));
    for (int i = 0; !rc && !o->force && !o->resume && i < (int)(sizeof files / sizeof *files); i++) {
        snprintf(path, sizeof path, "%s/%s", o->out, files[i]);
        if (stat(path, &st) == 0) return cli_error("%s: exists (use --force to overwrite)", path);
    }
    return rc;
}

/* A shard keeps its part of the whole list (after --limit); images keep
 * their index in the whole list for seeds and picture names. */
static int apply_shard(const eval_opts *o, eval_run *r)
{
    r->n_total = r->n_images;
    int rc = eval_sha256_list(r->images, r->n_images, r->list_sha256), first, count;
    if (rc) return rc;
    cli_shard_range(&o->shard, r->n_images, 1, &first, &count);   /* images are explained one at a time */
    for (int i = 0; i < r->n_images; i++)
        if (i < first || i >= first + count) free(r->images[i]);
    memmove(r->images, r->images + first, sizeof *r->images * (size_t)count);
    r->first = first, r->n_images = count;
    return CLI_OK;
}

/* --limit N: the first N images, or N spread evenly with --spread. */
static void apply_limit(const eval_opts *o, eval_run *r)
{
    if (!o->limit || o->limit >= r->n_images) return;
    for (int i = 0; i < o->limit; i++) {
        int from = o->spread ? (int)((long long)i * r->n_images / o->limit) : i;
        char *keep = r->images[from];
        r->images[from] = r->images[i];
        r->images[i] = keep;
    }
    for (int i = o->limit; i < r->n_images; i++) free(r->images[i]);
    r->n_images = o->limit;
}

static int setup(eval_opts *o, eval_run *r)
{
    nm_error err = {0};
    int rc = parse_methods(o->methods, r);
    if (!rc) rc = cli_collect_images(o->inputs, o->n_inputs, o->recursive, &r->images, NULL, &r->n_images);
    if (rc) return rc;
    if (!r->n_images) return cli_error("no images found");
    apply_limit(o, r);
    rc = apply_shard(o, r);
    if (rc) return rc;
    nm_load_options lo = {.max_bytes = o->max_bytes, .threads = o->threads};
    if (nm_model_load_file(o->model, &lo, &r->model, &err)) return cli_fail(&err);
    rc = cli_check_image_model(r->model, o->model, &r->c, &r->h, &r->w);
    if (!rc) rc = cli_resolve_preprocess("eval", &o->pre, r->model, o->model, &r->pre);
    if (rc) return rc;
    nm_shape out = nm_model_output_shape(r->model);
    if (out.ndim != 2) return cli_error("%s: output '%s' is not [N, classes]", o->model, nm_model_output_name(r->model));
    r->k = (int)out.dims[1];
    rc = resolve_method_options(o, r);
    for (int m = 0; !rc && m < r->n_methods; m++)   /* a wrong --gradcam-layer before any output */
        if (r->methods[m] == NM_METHOD_GRADCAM && !nm_gradcam_layer(r->model, &o->so, &err))
            rc = cli_error("%s: %s", o->model, err.msg);
    if (!rc) rc = cli_labels_load(o->class_names, r->model, o->model, r->k, &r->class_labels);
    if (!rc && o->labels_csv) rc = load_label_csv(o->labels_csv, r);
    if (rc) return rc;
    nm_auc_defaults(&r->auc);
    if (o->auc_steps) r->auc.steps = o->auc_steps;
    if (o->batch) r->auc.batch = o->batch;
    if (o->fill && !strcmp(o->fill, "mean")) r->auc.deletion_fill = NM_AUC_FILL_NORMALIZED_ZERO;
    size_t pixels = (size_t)r->h * r->w, image = pixels * r->c;
    r->x = malloc(sizeof(float) * image);
    r->xn = malloc(sizeof(float) * image);
    r->scratch = malloc(sizeof(float) * (pixels + image));
    r->rmap = malloc(sizeof(float) * pixels);
    r->logits = malloc(sizeof(float) * 3 * (size_t)r->k);
    r->curves = malloc(sizeof(float) * 2 * NM_PROTOCOL_COUNT * (size_t)(r->auc.steps + 1) * (size_t)r->n_images *
                       (size_t)r->n_methods);
    r->image_info = calloc((size_t)r->n_images, sizeof *r->image_info);
    r->rows = calloc((size_t)r->n_images * r->n_methods, sizeof *r->rows);
    if (!r->x || !r->xn || !r->scratch || !r->rmap || !r->logits || !r->curves || !r->image_info || !r->rows)
        return cli_error("out of memory");
    rc = check_outputs(o);
    if (!rc && o->resume) {
        char path[4096];
        snprintf(path, sizeof path, "%s/results.csv", o->out);
        rc = eval_resumed_load(path, &r->resumed);
        snprintf(path, sizeof path, "%s/curves.csv", o->out);
        if (!rc) rc = eval_resumed_load_curves(path, r->auc.steps + 1, &r->resumed);
    }
    if (!rc && o->cascade)
        rc = open_side_file(o, "sanity_cascade.csv", "image,method,layers_randomized,spearman\n", &r->cascade,
                            r->cascade_tmp);
    if (!rc) rc = write_run_header(o, r);
    if (!rc) rc = write_image_table(o, r, 0);
    return rc;
}

static int finish_side_file(const eval_opts *o, const char *name, FILE *f, const char *tmp, int ok)
{
    if (!f) return CLI_OK;
    if (!ok) {
        nm_atomic_abort(f, tmp);
        return CLI_OK;
    }
    char path[4096];
    nm_error err = {0};
    snprintf(path, sizeof path, "%s/%s", o->out, name);
    return nm_atomic_commit(f, tmp, path, &err) ? cli_fail(&err) : CLI_OK;
}

static void run_free(eval_run *r)
{
    if (r->label_files)
        for (int i = 0; i < r->n_label_rows; i++) free(r->label_files[i]);
    if (r->csv_names)
        for (int i = 0; i < r->k; i++) free(r->csv_names[i]);
    for (int i = 0; i < r->n_strings; i++) free(r->strings[i]);
    free(r->label_files), free(r->label_classes), free(r->csv_names), free(r->strings);
    free(r->x), free(r->xn), free(r->scratch), free(r->rmap), free(r->logits);
    free(r->curves);
    free(r->image_info), free(r->rows);
    cli_free_list(r->images, r->n_images);
    cli_labels_free(&r->class_labels);
    eval_resumed_free(&r->resumed);
    nm_model_free(r->model);
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o = {.cls = -1, .argc = argc, .argv = argv};
    eval_run r = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc == CLI_OK) rc = setup(&o, &r);
    cli_progress_start(&r.progress, o.quiet);
    o.so.cancel = &cli_interrupted;
    cli_catch_interrupts();
    int done = 0;
    for (; rc == CLI_OK && done < r.n_images && !cli_interrupted; done++) {
        rc = eval_image(&o, &r, done);
        nm_error err = {0};
        if (rc == CLI_OK && write_reports(&o, &r, done + 1, &err)) rc = cli_fail(&err);
        if (rc == CLI_OK) rc = write_image_table(&o, &r, done + 1);
    }
    nm_error report_err = {0};   /* a shard without images still writes its (empty) reports */
    if (rc == CLI_OK && !r.n_images && write_reports(&o, &r, 0, &report_err)) rc = cli_fail(&report_err);
    if (rc == CLI_OK && o.grid && !cli_interrupted) {
        eval_grid_input g = {.model = r.model, .pre = &r.pre, .c = r.c, .h = r.h, .w = r.w, .n_images = r.n_images,
                             .images = r.images, .info = r.image_info, .n_methods = r.n_methods,
                             .methods = r.methods, .method_names = r.method_names, .so = &o.so,
                             .seed = (uint64_t)o.seed, .composites = o.composites ? o.composites : 16,
                             .out = o.out, .quiet = o.quiet, .save_maps = o.save_maps};
        rc = eval_grid_run(&g, r.grid_stats, &r.grid_composites);
        nm_error err = {0};
        if (rc == CLI_OK && write_reports(&o, &r, r.n_images, &err)) rc = cli_fail(&err);
    }
    if (rc == CLI_OK && cli_interrupted) {
        cli_error("interrupted: %d rows in %s/results.csv, each complete; rerun with --resume to finish", r.n_rows,
                  o.out);
        rc = CLI_SIGNAL_BASE + cli_interrupted;
    }
    int side = finish_side_file(&o, "sanity_cascade.csv", r.cascade, r.cascade_tmp, rc == CLI_OK);
    if (rc == CLI_OK) rc = side;
    if (rc == CLI_OK && !o.quiet) fprintf(stderr, "wrote %s/results.csv, curves.csv, summary.md, index.html\n", o.out);
    run_free(&r);
    free(o.inputs);
    free(o.shard_out);
    return rc < 0 ? CLI_OK : rc;
}
