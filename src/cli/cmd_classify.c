/* neuromask classify: top-k classes of images, in batches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

static const char classify_help[] =
    "Usage: neuromask classify --model M.onnx [options] IMAGE|DIR...\n"
    "Classify PNG/JPEG images (a directory means its .png/.jpg/.jpeg files, sorted).\n"
    "Prints \"PATH: label (p=0.873), ...\" per image; probabilities are the softmax of\n"
    "the model's output (used as they are when they already sum to 1).\n"
    "\n"
    "Options:\n"
    "  --model FILE       the ONNX classifier (input [N,C,H,W], C = 1 or 3)\n"
    CLI_CLASS_NAMES_HELP
    CLI_RECURSIVE_HELP
    "  --top K            classes to show per image (default 5)\n"
    "  --json             one JSON object per line:\n"
    "                     {\"image\": PATH, \"top\": [{\"class\": I, \"label\": S, \"prob\": P}, ...]}\n"
    "  --batch N          images per forward pass (default: up to 16)\n"
    CLI_MAX_MEMORY_HELP
    "  -h, --help         this help\n"
    "\n";

typedef struct classify_opts {
    const char *model, *class_names;
    int top, batch, json, recursive;
    int64_t max_bytes;
    cli_preprocess_flags pre;
    char **inputs;
    int n_inputs;
} classify_opts;

static int parse_args(int argc, char **argv, classify_opts *o)
{
    cli_parser p = cli_parser_start("classify", argc, argv);
    o->inputs = calloc((size_t)argc, sizeof *o->inputs);
    if (!o->inputs) return cli_error("out of memory");
    while (cli_next(&p)) {
        if (cli_positional(&p)) o->inputs[o->n_inputs++] = (char *)p.arg;
        else if (cli_string(&p, "--model", &o->model)) {}
        else if (cli_class_names_option(&p, &o->class_names)) {}
        else if (cli_int(&p, "--top", 1, 100000, &o->top)) {}
        else if (cli_int(&p, "--batch", 1, 4096, &o->batch)) {}
        else if (cli_max_memory(&p, &o->max_bytes)) {}
        else if (cli_flag(&p, "--json")) o->json = 1;
        else if (cli_flag(&p, "--recursive")) o->recursive = 1;
        else if (cli_preprocess_option(&p, &o->pre)) {}
        else cli_unknown(&p);
    }
    if (p.help) {
        fputs(classify_help, stdout);
        fputs(cli_preprocess_help, stdout);
        return -1;
    }
    if (p.status) return p.status;
    if (!o->model) return cli_usage_error("classify", "--model is required (see --help)");
    if (o->n_inputs == 0) return cli_usage_error("classify", "no images given (see --help)");
    return CLI_OK;
}

/* Probabilities from one output row, in place. */
static void to_probabilities(float *x, int k)
{
    double sum = 0.0;
    int probs = 1;
    for (int i = 0; i < k; i++) {
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) probs = 0;
        sum += x[i];
    }
    if (probs && fabs(sum - 1.0) < 1e-3) return;
    float mx = x[0];
    for (int i = 1; i < k; i++) mx = x[i] > mx ? x[i] : mx;
    sum = 0.0;
    for (int i = 0; i < k; i++) sum += x[i] = expf(x[i] - mx);
    for (int i = 0; i < k; i++) x[i] = (float)(x[i] / sum);
}

/* Indices of the `top` largest of x[0..k) into idx, best first. */
static void top_k(const float *x, int k, int top, int *idx)
{
    for (int t = 0; t < top; t++) {
        int best = -1;
        for (int i = 0; i < k; i++) {
            int taken = 0;
            for (int j = 0; j < t && !taken; j++) taken = idx[j] == i;
            if (!taken && (best < 0 || x[i] > x[best])) best = i;
        }
        idx[t] = best;
    }
}

static void print_result(const classify_opts *o, const char *path, const float *prob, int k,
                         const cli_labels *labels, int *idx)
{
    int top = o->top < k ? o->top : k;
    top_k(prob, k, top, idx);
    if (o->json) {
        fputs("{\"image\": ", stdout);
        cli_json_string(stdout, path);
        fputs(", \"top\": [", stdout);
        for (int t = 0; t < top; t++) {
            const char *label = cli_label(labels, idx[t]);
            printf("%s{\"class\": %d, \"label\": ", t ? ", " : "", idx[t]);
            if (label) cli_json_string(stdout, label);
            else fputs("null", stdout);
            if (isfinite(prob[idx[t]])) printf(", \"prob\": %.6g}", prob[idx[t]]);
            else fputs(", \"prob\": null}", stdout);   /* JSON has no NaN */
        }
        fputs("]}\n", stdout);
    } else {
        printf("%s:", path);
        for (int t = 0; t < top; t++) {
            const char *label = cli_label(labels, idx[t]);
            if (label) printf("%s %s (p=%.3f)", t ? "," : "", label, prob[idx[t]]);
            else printf("%s class %d (p=%.3f)", t ? "," : "", idx[t], prob[idx[t]]);
        }
        putchar('\n');
    }
}

typedef struct classify_run {
    nm_model *model;
    nm_preprocess pre;
    cli_labels labels;
    int c, h, w, k, batch;
    float *input, *output;
    int *ok, *idx;
} classify_run;

/* One batch of images: those that fail to load are reported and skipped
 * (*bad_images is set). Returns CLI_FAIL when the model itself fails. */
static int classify_batch(const classify_opts *o, classify_run *r, char **paths, int n,
                          int *bad_images)
{
    size_t chw = (size_t)r->c * r->h * r->w;
    int loaded = 0;
    nm_error err = { 0 };
    memset(r->input, 0, chw * (size_t)r->batch * sizeof(float));
    for (int i = 0; i < n; i++) {
        r->ok[i] = cli_image_input(paths[i], &r->pre, r->c, r->h, r->w, r->input + i * chw, &err) == NM_OK;
        if (!r->ok[i]) *bad_images = cli_fail(&err);
        loaded += r->ok[i];
    }
    if (!loaded) return CLI_OK;
    if (nm_model_predict(r->model, r->input, r->output, &err) != NM_OK) return cli_fail(&err);
    for (int i = 0; i < n; i++) {
        if (!r->ok[i]) continue;
        float *row = r->output + (size_t)i * r->k;
        to_probabilities(row, r->k);
        print_result(o, paths[i], row, r->k, &r->labels, r->idx);
    }
    fflush(stdout);
    return CLI_OK;
}

static int setup(const classify_opts *o, int n_images, classify_run *r)
{
    nm_error err = { 0 };
    nm_load_options lo = { .batch = o->batch ? o->batch : (n_images < 16 ? n_images : 16), .max_bytes = o->max_bytes };
    nm_status st = nm_model_load_file(o->model, &lo, &r->model, &err);
    if (st == NM_ERR_SHAPE && !o->batch && lo.batch > 1) {
        /* some exported graphs hard-code batch 1 (e.g. in a Reshape) */
        lo.batch = 1;
        st = nm_model_load_file(o->model, &lo, &r->model, &err);
    }
    if (st != NM_OK) return cli_fail(&err);
    int rc = cli_check_image_model(r->model, o->model, &r->c, &r->h, &r->w);
    if (rc) return rc;
    rc = cli_resolve_preprocess("classify", &o->pre, r->model, o->model, &r->pre);
    if (rc) return rc;
    if (o->pre.has_size && (o->pre.size != r->h || o->pre.size != r->w))
        return cli_usage_error("classify", "--size %d, but the model's input is %dx%d", o->pre.size,
                               r->h, r->w);
    nm_shape out = nm_model_output_shape(r->model);
    r->batch = (int)nm_model_input_shape(r->model).dims[0];
    int64_t numel = 1;
    for (int i = 0; i < out.ndim; i++) numel *= out.dims[i];
    if (out.ndim != 2 || out.dims[0] != r->batch || numel / r->batch < 1 || numel / r->batch > (1 << 24))
        return cli_error("%s: output '%s' is not [N, classes]", o->model, nm_model_output_name(r->model));
    r->k = (int)(numel / r->batch);
    rc = cli_labels_load(o->class_names, r->model, o->model, r->k, &r->labels);
    if (rc) return rc;
    size_t chw = (size_t)r->c * r->h * r->w;
    r->input = malloc(chw * (size_t)r->batch * sizeof(float));
    r->output = malloc((size_t)r->k * r->batch * sizeof(float));
    r->ok = malloc((size_t)r->batch * sizeof(int));
    r->idx = malloc((size_t)r->k * sizeof(int));
    if (!r->input || !r->output || !r->ok || !r->idx) return cli_error("out of memory");
    return CLI_OK;
}

int cmd_classify(int argc, char **argv)
{
    classify_opts o = { .top = 5 };
    classify_run r = { 0 };
    char **images = NULL;
    int n_images = 0;
    int rc = parse_args(argc, argv, &o);
    if (rc == CLI_OK) rc = cli_collect_images(o.inputs, o.n_inputs, o.recursive, &images, NULL, &n_images);
    if (rc == CLI_OK) rc = setup(&o, n_images, &r);
    int bad_images = 0;
    for (int i = 0; rc == CLI_OK && i < n_images; i += r.batch) {
        int n = n_images - i < r.batch ? n_images - i : r.batch;
        rc = classify_batch(&o, &r, images + i, n, &bad_images);
    }
    if (rc == CLI_OK && bad_images) rc = CLI_FAIL;
    cli_free_list(images, n_images);
    cli_labels_free(&r.labels);
    nm_model_free(r.model);
    free(r.input);
    free(r.output);
    free(r.ok);
    free(r.idx);
    free(o.inputs);
    return rc < 0 ? CLI_OK : rc;
}
