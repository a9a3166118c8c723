#include "cli_common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

/* --------------------------------------------------------- interrupts */

volatile sig_atomic_t cli_interrupted = 0;

static void on_interrupt(int sig)
{
    cli_interrupted = sig;
    signal(sig, SIG_DFL);   /* a second signal ends the process */
}

void cli_catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESTART;   /* writes in progress complete instead of failing with EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ----------------------------------------------------------- progress */

void cli_progress_start(cli_progress *p, int quiet)
{
    const char *env = getenv("NEUROMASK_PROGRESS_SECONDS");
    char *end = NULL;
    double every = env ? strtod(env, &end) : CLI_PROGRESS_SECONDS;
    p->on = !quiet;
    p->tty = isatty(2);
    p->every = p->tty ? 0.25 : (end && !*end && every >= 0 ? every : CLI_PROGRESS_SECONDS);
    p->t0 = nm_cpu_now();
    p->last = p->t0;   /* the first line after `every` seconds: short runs stay quiet */
}

void cli_progress_report(cli_progress *p, double fraction, const char *fmt, ...)
{
    double now = nm_cpu_now(), el = now - p->t0;
    if (!p->on || now - p->last < p->every) return;
    p->last = now;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (fraction > 0) fprintf(stderr, "%s%s  elapsed %.0fs  ETA %.0fs%s", p->tty ? "\r" : "", what, el,
                              el / fraction - el, p->tty ? "   " : "\n");
    else fprintf(stderr, "%s%s  elapsed %.0fs%s", p->tty ? "\r" : "", what, el, p->tty ? "   " : "\n");
}

const char *cli_progress_cr(const cli_progress *p)
{
    return p->on && p->tty ? "\r" : "";
}

/* ------------------------------------------------------------- errors */

/* Messages go out as one line: embedded newlines would break the
 * "one line per error" contract that scripts rely on. */
static void print_line(const char *prefix, const char *msg)
{
    fputs(prefix, stderr);
    for (const char *s = msg; *s; s++) fputc(*s == '\n' || *s == '\r' ? ' ' : *s, stderr);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_line("neuromask: ", msg);
    return CLI_FAIL;
}

int cli_fail(const nm_error *err)
{
    return cli_error("%s", err->msg[0] ? err->msg : nm_status_name(err->code));
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char prefix[64], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(prefix, sizeof prefix, "neuromask%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    print_line(prefix, msg);
    return CLI_USAGE;
}

/* ------------------------------------------------------------ options */

cli_parser cli_parser_start(const char *cmd, int argc, char **argv)
{
    cli_parser p = { .cmd = cmd, .argc = argc, .argv = argv, .i = 1 };
    return p;
}

int cli_next(cli_parser *p)
{
    while (!p->status && !p->help && p->i < p->argc) {
        p->arg = p->argv[p->i++];
        p->value = NULL;
        if (p->options_done) return 1;
        if (!strcmp(p->arg, "--")) {
            p->options_done = 1;
            continue;
        }
        if (!strcmp(p->arg, "--help") || !strcmp(p->arg, "-h")) {
            p->help = 1;
            return 0;
        }
        return 1;
    }
    return 0;
}

int cli_positional(const cli_parser *p)
{
    return p->options_done || p->arg[0] != '-' || p->arg[1] == '\0';
}

/* Does the current argument name option `name` ("--name" or "--name=...")? */
static int names(cli_parser *p, const char *name)
{
    size_t n = strlen(name);
    if (cli_positional(p) || strncmp(p->arg, name, n) != 0) return 0;
    if (p->arg[n] == '\0') return 1;
    if (p->arg[n] == '=') {
        p->value = p->arg + n + 1;
        return 1;
    }
    return 0;
}

int cli_flag(cli_parser *p, const char *name)
{
    if (!names(p, name)) return 0;
    if (p->value) p->status = cli_usage_error(p->cmd, "option '%s' takes no value", name);
    return 1;
}

int cli_string(cli_parser *p, const char *name, const char **out)
{
    if (!names(p, name)) return 0;
    if (!p->value) {
        if (p->i >= p->argc) {
            p->status = cli_usage_error(p->cmd, "option '%s' needs a value", name);
            return 1;
        }
        p->value = p->argv[p->i++];
    }
    *out = p->value;
    return 1;
}

int cli_int(cli_parser *p, const char *name, int lo, int hi, int *out)
{
    const char *s = NULL;
    if (!cli_string(p, name, &s)) return 0;
    if (p->status) return 1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        p->status = cli_usage_error(p->cmd, "option '%s' needs an integer in %d..%d (got '%s')", name,
                                    lo, hi, s);
    else
        *out = (int)v;
    return 1;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || fabs(v) > 3.4e38) return 0;
    *out = (float)v;
    return 1;
}

int cli_float(cli_parser *p, const char *name, float *out)
{
    const char *s = NULL;
    if (!cli_string(p, name, &s)) return 0;
    if (!p->status && !parse_float(s, out))
        p->status = cli_usage_error(p->cmd, "option '%s' needs a number (got '%s')", name, s);
    return 1;
}

int cli_float3(cli_parser *p, const char *name, float out[3])
{
    const char *s = NULL;
    if (!cli_string(p, name, &s)) return 0;
    if (p->status) return 1;
    char buf[128];
    int k = 0, ok = strlen(s) < sizeof buf;
    if (ok) {
        strcpy(buf, s);
        for (char *tok = strtok(buf, ","); tok && ok; tok = strtok(NULL, ","))
            ok = k < 3 && parse_float(tok, &out[k++]);
    }
    if (!ok || (k != 1 && k != 3)) {
        p->status = cli_usage_error(p->cmd, "option '%s' needs one number or three separated by "
                                    "commas (got '%s')", name, s);
        return 1;
    }
    if (k == 1) out[1] = out[2] = out[0];
    return 1;
}

int cli_max_memory(cli_parser *p, int64_t *bytes)
{
    int mib = 0;
    if (!cli_int(p, "--max-memory", 1, 1 << 24, &mib)) return 0;
    *bytes = (int64_t)mib << 20;
    return 1;
}

void cli_unknown(cli_parser *p)
{
    if (cli_positional(p)) {
        p->status = cli_usage_error(p->cmd, "unexpected argument '%s' (see --help)", p->arg);
        return;
    }
    const char *eq = strchr(p->arg, '=');
    int n = eq ? (int)(eq - p->arg) : (int)strlen(p->arg);
    p->status = cli_usage_error(p->cmd, "unknown option '%.*s' (see --help)", n, p->arg);
}

/* ------------------------------------------------------- preprocessing */

const char cli_preprocess_help[] =
    "Preprocessing (explicit flags override --preprocess, which overrides the model's\n"
    "\"neuromask.preprocess\" metadata):\n"
    "  --preprocess NAME|SPEC  cifar, torchvision, darknet, inception, fashion, or a spec\n"
    "                          like \"resize=256,crop=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225\"\n"
    "  --central-crop F        first keep the central fraction F of each side\n"
    "  --resize N              resize (bilinear, as PIL) so the short side is N\n"
    "  --crop N                then centre-crop N x N\n"
    "  --size N                final size N x N (must match the model's input)\n"
    "  --scale F, --offset F   pixel values x in [0,1] become x*F + offset\n"
    "  --mean a,b,c --std a,b,c  then (value - mean) / std per channel\n";

int cli_preprocess_option(cli_parser *p, cli_preprocess_flags *f)
{
    int v;
    float x;
    if (cli_string(p, "--preprocess", &f->spec)) {
        nm_preprocess check;
        nm_error err = { 0 };
        /* refuse a bad spec before any model is loaded */
        if (!p->status && nm_preprocess_parse(f->spec, &check, &err) != NM_OK)
            p->status = cli_usage_error(p->cmd, "%s", err.msg);
        return 1;
    }
    if (cli_int(p, "--resize", 1, 65535, &v)) f->resize = v, f->has_resize = 1;
    else if (cli_int(p, "--crop", 1, 65535, &v)) f->crop = v, f->has_crop = 1;
    else if (cli_int(p, "--size", 1, 65535, &v)) f->size = v, f->has_size = 1;
    else if (cli_float(p, "--central-crop", &x)) {
        f->central = x, f->has_central = 1;
        if (!p->status && !(x > 0 && x <= 1))
            p->status = cli_usage_error(p->cmd, "option '--central-crop' needs a fraction in (0,1]");
    } else if (cli_float(p, "--scale", &f->scale)) f->has_scale = 1;
    else if (cli_float(p, "--offset", &f->offset)) f->has_offset = 1;
    else if (cli_float3(p, "--mean", f->mean)) f->has_mean = 1;
    else if (cli_float3(p, "--std", f->std)) {
        f->has_std = 1;
        if (!p->status && (f->std[0] == 0 || f->std[1] == 0 || f->std[2] == 0))
            p->status = cli_usage_error(p->cmd, "option '--std' must not be 0");
    } else return 0;
    return 1;
}

static int any_explicit(const cli_preprocess_flags *f)
{
    return f->has_resize || f->has_crop || f->has_size || f->has_central || f->has_scale ||
           f->has_offset || f->has_mean || f->has_std;
}

int cli_resolve_preprocess(const char *cmd, const cli_preprocess_flags *f, const nm_model *m,
                           const char *model_path, nm_preprocess *out)
{
    nm_error err = { 0 };
    const char *meta = m ? nm_model_metadata(m, CLI_META_PREPROCESS) : NULL;
    if (f->spec) {
        if (nm_preprocess_parse(f->spec, out, &err) != NM_OK)
            return cli_usage_error(cmd, "%s", err.msg);
    } else if (meta) {
        if (nm_preprocess_parse(meta, out, &err) != NM_OK)
            return cli_error("%s: metadata neuromask.preprocess: %s", model_path, err.msg);
    } else if (any_explicit(f)) {
        nm_preprocess_parse("scale=1", out, &err);   /* identity, then the flags */
    } else {
        return cli_usage_error(cmd, "no preprocessing given (use --preprocess NAME)");
    }
    if (f->has_resize) out->resize_short = f->resize;
    if (f->has_crop) out->crop = f->crop;
    if (f->has_size) out->size = f->size;
    if (f->has_central) out->crop_fraction = f->central;
    if (f->has_scale) out->scale = f->scale;
    if (f->has_offset) out->offset = f->offset;
    if (f->has_mean) memcpy(out->mean, f->mean, sizeof out->mean);
    if (f->has_std) memcpy(out->std, f->std, sizeof out->std);
    nm_preprocess model_recipe;
    memset(&model_recipe, 0, sizeof model_recipe);
    if (meta && (f->spec || any_explicit(f)) && nm_preprocess_parse(meta, &model_recipe, &err) == NM_OK &&
        memcmp(&model_recipe, out, sizeof model_recipe) != 0)
        fprintf(stderr, "neuromask %s: warning: the preprocessing given differs from %s's own recipe '%s' "
                        "(metadata " CLI_META_PREPROCESS "); using the one given\n", cmd, model_path, meta);
    return CLI_OK;
}

/* ------------------------------------------------------------- inputs */

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct str_list {
    char **s;
    int n, cap;
} str_list;

static int list_add(str_list *l, char *s)
{
    if (!s) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **more = realloc(l->s, (size_t)cap * sizeof *more);
        if (!more) {
            free(s);
            return 0;
        }
        l->s = more;
        l->cap = cap;
    }
    l->s[l->n++] = s;
    return 1;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *s = malloc(a + slash + b + 1);
    if (!s) return NULL;
    memcpy(s, dir, a);
    if (slash) s[a] = '/';
    memcpy(s + a + slash, name, b + 1);
    return s;
}

/* Does folder `dir` have a subfolder with images (the hint for --recursive)? */
static int subfolder_has_images(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *sub = join_path(dir, e->d_name);
        struct stat st;
        DIR *s = sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode) ? opendir(sub) : NULL;
        struct dirent *f;
        while (s && !found && (f = readdir(s)) != NULL) found = is_image_name(f->d_name);
        if (s) closedir(s);
        free(sub);
    }
    closedir(d);
    return found;
}

/* The images of `dir` (and with `depth` > 0, of its subfolders down to that
 * many levels) appended to l, unsorted. */
static int add_folder(const char *dir, int depth, str_list *l)
{
    DIR *d = opendir(dir);
    if (!d) return cli_error("%s: cannot open directory: %s", dir, strerror(errno));
    int ok = 1, rc = CLI_OK;
    struct dirent *e;
    while (ok && rc == CLI_OK && (e = readdir(d)) != NULL) {
        if (is_image_name(e->d_name)) {
            ok = list_add(l, join_path(dir, e->d_name));
            continue;
        }
        if (!depth || e->d_name[0] == '.') continue;
        char *sub = join_path(dir, e->d_name);
        struct stat st;
        if (!sub) ok = 0;
        else if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) rc = add_folder(sub, depth - 1, l);
        free(sub);
    }
    closedir(d);
    if (!ok) return cli_error("%s: out of memory listing the directory", dir);
    return rc;
}

/* Folders below this depth are refused (a symbolic link loop, most likely). */
#define CLI_MAX_FOLDER_DEPTH 32

static int add_directory(const char *dir, int recursive, str_list *l)
{
    int first = l->n;
    int rc = add_folder(dir, recursive ? CLI_MAX_FOLDER_DEPTH : 0, l);
    if (rc) return rc;
    if (l->n == first) {
        if (!recursive && subfolder_has_images(dir))
            return cli_error("%s: no .png, .jpg or .jpeg images in the directory itself, but in its subfolders "
                             "(use --recursive)", dir);
        return cli_error("%s: no .png, .jpg or .jpeg images in the directory%s", dir, recursive ? " tree" : "");
    }
    qsort(l->s + first, (size_t)(l->n - first), sizeof *l->s, cmp_str);
    return CLI_OK;
}

int cli_collect_images(char **paths, int n, int recursive, char ***list, int **name_at, int *count)
{
    str_list l = { 0 };
    int rc = CLI_OK, *at = NULL, cap = 0;
    for (int i = 0; i < n && rc == CLI_OK; i++) {
        struct stat st;
        int first = l.n, dir = stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode);
        if (dir) rc = add_directory(paths[i], recursive, &l);
        else if (!list_add(&l, strdup(paths[i]))) rc = cli_error("out of memory");
        if (rc || !name_at) continue;
        if (l.n > cap) {
            cap = l.cap;
            int *more = realloc(at, (size_t)cap * sizeof *at);
            if (!more) {
                rc = cli_error("out of memory");
                continue;
            }
            at = more;
        }
        /* below the folder named (join_path added one '/' unless it ended in one),
         * or the file's own name */
        size_t len = strlen(paths[i]);
        for (int k = first; k < l.n; k++) {
            const char *base = strrchr(l.s[k], '/');
            at[k] = dir ? (int)len + (len > 0 && paths[i][len - 1] != '/')
                        : (base ? (int)(base - l.s[k]) + 1 : 0);
        }
    }
    if (rc != CLI_OK) {
        cli_free_list(l.s, l.n);
        free(at);
        return rc;
    }
    *list = l.s;
    *count = l.n;
    if (name_at) *name_at = at;
    return CLI_OK;
}

void cli_free_list(char **list, int count)
{
    for (int i = 0; i < count; i++) free(list[i]);
    free(list);
}

nm_status cli_image_input(const char *path, const nm_preprocess *pre, int c, int h, int w,
                          float *chw, nm_error *err)
{
    nm_image img, geo;
    nm_status st = nm_image_load(path, &img, err);
    if (st != NM_OK) return st;
    st = nm_preprocess_geometry(pre, &img, h, w, &geo, err);
    nm_image_free(&img);
    if (st != NM_OK) {
        /* geometry messages do not know the file */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return nm_fail(err, st, "%s: %s", path, msg);
    }
    nm_preprocess_normalize(pre, &geo, c, chw);
    nm_image_free(&geo);
    return NM_OK;
}

int cli_check_image_model(const nm_model *m, const char *model_path, int *c, int *h, int *w)
{
    nm_shape s = nm_model_input_shape(m);
    if (s.ndim != 4 || (s.dims[1] != 1 && s.dims[1] != 3))
        return cli_error("%s: input '%s' is not an image batch [N,1|3,H,W]", model_path,
                         nm_model_input_name(m));
    *c = (int)s.dims[1];
    *h = (int)s.dims[2];
    *w = (int)s.dims[3];
    return CLI_OK;
}

/* ------------------------------------------------------------- labels */

static int is_wnid(const char *s)
{
    if (s[0] != 'n') return 0;
    for (int i = 1; i <= 8; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return s[9] == ' ' || s[9] == '\t';
}

/* Split `text` in place at any of `seps`; trailing empty entries are dropped. */
static int split_labels(char *text, const char *seps, int strip_wnid, cli_labels *labels)
{
    int cap = 1;
    for (const char *s = text; *s; s++) cap += strchr(seps, *s) != NULL;
    labels->names = malloc((size_t)cap * sizeof *labels->names);
    if (!labels->names) return 0;
    labels->n = 0;
    char *s = text;
    for (;;) {
        size_t len = strcspn(s, seps);
        char *next = s[len] ? s + len + 1 : NULL;
        s[len] = '\0';
        if (len > 0 && s[len - 1] == '\r') s[len - 1] = '\0';
        if (strip_wnid && is_wnid(s)) s += 10;
        labels->names[labels->n++] = s;
        if (!next) break;
        s = next;
    }
    while (labels->n > 0 && labels->names[labels->n - 1][0] == '\0') labels->n--;
    return 1;
}

char *cli_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *more = cap < ((size_t)1 << 28) ? realloc(buf, cap * 2) : NULL;
        if (!more) {
            free(buf);
            buf = NULL;
            errno = ENOMEM;
            break;
        }
        buf = more;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

int cli_labels_load(const char *path, const nm_model *m, const char *model_path, int n_classes,
                    cli_labels *labels)
{
    memset(labels, 0, sizeof *labels);
    const char *key = m && nm_model_metadata(m, CLI_META_CLASS_NAMES) ? CLI_META_CLASS_NAMES : CLI_META_CLASS_NAMES_OLD;
    const char *meta = m ? nm_model_metadata(m, key) : NULL;
    const char *source = path ? path : model_path;
    if (path) {
        labels->text = cli_read_text(path);
        if (!labels->text) return cli_error("%s: cannot read labels: %s", path, strerror(errno));
    } else if (meta) {
        labels->text = strdup(meta);
        if (!labels->text) return cli_error("out of memory");
    } else {
        return CLI_OK;
    }
    int ok = path ? split_labels(labels->text, "\n", 1, labels)
                  : split_labels(labels->text, !strcmp(key, CLI_META_CLASS_NAMES) || strchr(meta, '\n') ? "\n" : "|", 0, labels);
    if (!ok) {
        cli_labels_free(labels);
        return cli_error("out of memory");
    }
    if (labels->n != n_classes) {
        int n = labels->n;
        cli_labels_free(labels);
        return cli_error("%s: %d labels%s%s but the model has %d classes", source, n,
                         path ? "" : " in metadata ", path ? "" : key, n_classes);
    }
    return CLI_OK;
}

void cli_labels_free(cli_labels *labels)
{
    free(labels->names);
    free(labels->text);
    memset(labels, 0, sizeof *labels);
}

int cli_class_names_option(cli_parser *p, const char **path)
{
    if (cli_string(p, "--class-names", path)) return 1;
    const char *ignored;
    if (!cli_string(p, "--labels", &ignored)) return 0;
    if (!p->status)
        p->status = cli_usage_error(p->cmd, "--labels is the ground-truth CSV of eval; class names are "
                                            "--class-names FILE");
    return 1;
}

const char *cli_label(const cli_labels *labels, int i)
{
    return i >= 0 && i < labels->n ? labels->names[i] : NULL;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch == '\r') fputs("\\r", f);
        else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

int cli_split_csv(char *line, char **fields, int cap)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    char *s = line;
    while (n < cap) {
        char *out = s;
        fields[n++] = s;
        if (*s == '"') {
            for (s++;; s++) {
                if (!*s) return -1;
                if (*s == '"' && s[1] != '"') break;
                if (*s == '"') s++;
                *out++ = *s;
            }
            s++;
            if (*s && *s != ',') return -1;
        } else {
            while (*s && *s != ',') *out++ = *s++;
        }
        int more = *s == ',';
        *out = '\0';
        if (!more) break;
        s++;
    }
    return n;
}

int cli_mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return cli_error("%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return cli_error("%s: cannot create: %s", buf, strerror(errno));
        *p = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return cli_error("%s: not a directory", path);
    return CLI_OK;
}
