/* Shared pieces of the neuromask subcommands: error lines, the option
 * parser, the preprocessing flags, image lists, input tensors and labels. */
#ifndef NM_CLI_COMMON_H
#define NM_CLI_COMMON_H

#include <signal.h>
#include <stdio.h>

#include "core/cpu_load.h"
#include "neuromask.h"

#define NM_CLI_VERSION "0.1.0"

/* Exit codes: 1 for bad input and runtime errors, 2 for usage errors,
 * 128 + the signal after an interrupt (as a shell reports a killed job). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_SIGNAL_BASE = 128 };

/* The signal number once SIGINT or SIGTERM arrived after
 * cli_catch_interrupts(), else 0. Long commands hand it to the library as
 * its cancel flag, finish the file being written and stop; a second signal
 * ends the process at once (only hidden temporary files can be left). */
extern volatile sig_atomic_t cli_interrupted;
void cli_catch_interrupts(void);

/* "neuromask: <message>" on stderr, one line. Returns CLI_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The library's message as one error line. Returns CLI_FAIL. */
int cli_fail(const nm_error *err);
/* "neuromask <cmd>: <message>" on stderr. Returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ options
 * Options are "--name value" or "--name=value"; "--" ends them. Usage:
 *   cli_parser p = cli_parser_start("classify", argc, argv);
 *   while (cli_next(&p)) {
 *       if (cli_positional(&p)) add(p.arg);
 *       else if (cli_flag(&p, "--json")) json = 1;
 *       else if (cli_int(&p, "--top", 1, 1000, &top)) {}
 *       else cli_unknown(&p);
 *   }
 *   if (p.status) return p.status;
 * Every cli_* matcher returns 1 when it consumed the argument (even when its
 * value was bad: then p.status is set and the loop ends). */
typedef struct cli_parser {
    const char *cmd;
    int argc;
    char **argv;
    int i;                  /* index of the next argument */
    const char *arg;        /* the current argument */
    const char *value;      /* the part after '=' in "--name=value", or NULL */
    int options_done;       /* after "--" everything is positional */
    int status;             /* CLI_USAGE after a usage error (message printed) */
    int help;               /* --help or -h was given */
} cli_parser;

cli_parser cli_parser_start(const char *cmd, int argc, char **argv);
int cli_next(cli_parser *p);
int cli_positional(const cli_parser *p);
int cli_flag(cli_parser *p, const char *name);
int cli_string(cli_parser *p, const char *name, const char **out);
int cli_int(cli_parser *p, const char *name, int lo, int hi, int *out);
int cli_float(cli_parser *p, const char *name, float *out);
/* "a,b,c" or a single value for all three. */
int cli_float3(cli_parser *p, const char *name, float out[3]);
/* --max-memory MIB: the limit on the model's planned tensor memory
 * (nm_load_options.max_bytes; the library's default is 8 GiB). */
int cli_max_memory(cli_parser *p, int64_t *bytes);
#define CLI_MAX_MEMORY_HELP "  --max-memory MIB   refuse models needing more tensor memory (default 8192)\n"
/* Records a usage error for an argument nobody matched. */
void cli_unknown(cli_parser *p);

/* The metadata_props keys the commands read (neuromask annotate writes them):
 * the preprocessing recipe (nm_preprocess_parse's spec) and the class names
 * ('\n' separated; "neuromask.labels", '|' or '\n' separated, is read for
 * models annotated before). */
#define CLI_META_PREPROCESS "neuromask.preprocess"
#define CLI_META_CLASS_NAMES "neuromask.class_names"
#define CLI_META_CLASS_NAMES_OLD "neuromask.labels"

/* ------------------------------------------------------- preprocessing */

typedef struct cli_preprocess_flags {
    const char *spec;       /* --preprocess: a recipe name or a spec string */
    int resize, crop, size;
    float central, scale, offset, mean[3], std[3];
    unsigned has_resize : 1, has_crop : 1, has_size : 1, has_central : 1, has_scale : 1,
        has_offset : 1, has_mean : 1, has_std : 1;
} cli_preprocess_flags;

/* Matches --preprocess, --resize, --crop, --central-crop, --size, --scale,
 * --offset, --mean, --std. */
int cli_preprocess_option(cli_parser *p, cli_preprocess_flags *f);
extern const char cli_preprocess_help[];

/* Explicit flags override the --preprocess recipe, which overrides the
 * model's "neuromask.preprocess" metadata; a result that differs from the
 * model's recipe gets a warning line. Returns CLI_OK, or the exit code
 * after printing the error. */
int cli_resolve_preprocess(const char *cmd, const cli_preprocess_flags *f, const nm_model *m,
                           const char *model_path, nm_preprocess *out);

/* ----------------------------------------------------------- progress
 * Progress lines with elapsed time and ETA on stderr: on a terminal one line
 * rewritten in place; elsewhere (a pipe, a file, a notebook, a batch job)
 * whole lines at most every CLI_PROGRESS_SECONDS, or the seconds in the
 * environment variable NEUROMASK_PROGRESS_SECONDS. --quiet turns them off. */
#define CLI_PROGRESS_SECONDS 5.0
typedef struct cli_progress {
    int on, tty;
    double t0, last, every;
} cli_progress;
void cli_progress_start(cli_progress *p, int quiet);
/* "<what>  elapsed Es  ETA Ts" for `fraction` (0..1) of the work done, when due. */
void cli_progress_report(cli_progress *p, double fraction, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "\r" before a result line on a terminal (over the progress line), else "". */
const char *cli_progress_cr(const cli_progress *p);

/* ------------------------------------------------------------- inputs */

/* The image files named by `paths`: files as given, directories expanded to
 * their .png/.jpg/.jpeg files (with `recursive`, those of every subfolder
 * too), sorted by path in byte order. Without `recursive`, a folder whose
 * images are all in subfolders is an error that says --recursive. When
 * name_at is not NULL, (*list)[i] + (*name_at)[i] is image i's name for its
 * outputs: its path below the folder named, or the file's own name (free
 * *name_at). Returns CLI_OK or prints the error and returns CLI_FAIL. Free
 * the list with cli_free_list. */
int cli_collect_images(char **paths, int n, int recursive, char ***list, int **name_at, int *count);
#define CLI_RECURSIVE_HELP "  --recursive        a folder means the images of all its subfolders too (sorted by path)\n"
void cli_free_list(char **list, int count);

/* Load one image and write its preprocessed [C,H,W] planes to `chw`. */
nm_status cli_image_input(const char *path, const nm_preprocess *pre, int c, int h, int w,
                          float *chw, nm_error *err);

/* The model's input as [N,C,H,W] with C 1 or 3, or print why not. */
int cli_check_image_model(const nm_model *m, const char *model_path, int *c, int *h, int *w);

/* ------------------------------------------------------------- labels */

typedef struct cli_labels {
    int n;
    char **names;
    char *text;             /* owned storage the names point into */
} cli_labels;

/* From `path` (one label per line; a leading WordNet id "n01440764 " is
 * dropped) or else from the model's "neuromask.labels" ('\n' or '|'
 * separated). No labels at all is fine (n = 0). A count other than
 * `n_classes` is an error. Returns CLI_OK or prints and returns CLI_FAIL. */
int cli_labels_load(const char *path, const nm_model *m, const char *model_path, int n_classes,
                    cli_labels *labels);
void cli_labels_free(cli_labels *labels);
/* Matches --class-names FILE; --labels (the ground-truth CSV of eval, class
 * names in neuromask 0.1) is refused with a hint. */
int cli_class_names_option(cli_parser *p, const char **path);
#define CLI_CLASS_NAMES_HELP \
    "  --class-names FILE class names, one per line (a leading WordNet id is dropped);\n" \
    "                     default: the model's metadata (neuromask annotate)\n"
/* The label of class i, or NULL. */
const char *cli_label(const cli_labels *labels, int i);

/* Splits one CSV record (RFC 4180: "..." fields may hold commas and doubled
 * quotes; the line ending is dropped) in place into at most cap fields.
 * Returns the number of fields, or -1 for a broken quote (unterminated, or
 * text after the closing quote). */
int cli_split_csv(char *line, char **fields, int cap);

/* Create a folder and its missing parents (mkdir -p). Returns CLI_OK or
 * prints the error and returns CLI_FAIL. */
int cli_mkdir_p(const char *path);

/* The whole of a text file (at most 256 MiB), NUL-terminated; NULL with
 * errno set when it cannot be read. Free it. */
char *cli_read_text(const char *path);

/* A JSON string literal of s. */
void cli_json_string(FILE *f, const char *s);

#endif
