/* Reads back the results.csv that nm_eval_write_csv writes (RFC 4180
 * quoting of the image path), one row per image and method. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "eval_resume.h"

/* The columns of NM_EVAL_CSV_HEADER: per protocol deletion, insertion and
 * their difference (not read back: it is the difference). */
enum { COL_IMAGE, COL_METHOD, COL_TARGET, COL_LABEL, COL_CORRECT, COL_PROB, COL_PROTOCOLS,
       COL_ROAD_MORF = COL_PROTOCOLS + 3 * NM_PROTOCOL_COUNT, COL_ROAD_LERF, COL_ROAD_DIFF, COL_ROAD_MORF_TOP1,
       COL_ROAD_LERF_TOP1, COL_KEPT, COL_KEPT_PROB, COL_AREA, COL_ROUGHNESS, COL_SPEARMAN, COL_STABILITY,
       COL_SECONDS, N_COLS };

/* An empty field is NaN; anything but a whole number is an error. */
static int parse_number(const char *s, double *v)
{
    if (!*s) {
        *v = NAN;
        return 1;
    }
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !*end && !errno;
}

static int to_row(char **f, eval_resumed_row *w)
{
    double v[N_COLS];
    for (int c = COL_TARGET; c < N_COLS; c++)
        if (!parse_number(f[c], &v[c])) return 0;
    if (!isfinite(v[COL_TARGET])) return 0;
    w->image = strdup(f[COL_IMAGE]);
    w->method = strdup(f[COL_METHOD]);
    w->row = (nm_eval_row){.target = (int)v[COL_TARGET], .prob = (float)v[COL_PROB],
                           .kept = isfinite(v[COL_KEPT]) ? (int)v[COL_KEPT] : -1,
                           .kept_prob = v[COL_KEPT_PROB], .mask_area = v[COL_AREA],
                           .roughness = v[COL_ROUGHNESS], .spearman = v[COL_SPEARMAN],
                           .stability = v[COL_STABILITY], .seconds = v[COL_SECONDS],
                           .road_morf = v[COL_ROAD_MORF], .road_lerf = v[COL_ROAD_LERF],
                           .road_morf_top1 = v[COL_ROAD_MORF_TOP1], .road_lerf_top1 = v[COL_ROAD_LERF_TOP1]};
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {
        w->row.deletion[p] = v[COL_PROTOCOLS + 3 * p];
        w->row.insertion[p] = v[COL_PROTOCOLS + 3 * p + 1];
    }
    return w->image && w->method;
}

static int add_row(eval_resumed *r, char **f)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        eval_resumed_row *rows = realloc(r->rows, sizeof *rows * (size_t)cap);
        if (!rows) return -1;
        r->rows = rows, r->cap = cap;
    }
    eval_resumed_row *w = &r->rows[r->n];
    memset(w, 0, sizeof *w);
    int ok = to_row(f, w);
    if (!ok) free(w->image), free(w->method);
    else r->n++;
    return ok;
}

int eval_resumed_load(const char *path, eval_resumed *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? CLI_OK : cli_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL, *fields[N_COLS + 1];
    size_t size = 0;
    int rc = CLI_OK, number = 1;
    if (getline(&line, &size, f) < 0 || (line[strcspn(line, "\r\n")] = '\0', strcmp(line, NM_EVAL_CSV_HEADER)))
        rc = strncmp(line ? line : "", "image,method,target_class,", 26)
                 ? cli_error("%s: not the results.csv of neuromask eval (its header differs)", path)
                 : cli_error("%s: written by another version of neuromask eval (its columns differ from this "
                             "version's); rerun without --resume (with --force) to compute it again", path);
    while (rc == CLI_OK && getline(&line, &size, f) >= 0) {
        number++;
        int n = cli_split_csv(line, fields, N_COLS + 1);
        int added = n == N_COLS ? add_row(out, fields) : 0;
        if (added < 0) rc = cli_error("out of memory");
        else if (!added) rc = cli_error("%s: line %d: not a row of %d fields as neuromask eval writes them", path,
                                        number, N_COLS);
    }
    free(line);
    fclose(f);
    if (rc) eval_resumed_free(out);
    return rc;
}

static eval_resumed_row *find_row(const eval_resumed *r, const char *image, const char *method)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->rows[i].image, image) && !strcmp(r->rows[i].method, method)) return &r->rows[i];
    return NULL;
}

/* 2p + half for a CURVE name of curves.csv, or -1. */
static int curve_slot(const char *name)
{
    char buf[32];
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++)
        for (int half = 0; half < 2; half++) {
            nm_eval_curve_name(half, p, buf, sizeof buf);
            if (!strcmp(name, buf)) return 2 * p + half;
        }
    return -1;
}

/* One line of curves.csv: fields image, method, CURVE, then the points. */
static int add_curve(eval_resumed *r, char **f, int n, int points, const char *path, int number)
{
    int slot = curve_slot(f[2]);
    if (n != 3 + points || slot < 0)
        return cli_error("%s: line %d: not a curve of %d points as neuromask eval writes them (another --auc-steps?)",
                         path, number, points);
    eval_resumed_row *w = find_row(r, f[0], f[1]);
    if (!w) return CLI_OK;
    if (!w->curves) w->curves = malloc(sizeof(float) * 2 * NM_PROTOCOL_COUNT * (size_t)points);
    if (!w->curves) return cli_error("out of memory");
    for (int i = 0; i < points; i++) {
        double v;
        if (!parse_number(f[3 + i], &v) || !isfinite(v))
            return cli_error("%s: line %d: point %d is not a number", path, number, i);
        w->curves[(size_t)slot * points + i] = (float)v;
    }
    w->has_curve |= 1u << slot;
    return CLI_OK;
}

int eval_resumed_load_curves(const char *path, int points, eval_resumed *r)
{
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? CLI_OK : cli_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL, **fields = malloc(sizeof *fields * (size_t)(points + 4));
    size_t size = 0;
    int rc = fields ? CLI_OK : cli_error("out of memory"), number = 1;
    if (!rc && (getline(&line, &size, f) < 0 ||
                (line[strcspn(line, "\r\n")] = '\0', strcmp(line, NM_EVAL_CURVES_HEADER))))
        rc = cli_error("%s: not the curves.csv of neuromask eval (its header differs)", path);
    while (rc == CLI_OK && getline(&line, &size, f) >= 0) {
        number++;
        int n = cli_split_csv(line, fields, points + 4);
        rc = n < 3 ? cli_error("%s: line %d: not a curve as neuromask eval writes them", path, number)
                   : add_curve(r, fields, n, points, path, number);
    }
    free(line), free(fields);
    fclose(f);
    return rc;
}

const eval_resumed_row *eval_resumed_find(const eval_resumed *r, const char *image, const char *method)
{
    return find_row(r, image, method);
}

void eval_resumed_free(eval_resumed *r)
{
    for (int i = 0; i < r->n; i++) free(r->rows[i].image), free(r->rows[i].method), free(r->rows[i].curves);
    free(r->rows);
    memset(r, 0, sizeof *r);
}
