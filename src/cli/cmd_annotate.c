/* neuromask annotate: store the preprocessing recipe and the class names in
 * the model's metadata_props, so every command finds them in the model. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_common.h"
#include "core/atomic_file.h"
#include "core/read_file.h"
#include "onnx/onnx_metadata.h"

static const char annotate_help[] =
    "Usage: neuromask annotate MODEL.onnx [--preprocess NAME|SPEC] [--class-names FILE] -o OUT.onnx\n"
    "Write a copy of the model whose metadata_props carry the preprocessing recipe\n"
    "(\"" CLI_META_PREPROCESS "\") and the class names (\"" CLI_META_CLASS_NAMES "\", one per\n"
    "line), replacing those entries if the model had them; every other byte of the model\n"
    "is kept. classify, explain and eval then need neither --preprocess nor\n"
    "--class-names for it, and warn when a --preprocess given differs from its recipe.\n"
    "\n"
    "Options:\n"
    "  --preprocess NAME|SPEC  the recipe (see classify --help), checked before writing\n"
    "  --class-names FILE      class names, one per line (a leading WordNet id is dropped);\n"
    "                          as many as the model has classes\n"
    "  -o, --out FILE     the annotated model (written under a temporary name, renamed)\n"
    "  --force            overwrite FILE if it exists\n"
    "  -h, --help         this help\n";

/* The class names of FILE joined by '\n', checked against the model. */
static int class_names_text(const char *path, const nm_model *m, const char *model_path, char **text)
{
    nm_shape out = nm_model_output_shape(m);
    if (out.ndim != 2) return cli_error("%s: output '%s' is not [N, classes]", model_path, nm_model_output_name(m));
    cli_labels labels;
    int rc = cli_labels_load(path, NULL, model_path, (int)out.dims[1], &labels);
    if (rc) return rc;
    size_t len = 1;
    for (int i = 0; i < labels.n; i++) len += strlen(labels.names[i]) + 1;
    *text = malloc(len);
    if (!*text) rc = cli_error("out of memory");
    for (int i = 0, at = 0; !rc && i < labels.n; i++)
        at += sprintf(*text + at, "%s%s", i ? "\n" : "", labels.names[i]);
    cli_labels_free(&labels);
    return rc;
}

int cmd_annotate(int argc, char **argv)
{
    cli_parser p = cli_parser_start("annotate", argc, argv);
    const char *model = NULL, *out = NULL, *preprocess = NULL, *class_names = NULL;
    int force = 0;
    while (cli_next(&p)) {
        if (cli_positional(&p) && !model) model = p.arg;
        else if (cli_string(&p, "--out", &out) || cli_string(&p, "-o", &out)) {}
        else if (cli_string(&p, "--preprocess", &preprocess)) {}
        else if (cli_class_names_option(&p, &class_names)) {}
        else if (cli_flag(&p, "--force")) force = 1;
        else cli_unknown(&p);
    }
    if (p.help) {
        fputs(annotate_help, stdout);
        return CLI_OK;
    }
    if (p.status) return p.status;
    if (!model) return cli_usage_error("annotate", "no model given (see --help)");
    if (!out) return cli_usage_error("annotate", "-o OUT.onnx is required (see --help)");
    if (!preprocess && !class_names)
        return cli_usage_error("annotate", "nothing to write: give --preprocess and/or --class-names");
    nm_error err = { 0 };
    nm_preprocess check;
    if (preprocess && nm_preprocess_parse(preprocess, &check, &err)) return cli_usage_error("annotate", "%s", err.msg);
    struct stat st;
    if (!force && stat(out, &st) == 0) return cli_error("%s: exists (use --force to overwrite)", out);
    nm_model *m = NULL;
    if (nm_model_load_file(model, NULL, &m, &err)) return cli_fail(&err);
    const char *keys[2], *values[2];
    char *names = NULL;
    int n = 0, rc = CLI_OK;
    if (preprocess) keys[n] = CLI_META_PREPROCESS, values[n++] = preprocess;
    if (class_names && !(rc = class_names_text(class_names, m, model, &names)))
        keys[n] = CLI_META_CLASS_NAMES, values[n++] = names;
    nm_model_free(m);
    m = NULL;
    void *bytes = NULL;
    uint8_t *annotated = NULL;
    size_t size = 0, annotated_size = 0;
    if (!rc && (nm_read_file(model, &bytes, &size, &err) ||
                nm_onnx_set_metadata(bytes, size, model, keys, values, n, &annotated, &annotated_size, &err) ||
                nm_write_file_atomic(out, annotated, annotated_size, &err)))
        rc = cli_fail(&err);
    free(bytes);
    free(annotated);
    /* read back: the written file is a model that carries the entries */
    for (int i = 0; !rc && i < n + 1; i++) {
        if (i == 0 && nm_model_load_file(out, NULL, &m, &err)) rc = cli_fail(&err);
        else if (i > 0 && (!nm_model_metadata(m, keys[i - 1]) || strcmp(nm_model_metadata(m, keys[i - 1]), values[i - 1])))
            rc = cli_error("%s: metadata %s did not read back", out, keys[i - 1]);
    }
    if (!rc) printf("wrote %s\n", out);
    free(names);
    nm_model_free(m);
    return rc;
}
