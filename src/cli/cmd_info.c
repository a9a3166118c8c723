/* neuromask info: what a model is, as neuromask plans it. */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

static const char info_help[] =
    "Usage: neuromask info [--batch N] [--tensors] MODEL.onnx\n"
    "Show the model's input and output, opset, nodes and op counts (after\n"
    "neuromask's graph passes), parameters, FLOPs of one forward pass at the\n"
    "batch size, and neuromask metadata.\n"
    "\n"
    "Options:\n"
    "  --batch N    batch size to plan for (default: the model's, or 1)\n"
    "  --tensors    also list the tensors the nodes compute, with shapes; '*' marks the\n"
    "               spatial ones explain --gradcam-layer can name, 'default' Grad-CAM's own\n"
    CLI_MAX_MEMORY_HELP
    "  -h, --help   this help\n";

static void print_shape(const char *what, const char *name, nm_shape s)
{
    printf("%-11s %s [", what, name);
    for (int i = 0; i < s.ndim; i++) printf("%s%lld", i ? "," : "", (long long)s.dims[i]);
    printf("]\n");
}

static void print_count(const char *what, double v, const char *unit)
{
    if (v >= 1e9) printf("%-11s %.3f G%s\n", what, v / 1e9, unit);
    else if (v >= 1e6) printf("%-11s %.3f M%s\n", what, v / 1e6, unit);
    else if (v >= 1e3) printf("%-11s %.3f k%s\n", what, v / 1e3, unit);
    else printf("%-11s %.0f %s\n", what, v, unit);
}

/* The metadata keys neuromask reads or writes (the model API looks keys up
 * by name). Values can be long (labels): show the first 60 characters. */
static void print_metadata(const nm_model *m)
{
    static const char *const keys[] = { CLI_META_PREPROCESS, CLI_META_CLASS_NAMES, CLI_META_CLASS_NAMES_OLD,
                                        "neuromask.dataset", "neuromask.test_accuracy" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = nm_model_metadata(m, keys[i]);
        if (!v) continue;
        size_t n = strcspn(v, "\n");
        if (n > 60) n = 60;
        printf("%-11s %s = %.*s%s\n", "metadata", keys[i], (int)n, v,
               n < strlen(v) ? " ..." : "");
    }
}

static void print_info(const char *path, const nm_model *m)
{
    nm_model_info info;
    nm_model_get_info(m, &info);
    printf("%-11s %s\n", "model", path);
    print_shape("input", nm_model_input_name(m), nm_model_input_shape(m));
    print_shape("output", nm_model_output_name(m), nm_model_output_shape(m));
    printf("%-11s %d\n", "opset", info.opset);
    printf("%-11s %d\n", "nodes", info.n_nodes);
    printf("%-11s", "ops");
    for (int i = 0; i < info.n_op_types; i++)
        printf("%s %s %d", i ? "," : "", info.op_types[i], info.op_counts[i]);
    printf("\n%-11s %lld (", "parameters", (long long)info.n_params);
    if (info.n_params >= 1000000) printf("%.2f M)\n", info.n_params / 1e6);
    else printf("%.1f k)\n", info.n_params / 1e3);
    print_count("FLOPs", info.flops, "FLOP");
    printf("%-11s %.1f MiB (activations and gradients, as planned)\n", "memory", (double)info.planned_bytes / 1048576);
    print_metadata(m);
}

/* Every tensor the nodes compute, in execution order, spatial ones marked. */
static int print_tensors(const nm_model *m)
{
    int n = nm_model_tensors(m, NULL, NULL, 0), n_spatial = nm_model_spatial_tensors(m, NULL, 0);
    const char **names = malloc(sizeof *names * (size_t)(n + 1)), **spatial = malloc(sizeof *spatial * (size_t)(n_spatial + 1));
    nm_shape *shapes = malloc(sizeof *shapes * (size_t)(n + 1));
    if (!names || !spatial || !shapes) {
        free(names), free(spatial), free(shapes);
        return cli_error("out of memory");
    }
    nm_model_tensors(m, names, shapes, n);
    nm_model_spatial_tensors(m, spatial, n_spatial);
    nm_error err = { 0 };
    const char *gradcam = nm_gradcam_layer(m, NULL, &err);
    printf("%-11s %d (* spatial: a Grad-CAM layer, explain --gradcam-layer NAME)\n", "tensors", n);
    for (int i = 0; i < n; i++) {
        int is_spatial = 0;
        for (int k = 0; k < n_spatial && !is_spatial; k++) is_spatial = spatial[k] == names[i];
        printf("  %s %s [", is_spatial ? "*" : " ", names[i]);
        for (int d = 0; d < shapes[i].ndim; d++) printf("%s%lld", d ? "," : "", (long long)shapes[i].dims[d]);
        printf("]%s\n", gradcam && !strcmp(gradcam, names[i]) ? "  (Grad-CAM's default)" : "");
    }
    free(names), free(spatial), free(shapes);
    return CLI_OK;
}

int cmd_info(int argc, char **argv)
{
    cli_parser p = cli_parser_start("info", argc, argv);
    const char *path = NULL;
    int batch = 0, tensors = 0;
    int64_t max_bytes = 0;
    while (cli_next(&p)) {
        if (cli_positional(&p) && !path) path = p.arg;
        else if (cli_int(&p, "--batch", 1, 4096, &batch)) {}
        else if (cli_flag(&p, "--tensors")) tensors = 1;
        else if (cli_max_memory(&p, &max_bytes)) {}
        else cli_unknown(&p);
    }
    if (p.help) {
        fputs(info_help, stdout);
        return CLI_OK;
    }
    if (p.status) return p.status;
    if (!path) return cli_usage_error("info", "no model given (see --help)");
    nm_model *m = NULL;
    nm_error err = { 0 };
    nm_load_options lo = { .batch = batch, .max_bytes = max_bytes };
    if (nm_model_load_file(path, &lo, &m, &err) != NM_OK) return cli_fail(&err);
    print_info(path, m);
    int rc = tensors ? print_tensors(m) : CLI_OK;
    nm_model_free(m);
    return rc;
}
