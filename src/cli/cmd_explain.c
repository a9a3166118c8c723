/* neuromask explain: learn a NeuroMask per image and write the mask (PNG and
 * .npy), an overlay, a panel and a JSON record for each. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "shard.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "image/npy.h"
#include "image/render.h"

static const char explain_help[] =
    "Usage: neuromask explain --model M.onnx --out DIR [options] IMAGE|DIR...\n"
    "Learn a NeuroMask (Alzantot et al. 2019) for each image: the sparse, smooth mask of\n"
    "pixels that keeps the model's class (or, with --method, another explanation map).\n"
    "For each image NAME it writes, in DIR, NAME.overlay.png, NAME.panel.png, NAME.json\n"
    "and, for the mask methods (neuromask, extremal-perturbation), NAME.mask.png (white =\n"
    "kept, at the image's own size) and NAME.mask.npy (the mask at the model's input\n"
    "size); for the other methods NAME.map.png and NAME.map.npy (the raw map). Pictures\n"
    "draw masks 0..1 and non-negative maps 0..max in inferno (black = low), signed maps\n"
    "(gradxinput, integrated-gradients, occlusion) -a..+a with a = max |v| from blue\n"
    "through white (0) to red; each panel has a colour bar with that scale.\n"
    "docs/outputs.md says how to read a panel and every JSON field. NAME is the image's\n"
    "path below the folder given (DIR/cat/1.* for FOLDER/cat/1.png with --recursive), or\n"
    "the name of a file given, without its extension; two images with the same NAME\n"
    "(a/x.jpg b/x.jpg) are refused before anything is written.\n"
    "Existing files are never overwritten unless --force is given. Every file is written\n"
    "under a temporary name and renamed into place; SIGINT or SIGTERM stops the run after\n"
    "the current step (exit 128 + the signal) with only complete files left, and a rerun\n"
    "with --resume skips the images whose five outputs exist and redoes the rest.\n"
    "\n"
    "Options:\n"
    "  --model FILE       the ONNX classifier (input [N,C,H,W], C = 1 or 3)\n"
    "  --out DIR          output folder (created if missing)\n"
    "  --method NAME      neuromask (default) | gradient | gradxinput |\n"
    "                     integrated-gradients | smoothgrad | gradcam | occlusion | rise |\n"
    "                     meaningful-perturbation | extremal-perturbation\n"
    "  --preset NAME      default: this project's measured setting, a smooth mask in\n"
    "                     40 steps (docs/neuromask_default.md), used when none is named;\n"
    "                     cifar | imagenet: the paper's settings\n"
    "  --class C          explain class C (default: the predicted class)\n"
    "  --steps N          optimisation steps (presets: 40 default, 2000 paper)\n"
    "  --lr F             learning rate (0.5 default, 0.03 paper)\n"
    "  --l-pred F, --l-sparse F, --l-smooth F   the loss coefficients\n"
    "  --temperature F    T in m = sigmoid(w / T)\n"
    "  --kernel 3|5       Laplacian size of the smoothness term\n"
    "  --optimizer NAME   rmsprop (TensorFlow 1's, the paper's) | adam | normalized\n"
    "                     (steps of fixed length along the gradient, the default's)\n"
    "  --baseline NAME    black (the paper's) | blur | mean | noise\n"
    "  --blur-sigma F     pixels, for --baseline blur (default 10, paper 5)\n"
    "  --grid N           learn an N x N mask interpolated by a Gaussian (default preset:\n"
    "                     side / 16 within 8..14; 0: per pixel, the paper's)\n"
    "  --tol F            an image has converged when its loss changed by less than F\n"
    "  --window N         (relative) over N steps (1e-3 over 50)\n"
    "  --early-stop       stop each image once it has converged\n"
    "  --init NAME        uniform (w ~ U(-L, L), the paper's) | zero (m = 0.5)\n"
    "  --sparsity NAME    logit (mean |w + L|, the paper's) | mask (mean m)\n"
    "  --l-delete F       also make the image without the mask's pixels lose the class:\n"
    "                     + F * -log(1 - p_c) (0: off, the paper's; doubles the work)\n"
    "  --nm SPEC          'key=value,...' over the preset, before the flags above (keys as\n"
    "                     nm_neuromask_parse: lr, l_sparse, grid, alt_fill,\n"
    "                     alt_baseline, ...)\n"
    "  --seed N           random seed (0); the same seed writes the same files\n"
    "  --batch N          images optimised together (default 1); other methods: images\n"
    "                     per engine call (16)\n"
    CLI_CLASS_NAMES_HELP
    CLI_RECURSIVE_HELP
    "  --threads N        threads (default: the free cores, following the load)\n"
    CLI_MAX_MEMORY_HELP
    "  --precision P      fp32 (default) | bf16: convolutions multiply in bfloat16 where the\n"
    "                     CPU has AVX512_BF16 (faster; masks differ slightly)\n"
    "  --force            overwrite existing outputs\n"
    "  --resume           skip images whose outputs are all there (an interrupted run);\n"
    "                     redo the others, overwriting any of their files. Refused when an\n"
    "                     image's JSON records another method, options or preprocessing\n"
    "  --quiet            no progress or result lines (progress: on a terminal one line\n"
    "                     in place; elsewhere a line with the ETA every 5 s, or every\n"
    "                     NEUROMASK_PROGRESS_SECONDS)\n"
    CLI_SHARD_HELP
    "                       (a shard writes its images' files into DIR as a whole\n"
    "                       run would; NeuroMask's --batch runs stay whole)\n"
    "  -h, --help         this help\n"
    "\n"
    "Options of the other methods (--class, --seed, --batch and --blur-sigma apply too):\n"
    "  --ig-steps N       integrated gradients: midpoint Riemann steps (32)\n"
    "  --ig-baseline NAME black (default) | blur | mean | noise\n"
    "  --sg-samples N     SmoothGrad: noisy samples (32)\n"
    "  --sg-sigma F       ... noise std, fraction of the pixel range (0.15)\n"
    "  --gradcam-layer T  Grad-CAM: tensor name (default: the last spatial one)\n"
    "  --occ-patch N      occlusion: patch side, pixels (default: side / 8)\n"
    "  --occ-stride N     ... stride (default: patch / 2)\n"
    "  --occ-fill NAME    ... black (default) | blur | mean | noise\n"
    "  --rise-masks N     RISE: random masks (2000)\n"
    "  --rise-cell N      ... grid cells per side (7)\n"
    "  --rise-p F         ... keep probability (0.5)\n"
    "  --pert-steps N     meaningful / extremal perturbation: Adam steps (300)\n"
    "  --pert-grid N      ... mask cells per side (default: side / 4 within 2..28)\n"
    "  --pert-lr F        ... learning rate (0.1 meaningful, 0.05 extremal)\n"
    "  --mp-l1 F, --mp-tv F   meaningful perturbation's coefficients (0.08, 0.2)\n"
    "  --areas A,B,...    extremal perturbation's preserved areas (0.05,0.1,0.2)\n"
    "  --blur-sigma F     blur of the perturbations and blur baselines (10 * side / 224)\n"
    "\n";

typedef struct explain_opts {
    const char *model, *out, *class_names, *preset, *optimizer, *baseline, *init, *sparsity, *nm_spec;
    int batch, threads, force, resume, quiet, early_stop, recursive;
    char *gradcam_layer;    /* the Grad-CAM layer used (owned) */
    int64_t max_bytes;
    const char *method_name, *ig_baseline, *occ_fill, *areas, *precision;
    nm_method method;
    nm_saliency_options sal;    /* the other methods' options */
    int batch_given;
    nm_neuromask_options nm;
    /* options given on the command line, applied over the preset */
    int cls, steps, kernel, grid, window, seed;
    float lr, l_pred, l_sparse, l_smooth, temperature, blur_sigma, tol, l_delete;
    unsigned has_cls : 1, has_steps : 1, has_kernel : 1, has_grid : 1, has_window : 1, has_seed : 1,
        has_lr : 1, has_l_pred : 1, has_l_sparse : 1, has_l_smooth : 1, has_temperature : 1,
        has_blur_sigma : 1, has_tol : 1, has_l_delete : 1;
    cli_preprocess_flags pre;
    cli_shard_flags shard_flags;
    char **inputs;
    int n_inputs;
} explain_opts;

/* Matches the NeuroMask numeric options. */
static int nm_option(cli_parser *p, explain_opts *o)
{
#define INT_OPT(flag, lo, hi, field) \
    if (cli_int(p, flag, lo, hi, &o->field)) return o->has_##field = 1;
#define FLOAT_OPT(flag, field) \
    if (cli_float(p, flag, &o->field)) return o->has_##field = 1;
    INT_OPT("--class", 0, 1 << 24, cls)
    INT_OPT("--steps", 0, 1000000, steps)
    INT_OPT("--kernel", 3, 5, kernel)
    INT_OPT("--grid", 1, 4096, grid)
    INT_OPT("--window", 1, 1000000, window)
    INT_OPT("--seed", 0, 1 << 30, seed)
    FLOAT_OPT("--l-delete", l_delete)
    FLOAT_OPT("--lr", lr)
    FLOAT_OPT("--l-pred", l_pred)
    FLOAT_OPT("--l-sparse", l_sparse)
    FLOAT_OPT("--l-smooth", l_smooth)
    FLOAT_OPT("--temperature", temperature)
    FLOAT_OPT("--blur-sigma", blur_sigma)
    FLOAT_OPT("--tol", tol)
#undef INT_OPT
#undef FLOAT_OPT
    return 0;
}

/* Matches the options of the methods other than NeuroMask. */
static int method_option(cli_parser *p, explain_opts *o)
{
    nm_saliency_options *s = &o->sal;
    return cli_string(p, "--method", &o->method_name) || cli_int(p, "--ig-steps", 1, 100000, &s->ig_steps) ||
           cli_string(p, "--ig-baseline", &o->ig_baseline) || cli_int(p, "--sg-samples", 1, 100000, &s->sg_samples) ||
           cli_float(p, "--sg-sigma", &s->sg_sigma) || cli_string(p, "--gradcam-layer", &s->gradcam_layer) ||
           cli_int(p, "--occ-patch", 1, 1 << 16, &s->occ_patch) || cli_int(p, "--occ-stride", 1, 1 << 16, &s->occ_stride) ||
           cli_string(p, "--occ-fill", &o->occ_fill) || cli_int(p, "--rise-masks", 1, 1 << 24, &s->rise_masks) ||
           cli_int(p, "--rise-cell", 1, 1 << 16, &s->rise_cell) || cli_float(p, "--rise-p", &s->rise_p) ||
           cli_int(p, "--pert-steps", 0, 1000000, &s->pert_steps) || cli_int(p, "--pert-grid", 1, 1 << 16, &s->pert_grid) ||
           cli_float(p, "--pert-lr", &s->pert_lr) || cli_float(p, "--mp-l1", &s->mp_l1) ||
           cli_float(p, "--mp-tv", &s->mp_tv) || cli_string(p, "--areas", &o->areas);
}

static int parse_args(int argc, char **argv, explain_opts *o)
{
    cli_parser p = cli_parser_start("explain", argc, argv);
    o->inputs = calloc((size_t)argc, sizeof *o->inputs);
    if (!o->inputs) return cli_error("out of memory");
    while (cli_next(&p)) {
        if (cli_positional(&p)) o->inputs[o->n_inputs++] = (char *)p.arg;
        else if (cli_string(&p, "--model", &o->model)) {}
        else if (cli_string(&p, "--out", &o->out)) {}
        else if (cli_class_names_option(&p, &o->class_names)) {}
        else if (cli_string(&p, "--preset", &o->preset)) {}
        else if (cli_string(&p, "--optimizer", &o->optimizer)) {}
        else if (cli_string(&p, "--baseline", &o->baseline)) {}
        else if (cli_string(&p, "--init", &o->init)) {}
        else if (cli_string(&p, "--nm", &o->nm_spec)) {}
        else if (cli_string(&p, "--sparsity", &o->sparsity)) {}
        else if (cli_int(&p, "--batch", 1, 1024, &o->batch)) o->batch_given = 1;
        else if (cli_int(&p, "--threads", 1, 1024, &o->threads)) {}
        else if (cli_max_memory(&p, &o->max_bytes)) {}
        else if (cli_string(&p, "--precision", &o->precision)) {}
        else if (cli_flag(&p, "--force")) o->force = 1;
        else if (cli_flag(&p, "--resume")) o->resume = 1;
        else if (cli_flag(&p, "--quiet")) o->quiet = 1;
        else if (cli_flag(&p, "--recursive")) o->recursive = 1;
        else if (cli_flag(&p, "--early-stop")) o->early_stop = 1;
        else if (nm_option(&p, o)) {}
        else if (method_option(&p, o)) {}
        else if (cli_preprocess_option(&p, &o->pre)) {}
        else if (cli_shard_option(&p, &o->shard_flags)) {}
        else cli_unknown(&p);
    }
    if (p.help) {
        fputs(explain_help, stdout);
        fputs(cli_preprocess_help, stdout);
        return -1;
    }
    if (p.status) return p.status;
    if (!o->model) return cli_usage_error("explain", "--model is required (see --help)");
    if (!o->out) return cli_usage_error("explain", "--out is required (see --help)");
    if (o->n_inputs == 0) return cli_usage_error("explain", "no images given (see --help)");
    o->method = o->method_name ? nm_method_from_name(o->method_name) : NM_METHOD_NEUROMASK;
    if (o->method == NM_METHOD_COUNT)
        return cli_usage_error("explain", "unknown method '%s' (see --help)", o->method_name);
    return CLI_OK;
}

static int pick_enum(const char *cmd, const char *what, const char *value, const char *const *names,
                     int n, int *out)
{
    for (int i = 0; value && i < n; i++)
        if (!strcmp(value, names[i])) return *out = i, CLI_OK;
    return value ? cli_usage_error(cmd, "unknown %s '%s'", what, value) : CLI_OK;
}

/* Preset first, then each option the user gave. */
static int resolve_nm_options(explain_opts *o)
{
    static const char *const optimizers[] = {"rmsprop", "adam", "normalized"};
    static const char *const baselines[] = {"black", "blur", "mean", "noise"};
    static const char *const inits[] = {"uniform", "zero"}, *const sparsities[] = {"logit", "mask"};
    nm_error err = {0};
    /* no --preset: the library's defaults (nm_saliency_defaults, in o->sal) */
    const char *preset = o->preset ? o->preset : nm_neuromask_preset_for(0);
    if (!o->preset) o->nm = o->sal.neuromask;
    else if (nm_neuromask_preset(preset, &o->nm, &err)) return cli_usage_error("explain", "%s", err.msg);
    if (o->nm_spec && nm_neuromask_parse(o->nm_spec, &o->nm, &err)) return cli_usage_error("explain", "--nm: %s", err.msg);
    nm_neuromask_options *n = &o->nm;
    int opt = (int)n->optimizer, base = (int)n->baseline, init = (int)n->init, sparsity = (int)n->sparsity;
    int rc = pick_enum("explain", "optimizer", o->optimizer, optimizers, 3, &opt);
    if (!rc) rc = pick_enum("explain", "baseline", o->baseline, baselines, 4, &base);
    if (!rc) rc = pick_enum("explain", "init", o->init, inits, 2, &init);
    if (!rc) rc = pick_enum("explain", "sparsity", o->sparsity, sparsities, 2, &sparsity);
    if (rc) return rc;
    n->optimizer = (nm_optimizer)opt;
    n->baseline = (nm_baseline)base;
    n->init = (nm_mask_init)init;
    n->sparsity = (nm_sparsity)sparsity;
    if (o->has_cls) n->target_class = o->cls;
    if (o->has_steps) n->steps = o->steps;
    if (o->has_kernel) n->kernel = o->kernel;
    if (o->has_grid) n->grid = o->grid;
    if (o->has_window) n->window = o->window;
    if (o->has_seed) n->seed = (uint64_t)o->seed;
    if (o->has_lr) n->lr = o->lr;
    if (o->has_l_pred) n->l_pred = o->l_pred;
    if (o->has_l_sparse) n->l_sparse = o->l_sparse;
    if (o->has_l_smooth) n->l_smooth = o->l_smooth;
    if (o->has_temperature) n->temperature = o->temperature;
    if (o->has_blur_sigma) n->blur_sigma = o->blur_sigma;
    if (o->has_tol) n->tol = o->tol;
    if (o->has_l_delete) n->l_delete = o->l_delete;
    if (o->early_stop) n->early_stop = 1;   /* else the preset's */
    o->preset = preset;
    return CLI_OK;
}

static int parse_areas(const char *list, nm_saliency_options *s)
{
    char buf[256], *end;
    if (strlen(list) >= sizeof buf) return cli_usage_error("explain", "--areas: list too long");
    strcpy(buf, list);
    s->ep_n_areas = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        float a = strtof(tok, &end);
        if (*end || !(a > 0 && a <= 1) || s->ep_n_areas == 8)
            return cli_usage_error("explain", "--areas needs 1 to 8 numbers in (0, 1] separated by commas (got '%s')", list);
        s->ep_areas[s->ep_n_areas++] = a;
    }
    return s->ep_n_areas ? CLI_OK : cli_usage_error("explain", "--areas is empty");
}

/* The method and its options; --class, --seed, --batch and --blur-sigma are shared. */
static int resolve_method(explain_opts *o)
{
    static const char *const baselines[] = {"black", "blur", "mean", "noise"};
    nm_saliency_options *s = &o->sal;
    int ig = (int)s->ig_baseline, fill = (int)s->occ_fill;
    int rc = pick_enum("explain", "--ig-baseline", o->ig_baseline, baselines, 4, &ig);
    if (!rc) rc = pick_enum("explain", "--occ-fill", o->occ_fill, baselines, 4, &fill);
    if (!rc && o->areas) rc = parse_areas(o->areas, s);
    if (rc) return rc;
    s->ig_baseline = (nm_baseline)ig;
    s->occ_fill = (nm_baseline)fill;
    s->target_class = o->has_cls ? o->cls : -1;
    s->seed = o->has_seed ? (uint64_t)o->seed : 0;
    if (o->batch_given) s->batch = o->batch;
    if (o->has_blur_sigma) s->blur_sigma = o->blur_sigma;
    s->neuromask = o->nm;
    return CLI_OK;
}

typedef struct explain_run {
    nm_model *model;
    nm_preprocess pre;
    cli_labels labels;
    int c, h, w, k, batch;
    float *x;               /* batch x C x H x W, pixel space [0,1] */
    nm_image *geo;          /* the images as the model sees them, for the pictures */
    int *orig_w, *orig_h;   /* the images' own sizes, for the mask PNG */
    int done, total;        /* images finished, images in all */
    cli_progress progress;
    double load_seconds;    /* loading the model, shared by the images */
} explain_run;

static void on_step(void *ctx, int step, int steps, const float *loss, int batch)
{
    explain_run *r = ctx;
    double frac = ((double)r->done + (double)batch * step / steps) / r->total;
    cli_progress_report(&r->progress, frac, "[%d/%d] step %d/%d loss %.4f", r->done + batch, r->total, step, steps,
                        (double)loss[0]);
}

/* The length of an output name without its extension ("cat/1.png": "cat/1"). */
static int stem_length(const char *name)
{
    const char *base = strrchr(name, '/'), *dot;
    base = base ? base + 1 : name;
    dot = strrchr(base, '.');
    return dot && dot != base ? (int)(dot - name) : (int)strlen(name);
}

/* "DIR/stem.suffix" for the output name of an image (cli_collect_images: its
 * path below the folder named, or its file name), without its extension. */
static void output_path(const char *dir, const char *name, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%.*s.%s", dir, stem_length(name), name, suffix);
}

/* Two images whose outputs would be the same files (a/x.jpg and b/x.jpg, or
 * x.png and x.jpg) are refused before anything is written. */
static const char *const *sort_names;
static int cmp_stem(const void *a, const void *b)
{
    const char *x = sort_names[*(const int *)a], *y = sort_names[*(const int *)b];
    int lx = stem_length(x), ly = stem_length(y), c = strncmp(x, y, (size_t)(lx < ly ? lx : ly));
    return c ? c : (lx > ly) - (lx < ly);
}

static int check_unique_outputs(const char *dir, char **images, char **names, int n)
{
    int *order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!order) return cli_error("out of memory");
    for (int i = 0; i < n; i++) order[i] = i;
    sort_names = (const char *const *)names;
    qsort(order, (size_t)n, sizeof *order, cmp_stem);
    int rc = CLI_OK;
    for (int i = 1; i < n && rc == CLI_OK; i++)
        if (!cmp_stem(&order[i - 1], &order[i])) {
            int a = order[i - 1] < order[i] ? order[i - 1] : order[i], b = order[i - 1] ^ order[i] ^ a;
            rc = cli_error("%s and %s would both write %s/%.*s.* (outputs are named by the path below the "
                           "folder given, or by the file name: give their folder, or explain them into "
                           "different --out folders)", images[a], images[b], dir, stem_length(names[a]), names[a]);
        }
    free(order);
    return rc;
}

/* The subfolder of DIR an output name below a folder needs ("cat/1.png": DIR/cat). */
static int make_parent(const char *dir, const char *name)
{
    const char *slash = strrchr(name, '/');
    if (!slash) return CLI_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%.*s", dir, (int)(slash - name), name);
    return cli_mkdir_p(path);
}

/* The outputs of an image, by the kind of the method's map: NAME.mask.*
 * for the mask methods, NAME.map.* for the others. */
#define N_OUTPUTS 5
static const char *const mask_suffixes[N_OUTPUTS] = {"mask.png", "mask.npy", "overlay.png", "panel.png", "json"};
static const char *const map_suffixes[N_OUTPUTS] = {"map.png", "map.npy", "overlay.png", "panel.png", "json"};

static const char *const *output_suffixes(nm_method method)
{
    return nm_method_map_kind(method) == NM_MAP_MASK ? mask_suffixes : map_suffixes;
}

/* How many of the image's outputs exist; `which` names the first found. */
static int outputs_existing(const char *dir, nm_method method, const char *name, char *which, size_t cap)
{
    const char *const *suffixes = output_suffixes(method);
    struct stat st;
    char path[4096];
    int found = 0;
    for (int i = 0; i < N_OUTPUTS; i++) {
        output_path(dir, name, suffixes[i], path, sizeof path);
        if (stat(path, &st) == 0 && found++ == 0) snprintf(which, cap, "%s", path);
    }
    return found;
}

static float mask_mean(const float *m, int n, float *area)
{
    double s = 0;
    int above = 0;
    for (int i = 0; i < n; i++) s += m[i], above += m[i] > 0.5f;
    *area = (float)above / (float)n;
    return (float)(s / n);
}

static void json_floats(FILE *f, const char *key, const float *v, int n)
{
    fprintf(f, "  \"%s\": [", key);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.6g", i ? ", " : "", (double)v[i]);
    fputs("],\n", f);
}

/* The options as run: the grid resolved for the model's input size. */
static void json_options(FILE *f, const explain_opts *o, int h, int w)
{
    static const char *const optimizers[] = {"rmsprop", "adam", "normalized"};
    static const char *const baselines[] = {"black", "blur", "mean", "noise"};
    const nm_neuromask_options *n = &o->nm;
    fprintf(f, "  \"options\": {\"preset\": \"%s\", \"class\": %d, \"steps\": %d, \"lr\": %.6g, "
               "\"l_pred\": %.6g, \"l_sparse\": %.6g, \"l_smooth\": %.6g, \"temperature\": %.6g, "
               "\"init_range\": %.6g, \"kernel\": %d, \"optimizer\": \"%s\", \"baseline\": \"%s\", "
               "\"blur_sigma\": %.6g, \"grid\": %d, \"tol\": %.6g, \"window\": %d, \"early_stop\": %s, "
               "\"init\": \"%s\", \"sparsity\": \"%s\", \"l_delete\": %.6g, \"alt_fill\": %d, "
               "\"alt_baseline\": \"%s\", \"average\": %d, \"calibrate\": %d, "
               "\"seed\": %llu, \"batch\": %d},\n",
            o->preset, n->target_class, n->steps, (double)n->lr, (double)n->l_pred, (double)n->l_sparse,
            (double)n->l_smooth, (double)n->temperature, (double)n->init_range, n->kernel,
            optimizers[n->optimizer], baselines[n->baseline], (double)n->blur_sigma,
            nm_neuromask_grid(n, h, w),
            (double)n->tol, n->window, n->early_stop ? "true" : "false",
            n->init == NM_INIT_ZERO ? "zero" : "uniform", n->sparsity == NM_SPARSITY_MASK ? "mask" : "logit",
            (double)n->l_delete, n->alt_fill, baselines[n->alt_baseline], n->average, n->calibrate,
            (unsigned long long)n->seed, o->batch);
}

static void json_preprocess(FILE *f, const nm_preprocess *p)
{
    fprintf(f, "  \"preprocess\": {\"resize\": %d, \"central_crop\": %.6g, \"crop\": %d, \"size\": %d, "
               "\"scale\": %.6g, \"offset\": %.6g, ",
            p->resize_short, (double)p->crop_fraction, p->crop, p->size, (double)p->scale, (double)p->offset);
    fprintf(f, "\"mean\": [%.6g, %.6g, %.6g], \"std\": [%.6g, %.6g, %.6g]},\n", (double)p->mean[0],
            (double)p->mean[1], (double)p->mean[2], (double)p->std[0], (double)p->std[1], (double)p->std[2]);
}

/* The fields every record starts with, up to the target's label. */
static void json_head(FILE *f, const explain_opts *o, const explain_run *r, const char *image,
                      const char *method, int target)
{
    const char *label = cli_label(&r->labels, target);
    fputs("{\n  \"model\": ", f);
    cli_json_string(f, o->model);
    fputs(",\n  \"image\": ", f);
    cli_json_string(f, image);
    fputs(",\n", f);
    json_preprocess(f, &r->pre);
    fprintf(f, "  \"method\": \"%s\",\n  \"target_class\": %d,\n  \"label\": ", method, target);
    if (label) cli_json_string(f, label);
    else fputs("null", f);
}

/* The JSON record of image b; "seconds" comes last, alone on its line. */
static char *json_record(const explain_opts *o, const explain_run *r, const nm_explanation *e, int b,
                         const char *image, double end_to_end, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    const float *mask = e->mask + (size_t)b * r->h * r->w;
    float area, mean = mask_mean(mask, r->h * r->w, &area);
    json_head(f, o, r, image, "neuromask", e->target[b]);
    fprintf(f, ",\n  \"prob_before\": %.6g,\n  \"prob_after\": %.6g,\n  \"kept\": %s,\n  \"top_after\": %d,\n",
            (double)e->prob_before[b], (double)e->prob_after[b], e->top_after[b] == e->target[b] ? "true" : "false",
            e->top_after[b]);
    fprintf(f, "  \"mask_mean\": %.6g,\n  \"mask_area\": %.6g,\n  \"steps\": %d,\n  \"converged_at\": %d,\n",
            (double)mean, (double)area, e->steps[b], e->converged_at[b]);
    float terms[3] = {e->loss_pred[b], e->loss_sparse[b], e->loss_smooth[b]};
    fprintf(f, "  \"loss\": %.6g,\n", (double)(terms[0] + terms[1] + terms[2]));
    json_floats(f, "loss_terms", terms, 3);
    json_options(f, o, r->h, r->w);
    fprintf(f, "  \"seconds_end_to_end\": %.4f,\n", end_to_end);
    fprintf(f, "  \"seconds\": %.4f\n}\n", e->seconds / e->batch);
    fclose(f);
    return buf;
}

/* NAME.mask.png or NAME.map.png at the image's own resolution (0 where the crop cut). */
static nm_status write_map_png(const explain_run *r, int b, const char *dir, nm_method method, const char *name,
                               const float *mask, const nm_map_scale *scale, nm_error *err)
{
    char path[4096];
    int w0 = r->orig_w[b], h0 = r->orig_h[b];
    float *full = malloc(sizeof(float) * (size_t)w0 * (size_t)h0);
    if (!full) return nm_fail(err, NM_ERR_MEMORY, "out of memory");
    nm_preprocess_unmap(&r->pre, mask, r->h, r->w, h0, w0, full);
    nm_image pic = {0};
    nm_status s = nm_render_map(full, w0, h0, scale, &pic, err);
    output_path(dir, name, output_suffixes(method)[0], path, sizeof path);
    if (!s) s = nm_image_write_png(path, &pic, err);
    nm_image_free(&pic);
    free(full);
    return s;
}

static nm_status write_pictures(const char *dir, const char *name, const nm_image *geo, const float *mask,
                                const nm_map_scale *scale, const char *const *caption, int n_lines, nm_error *err)
{
    char path[4096];
    nm_image pic = {0};
    nm_status s = NM_OK;
    if (!s) s = nm_render_overlay(geo, mask, scale, 0.5f, &pic, err);
    output_path(dir, name, "overlay.png", path, sizeof path);
    if (!s) s = nm_image_write_png(path, &pic, err);
    nm_image_free(&pic);
    if (!s) s = nm_render_panel(geo, mask, scale, caption, n_lines, &pic, err);
    output_path(dir, name, "panel.png", path, sizeof path);
    if (!s) s = nm_image_write_png(path, &pic, err);
    nm_image_free(&pic);
    return s;
}

static int write_outputs(const explain_opts *o, const explain_run *r, const nm_explanation *e, int b,
                         const char *image, const char *name, double t_start)
{
    int rc = make_parent(o->out, name);
    if (rc) return rc;
    char path[4096], line[3][160];
    nm_error err = {0};
    const float *mask = e->mask + (size_t)b * r->h * r->w;
    float area, mean = mask_mean(mask, r->h * r->w, &area);
    const char *label = cli_label(&r->labels, e->target[b]);
    snprintf(line[0], sizeof line[0], "class %d %s", e->target[b], label ? label : "");
    snprintf(line[1], sizeof line[1], "p %.3f -> %.3f (%s)", (double)e->prob_before[b],
             (double)e->prob_after[b], e->top_after[b] == e->target[b] ? "kept" : "lost");
    snprintf(line[2], sizeof line[2], "mask mean %.3f area %.3f", (double)mean, (double)area);
    const char *caption[3] = {line[0], line[1], line[2]};
    int64_t dims[2] = {r->h, r->w};
    nm_map_scale scale = nm_map_scale_of(mask, r->h * r->w, NM_MAP_MASK);
    output_path(o->out, name, mask_suffixes[1], path, sizeof path);
    nm_status s = nm_npy_write_f32(path, mask, 2, dims, &err);
    if (!s) s = write_map_png(r, b, o->out, NM_METHOD_NEUROMASK, name, mask, &scale, &err);
    if (!s) s = write_pictures(o->out, name, &r->geo[b], mask, &scale, caption, 3, &err);
    size_t len = 0;
    double end_to_end = r->load_seconds / r->total + (nm_cpu_now() - t_start) / e->batch;
    char *json = s ? NULL : json_record(o, r, e, b, image, end_to_end, &len);
    output_path(o->out, name, "json", path, sizeof path);
    if (!s && !json) s = nm_fail(&err, NM_ERR_MEMORY, "out of memory");
    if (!s) s = nm_write_file_atomic(path, json, len, &err);
    free(json);
    if (s) return cli_fail(&err);
    if (!o->quiet)
        fprintf(stderr, "%s%s: class %d%s%s p %.3f -> %.3f, mask mean %.3f, %d steps, %.2fs\n", cli_progress_cr(&r->progress),
                image, e->target[b], label ? " " : "", label ? label : "", (double)e->prob_before[b],
                (double)e->prob_after[b], (double)mean, e->steps[b], e->seconds / e->batch);
    return CLI_OK;
}

/* Load image i of the batch into pixel-space planes and keep its picture. */
static nm_status load_image(explain_run *r, const char *path, int b, nm_error *err)
{
    static const nm_preprocess identity = {.scale = 1.f, .std = {1.f, 1.f, 1.f}};
    nm_image img;
    nm_status s = nm_image_load(path, &img, err);
    if (s) return s;
    nm_image_free(&r->geo[b]);
    r->orig_w[b] = img.w;
    r->orig_h[b] = img.h;
    s = nm_preprocess_geometry(&r->pre, &img, r->h, r->w, &r->geo[b], err);
    nm_image_free(&img);
    if (s) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return nm_fail(err, s, "%s: %s", path, msg);
    }
    nm_preprocess_normalize(&identity, &r->geo[b], r->c, r->x + (size_t)b * r->c * r->h * r->w);
    return NM_OK;
}

/* ------------------------------------------------- the other methods */

/* The map's range and mean, for the caption and the JSON record. */
static void map_range(const nm_saliency *s, float *lo, float *hi, double *mean)
{
    int n = s->h * s->w;
    *lo = *hi = s->map[0];
    *mean = 0;
    for (int i = 0; i < n; i++) {
        *lo = s->map[i] < *lo ? s->map[i] : *lo;
        *hi = s->map[i] > *hi ? s->map[i] : *hi;
        *mean += s->map[i] / n;
    }
}

static void json_method_options(FILE *f, const explain_opts *o)
{
    static const char *const baselines[] = {"black", "blur", "mean", "noise"};
    const nm_saliency_options *s = &o->sal;
    fprintf(f, "  \"options\": {\"class\": %d, \"seed\": %llu, \"batch\": %d", s->target_class,
            (unsigned long long)s->seed, s->batch);
    switch (o->method) {
    case NM_METHOD_INTEGRATED_GRADIENTS:
        fprintf(f, ", \"ig_steps\": %d, \"ig_rule\": \"midpoint\", \"ig_baseline\": \"%s\"", s->ig_steps,
                baselines[s->ig_baseline]);
        break;
    case NM_METHOD_SMOOTHGRAD: fprintf(f, ", \"sg_samples\": %d, \"sg_sigma\": %.6g", s->sg_samples, (double)s->sg_sigma); break;
    case NM_METHOD_GRADCAM:
        fputs(", \"gradcam_layer\": ", f);
        if (s->gradcam_layer) cli_json_string(f, s->gradcam_layer);
        else fputs("null", f);
        break;
    case NM_METHOD_OCCLUSION:
        fprintf(f, ", \"occ_patch\": %d, \"occ_stride\": %d, \"occ_fill\": \"%s\"", s->occ_patch, s->occ_stride,
                baselines[s->occ_fill]);
        break;
    case NM_METHOD_RISE:
        fprintf(f, ", \"rise_masks\": %d, \"rise_cell\": %d, \"rise_p\": %.6g", s->rise_masks, s->rise_cell,
                (double)s->rise_p);
        break;
    case NM_METHOD_MEANINGFUL_PERTURBATION:
    case NM_METHOD_EXTREMAL_PERTURBATION:
        fprintf(f, ", \"pert_steps\": %d, \"pert_grid\": %d, \"pert_lr\": %.6g, \"blur_sigma\": %.6g", s->pert_steps,
                s->pert_grid, (double)s->pert_lr, (double)s->blur_sigma);
        if (o->method == NM_METHOD_MEANINGFUL_PERTURBATION)
            fprintf(f, ", \"mp_l1\": %.6g, \"mp_tv\": %.6g", (double)s->mp_l1, (double)s->mp_tv);
        else {
            fputs(", \"areas\": [", f);
            for (int i = 0; i < s->ep_n_areas; i++) fprintf(f, "%s%.6g", i ? ", " : "", (double)s->ep_areas[i]);
            fputs("]", f);
        }
        break;
    default: break;
    }
    fputs("},\n", f);
}

/* The JSON record of one saliency map; "seconds" comes last, alone on its line. */
static char *json_saliency(const explain_opts *o, const explain_run *r, const nm_saliency *s, const char *image,
                           const nm_map_scale *scale, double end_to_end, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    json_head(f, o, r, image, nm_method_name(o->method), s->target);
    float lo, hi;
    double mean;
    map_range(s, &lo, &hi, &mean);
    fprintf(f, ",\n  \"prob_before\": %.6g,\n  \"is_mask\": %s,\n  \"map_kind\": \"%s\",\n", (double)s->prob,
            s->is_mask ? "true" : "false", nm_map_kind_name(scale->kind));
    fprintf(f, "  \"map_min\": %.6g,\n  \"map_max\": %.6g,\n  \"map_mean\": %.6g,\n", (double)lo, (double)hi, mean);
    fprintf(f, "  \"colour_range\": [%.6g, %.6g],\n", (double)scale->lo, (double)scale->hi);
    if (o->method == NM_METHOD_INTEGRATED_GRADIENTS)
        fprintf(f, "  \"completeness_error\": %.6g,\n", s->completeness_error);
    json_method_options(f, o);
    fprintf(f, "  \"seconds_end_to_end\": %.4f,\n", end_to_end);
    fprintf(f, "  \"seconds\": %.4f\n}\n", s->seconds);
    fclose(f);
    return buf;
}

static int write_saliency(const explain_opts *o, const explain_run *r, const nm_saliency *s, const char *image,
                          const char *name, double t_start)
{
    int rc = make_parent(o->out, name);
    if (rc) return rc;
    char path[4096], line[4][160];
    nm_error err = {0};
    float lo, hi;
    double mean;
    map_range(s, &lo, &hi, &mean);
    nm_map_scale scale = nm_map_scale_of(s->map, s->h * s->w, nm_method_map_kind(o->method));
    const char *label = cli_label(&r->labels, s->target);
    snprintf(line[0], sizeof line[0], "class %d %s", s->target, label ? label : "");
    int n = snprintf(line[1], sizeof line[1], "p %.3f  %s", (double)s->prob, nm_method_name(o->method));
    if (o->method == NM_METHOD_INTEGRATED_GRADIENTS && n > 0 && n < (int)sizeof line[1])
        snprintf(line[1] + n, sizeof line[1] - (size_t)n, ", completeness error %.3g", s->completeness_error);
    snprintf(line[2], sizeof line[2], "map %.3g .. %.3g, colours %.3g .. %.3g", (double)lo, (double)hi,
             (double)scale.lo, (double)scale.hi);
    snprintf(line[3], sizeof line[3], "red raises the class score, blue lowers it");
    const char *caption[4] = {line[0], line[1], line[2], line[3]};
    int n_lines = scale.kind == NM_MAP_SIGNED ? 4 : 3;
    int64_t dims[2] = {r->h, r->w};
    output_path(o->out, name, output_suffixes(o->method)[1], path, sizeof path);
    nm_status st = nm_npy_write_f32(path, s->map, 2, dims, &err);
    if (!st) st = write_map_png(r, 0, o->out, o->method, name, s->map, &scale, &err);
    if (!st) st = write_pictures(o->out, name, &r->geo[0], s->map, &scale, caption, n_lines, &err);
    size_t len = 0;
    double end_to_end = r->load_seconds / r->total + (nm_cpu_now() - t_start);
    char *json = st ? NULL : json_saliency(o, r, s, image, &scale, end_to_end, &len);
    output_path(o->out, name, "json", path, sizeof path);
    if (!st && !json) st = nm_fail(&err, NM_ERR_MEMORY, "out of memory");
    if (!st) st = nm_write_file_atomic(path, json, len, &err);
    free(json);
    if (st) return cli_fail(&err);
    if (!o->quiet)
        fprintf(stderr, "%s: %s, class %d%s%s p %.3f, map %.3g .. %.3g, %.2fs\n", image, nm_method_name(o->method),
                s->target, label ? " " : "", label ? label : "", (double)s->prob, (double)lo, (double)hi, s->seconds);
    return CLI_OK;
}

/* One image (loaded as image 0 of the run) through nm_explain. */
static int explain_saliency(explain_opts *o, explain_run *r, const char *image, const char *name, int index,
                            double t_start, int *failed)
{
    nm_error err = {0};
    nm_saliency_options so = o->sal;
    so.seed = o->sal.seed + (uint64_t)index;   /* as NeuroMask: image i draws with seed + i */
    so.cancel = &cli_interrupted;
    nm_saliency s;
    if (nm_explain(r->model, &r->pre, r->x, o->method, &so, &s, &err)) {
        if (err.code == NM_ERR_CANCELLED) return CLI_OK;   /* cmd_explain reports the interrupt */
        *failed = 1;
        return cli_error("%s: %s", image, err.msg);
    }
    int rc = write_saliency(o, r, &s, image, name, t_start);
    r->done++;
    nm_saliency_free(&s);
    return rc;
}

/* Explain paths[0..n) together. Images that fail to load are reported and
 * skipped; *failed is set for them. */
static int explain_batch(explain_opts *o, explain_run *r, char **paths, char **names, int n, int first_index,
                         int *failed)
{
    nm_error err = {0};
    const char *loaded[1024], *loaded_names[1024];
    int count = 0;
    double t_start = nm_cpu_now();
    for (int i = 0; i < n; i++) {
        if (load_image(r, paths[i], count, &err)) *failed = cli_fail(&err);
        else loaded_names[count] = names[i], loaded[count++] = paths[i];
    }
    if (!count) return CLI_OK;
    if (o->method != NM_METHOD_NEUROMASK)
        return explain_saliency(o, r, loaded[0], loaded_names[0], first_index, t_start, failed);
    nm_neuromask_options nm = o->nm;
    nm.seed = o->nm.seed + (uint64_t)first_index;
    nm.progress = o->quiet ? NULL : on_step;
    nm.progress_ctx = r;
    nm.cancel = &cli_interrupted;
    nm_explanation e;
    if (nm_neuromask_explain(r->model, &r->pre, r->x, count, &nm, &e, &err)) {
        if (err.code == NM_ERR_CANCELLED) return CLI_OK;   /* cmd_explain reports the interrupt */
        *failed = 1;
        return cli_error("%s: %s", loaded[0], err.msg);
    }
    int rc = CLI_OK;
    for (int b = 0; b < count && rc == CLI_OK; b++) rc = write_outputs(o, r, &e, b, loaded[b], loaded_names[b], t_start);
    r->done += count;
    nm_explanation_free(&e);
    return rc;
}

static int setup(explain_opts *o, explain_run *r, int n_images)
{
    nm_error err = {0};
    nm_load_options lo = {.max_bytes = o->max_bytes, .threads = o->threads};
    if (o->precision && strcmp(o->precision, "fp32") != 0 && strcmp(o->precision, "bf16") != 0)
        return cli_usage_error("explain", "unknown precision '%s' (fp32, bf16)", o->precision);
    if (o->precision && strcmp(o->precision, "bf16") == 0) lo.precision = NM_PRECISION_BF16;
    double t_load = nm_cpu_now();
    if (nm_model_load_file(o->model, &lo, &r->model, &err)) return cli_fail(&err);
    r->load_seconds = nm_cpu_now() - t_load;
    int rc = cli_check_image_model(r->model, o->model, &r->c, &r->h, &r->w);
    if (!rc) rc = cli_resolve_preprocess("explain", &o->pre, r->model, o->model, &r->pre);
    if (!rc) rc = resolve_nm_options(o);
    if (!rc) rc = resolve_method(o);
    if (!rc && o->method == NM_METHOD_GRADCAM) {
        /* the layer used, checked before any output and recorded in the JSON */
        const char *layer = nm_gradcam_layer(r->model, &o->sal, &err);
        if (!layer) return cli_error("%s: %s", o->model, err.msg);
        if (!(o->gradcam_layer = strdup(layer))) return cli_error("out of memory");
        o->sal.gradcam_layer = o->gradcam_layer;
    }
    if (rc) return rc;
    nm_shape out = nm_model_output_shape(r->model);
    if (out.ndim != 2) return cli_error("%s: output '%s' is not [N, classes]", o->model, nm_model_output_name(r->model));
    r->k = (int)out.dims[1];
    if (o->nm.target_class >= r->k)
        return cli_usage_error("explain", "--class %d, but the model has %d classes", o->nm.target_class, r->k);
    rc = cli_labels_load(o->class_names, r->model, o->model, r->k, &r->labels);
    if (rc) return rc;
    int together = o->method == NM_METHOD_NEUROMASK ? o->batch : 1;   /* other methods: one image per call */
    r->batch = together < n_images ? together : n_images;
    r->x = malloc(sizeof(float) * (size_t)r->batch * r->c * r->h * r->w);
    r->geo = calloc((size_t)r->batch, sizeof *r->geo);
    r->orig_w = calloc((size_t)r->batch, sizeof *r->orig_w);
    r->orig_h = calloc((size_t)r->batch, sizeof *r->orig_h);
    if (!r->x || !r->geo || !r->orig_w || !r->orig_h) return cli_error("out of memory");
    rc = cli_mkdir_p(o->out);
    if (rc) return rc;
    r->total = n_images;
    cli_progress_start(&r->progress, o->quiet);
    return CLI_OK;
}

/* Drop images whose outputs exist (an error each), unless --force or --resume. */
static int skip_existing(const explain_opts *o, char **images, char **names, int *n)
{
    char which[4096];
    int kept = 0, rc = CLI_OK;
    for (int i = 0; i < *n; i++) {
        if (!o->force && !o->resume && outputs_existing(o->out, o->method, names[i], which, sizeof which)) {
            rc = cli_error("%s: exists (use --force to overwrite, --resume to finish an interrupted run)", which);
            free(images[i]);
            continue;
        }
        names[kept] = names[i];
        images[kept++] = images[i];
    }
    *n = kept;
    return rc;
}

/* Every image of the batch has all its outputs (it was finished before). */
static int batch_complete(const explain_opts *o, char **names, int n)
{
    char which[4096];
    for (int i = 0; i < n; i++)
        if (outputs_existing(o->out, o->method, names[i], which, sizeof which) < N_OUTPUTS) return 0;
    return 1;
}

/* The item of one JSON line ("  \"key\": {...},") where it first differs from
 * another, for the message; whole lines when they have no items. */
static void first_difference(const char *a, const char *b, char *out, size_t cap)
{
    size_t i = 0, start = 0;
    while (a[i] && a[i] == b[i] && a[i] != '\n') {
        if (a[i] == ',' || a[i] == '{') start = i + 1;
        i++;
    }
    while (a[start] == ' ') start++;
    size_t ea = start + strcspn(a + start, ",}\n"), eb = start + strcspn(b + start, ",}\n");
    snprintf(out, cap, "%.*s, this run: %.*s", (int)(ea - start), a + start, (int)(eb - start), b + start);
}

/* --resume: the image's JSON (when there is one) was made with this run's
 * method, preprocessing and options; else an error naming the file and the
 * first difference. */
static int same_settings(const explain_opts *o, const explain_run *r, const char *name)
{
    char path[4096], diff[512];
    struct stat st;
    output_path(o->out, name, "json", path, sizeof path);
    if (stat(path, &st) != 0) return CLI_OK;
    char *old = cli_read_text(path), *now = NULL;
    size_t len = 0;
    FILE *f = old ? open_memstream(&now, &len) : NULL;
    if (!f) {
        free(old);
        return cli_error("%s: cannot read: %s", path, strerror(errno));
    }
    fprintf(f, "  \"method\": \"%s\",\n", nm_method_name(o->method));
    json_preprocess(f, &r->pre);
    if (o->method == NM_METHOD_NEUROMASK) json_options(f, o, r->h, r->w);
    else json_method_options(f, o);
    fclose(f);
    int rc = CLI_OK;
    for (const char *line = now; rc == CLI_OK && *line; line += strcspn(line, "\n") + 1) {
        size_t key = strcspn(line, ":") + 1, n = strcspn(line, "\n");
        const char *was = old;
        while (was && strncmp(was, line, key) != 0) was = (was = strchr(was, '\n')) ? was + 1 : NULL;
        if (was && strncmp(was, line, n) == 0 && (was[n] == '\n' || !was[n])) continue;
        if (was) first_difference(was, line, diff, sizeof diff);
        else snprintf(diff, sizeof diff, "no %.*s", (int)key - 1, line + 2);
        rc = cli_error("%s: made with other settings (%s); --resume continues a run with the same "
                       "method and options: use --force to redo it, or another --out", path, diff);
    }
    free(old);
    free(now);
    return rc;
}

/* A shard keeps its part of the list (images and their output names);
 * *first is its index in the whole list (the seeds are the whole run's).
 * NeuroMask's batches stay whole. */
static int select_shard(const explain_opts *o, char **images, char **names, int *n, int *first)
{
    cli_shard shard;
    int rc = cli_shard_resolve("explain", &o->shard_flags, &shard), count;
    if (rc) return rc;
    int neuromask = !o->method_name || nm_method_from_name(o->method_name) == NM_METHOD_NEUROMASK;
    cli_shard_range(&shard, *n, neuromask ? o->batch : 1, first, &count);
    for (int i = 0; i < *n; i++)
        if (i < *first || i >= *first + count) free(images[i]);
    memmove(images, images + *first, sizeof *images * (size_t)count);
    memmove(names, names + *first, sizeof *names * (size_t)count);
    *n = count;
    return CLI_OK;
}

static void run_free(explain_run *r)
{
    for (int b = 0; r->geo && b < r->batch; b++) nm_image_free(&r->geo[b]);
    free(r->geo);
    free(r->orig_w);
    free(r->orig_h);
    free(r->x);
    cli_labels_free(&r->labels);
    nm_model_free(r->model);
}

int cmd_explain(int argc, char **argv)
{
    explain_opts o = {.batch = 1};
    nm_saliency_defaults(&o.sal);
    explain_run r = {0};
    char **images = NULL, **names = NULL;
    int n_images = 0, failed = 0, first = 0, *name_at = NULL;
    int rc = parse_args(argc, argv, &o);
    if (rc == CLI_OK) rc = cli_collect_images(o.inputs, o.n_inputs, o.recursive, &images, &name_at, &n_images);
    if (rc == CLI_OK && !(names = malloc(sizeof *names * (size_t)(n_images ? n_images : 1)))) rc = cli_error("out of memory");
    for (int i = 0; rc == CLI_OK && i < n_images; i++) names[i] = images[i] + name_at[i];
    if (rc == CLI_OK) rc = check_unique_outputs(o.out, images, names, n_images);
    if (rc == CLI_OK) rc = select_shard(&o, images, names, &n_images, &first);
    if (rc == CLI_OK) failed = skip_existing(&o, images, names, &n_images);
    if (rc == CLI_OK && n_images) rc = setup(&o, &r, n_images);
    for (int i = 0; rc == CLI_OK && o.resume && i < n_images; i++) rc = same_settings(&o, &r, names[i]);
    if (rc == CLI_OK && n_images) cli_catch_interrupts();
    int resumed = 0;
    for (int i = 0; rc == CLI_OK && i < n_images && !cli_interrupted; i += r.batch) {
        int n = n_images - i < r.batch ? n_images - i : r.batch;
        if (o.resume && batch_complete(&o, names + i, n)) {
            resumed += n;   /* the slot stays: seeds and batches match an uninterrupted run */
            r.done += n;
            continue;
        }
        rc = explain_batch(&o, &r, images + i, names + i, n, first + i, &failed);
    }
    if (resumed && !o.quiet) fprintf(stderr, "%d image(s) already complete, skipped (--resume)\n", resumed);
    if (rc == CLI_OK && cli_interrupted) {
        cli_error("interrupted: %d of %d images written, each complete; rerun with --resume to finish",
                  r.done - resumed, n_images - resumed);
        rc = CLI_SIGNAL_BASE + cli_interrupted;
    } else if (rc == CLI_OK && failed) rc = CLI_FAIL;
    cli_free_list(images, n_images);
    free(names);
    free(name_at);
    run_free(&r);
    free(o.inputs);
    free(o.gradcam_layer);
    return rc < 0 ? CLI_OK : rc;
}
