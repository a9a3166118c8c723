/* neuromask merge: put the shards of one `neuromask eval` run (the
 * OUT/shard-K-of-N folders of a job array) back together into the files one
 * process writes over the whole list. Rows are read with eval --resume's
 * reader and written with eval's report writers, so the result is what a
 * single run writes, the seconds aside. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_common.h"
#include "eval_files.h"
#include "eval_resume.h"
#include "shard.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/report.h"

static const char merge_help[] =
    "Usage: neuromask merge [options] OUT [SHARD_DIR...]\n"
    "Put the shards of one neuromask eval run together: the folders OUT/shard-K-of-N that\n"
    "eval --shard K/N (or a Slurm job-array task) writes. Writes OUT/results.csv,\n"
    "OUT/curves.csv, OUT/summary.md, OUT/index.html, OUT/img/ (copied), OUT/run.txt and\n"
    "OUT/images.tsv, and OUT/maps/ and OUT/sanity_cascade.csv when the shards have them:\n"
    "what one eval process over the whole list writes, the seconds aside.\n"
    "Without SHARD_DIRs: every OUT/shard-K-of-N folder.\n"
    "It refuses, writing nothing, shards whose run.txt differ (another model, methods,\n"
    "options or input list: it names the file and the line) and lists the images that\n"
    "are missing (a shard not given or not finished: rerun that task with eval --resume)\n"
    "or given twice.\n"
    "neuromask explain needs no merge: its shards write their per-image files straight\n"
    "into its --out folder.\n"
    "\n"
    "Options:\n"
    "  --force        overwrite OUT's merged files\n"
    "  --quiet        no summary line\n"
    "  -h, --help     this help\n";

typedef struct shard_in {
    char *dir;
    eval_header header;
    eval_image_entry *images;
    int n_images;
    eval_resumed rows;
    cli_shard shard;            /* from run.txt's "shard" line; a whole run is 0/1 */
} shard_in;

typedef struct merge_run {
    const char *out;
    int force, quiet;
    char **dirs;
    int n_dirs;
    shard_in *shards;
    int total, n_methods, n_classes;
    const char **methods;       /* point into shards[0].header */
    const char **class_names;   /* NULL when the run had none */
    const eval_image_entry **image;     /* [total]: the entry, NULL when missing */
    int *image_shard;                   /* [total] */
    const eval_resumed_row **cell;      /* [total * n_methods] */
    int n_duplicates;
    char *duplicates;           /* the images given twice, listed */
} merge_run;

/* ----------------------------------------------------------- arguments */

static int parse_args(int argc, char **argv, merge_run *m)
{
    cli_parser p = cli_parser_start("merge", argc, argv);
    m->dirs = calloc((size_t)argc + 1, sizeof *m->dirs);
    if (!m->dirs) return cli_error("out of memory");
    while (cli_next(&p)) {
        if (cli_positional(&p)) {
            if (!m->out) m->out = p.arg;
            else m->dirs[m->n_dirs++] = strdup(p.arg);
        } else if (cli_flag(&p, "--force")) m->force = 1;
        else if (cli_flag(&p, "--quiet")) m->quiet = 1;
        else cli_unknown(&p);
    }
    if (p.help) {
        fputs(merge_help, stdout);
        return -1;
    }
    if (p.status) return p.status;
    for (int i = 0; i < m->n_dirs; i++)
        if (!m->dirs[i]) return cli_error("out of memory");
    if (!m->out) return cli_usage_error("merge", "OUT is required (see --help)");
    return CLI_OK;
}

/* No SHARD_DIRs: OUT's shard-K-of-N folders. */
static int find_shard_dirs(merge_run *m)
{
    DIR *d = opendir(m->out);
    if (!d) return cli_error("%s: cannot open directory: %s", m->out, strerror(errno));
    int cap = 0, rc = CLI_OK;
    struct dirent *e;
    while (rc == CLI_OK && (e = readdir(d)) != NULL) {
        int k, n, end = 0;
        if (sscanf(e->d_name, "shard-%d-of-%d%n", &k, &n, &end) != 2 || e->d_name[end]) continue;
        if (m->n_dirs == cap) {
            cap = cap ? 2 * cap : 16;
            char **more = realloc(m->dirs, sizeof *more * (size_t)cap);
            if (!more) rc = cli_error("out of memory");
            else m->dirs = more;
        }
        if (!rc && asprintf(&m->dirs[m->n_dirs], "%s/%s", m->out, e->d_name) < 0) rc = cli_error("out of memory");
        else if (!rc) m->n_dirs++;
    }
    closedir(d);
    if (rc) return rc;
    if (!m->n_dirs)
        return cli_error("%s: no shard-K-of-N folders to merge (neuromask eval's shards write them; explain's "
                         "shards write their files into the folder itself and need no merge)", m->out);
    return CLI_OK;
}

/* -------------------------------------------------------------- shards */

static int load_shard(const char *dir, shard_in *s)
{
    char path[4096];
    struct stat st;
    s->dir = (char *)dir;
    snprintf(path, sizeof path, "%s/run.txt", dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return cli_error("%s: not a folder", dir);
    if (stat(path, &st) != 0) return cli_error("%s: missing (not an output folder of neuromask eval)", path);
    int rc = eval_header_read(path, &s->header);
    if (rc) return rc;
    const char *shard = eval_header_get(&s->header, "shard");
    int end = 0;
    s->shard = (cli_shard){0, 1};
    if (shard && (sscanf(shard, "%d/%d%n", &s->shard.k, &s->shard.n, &end) != 2 || shard[end] || s->shard.n < 1 ||
                  s->shard.k < 0 || s->shard.k >= s->shard.n))
        return cli_error("%s: 'shard=%s' is not K/N", path, shard);
    snprintf(path, sizeof path, "%s/images.tsv", dir);
    rc = eval_images_read(path, &s->images, &s->n_images);
    snprintf(path, sizeof path, "%s/results.csv", dir);
    if (!rc && stat(path, &st) != 0) rc = cli_error("%s: missing (the shard has not started?)", path);
    if (!rc) rc = eval_resumed_load(path, &s->rows);
    const char *steps = eval_header_get(&s->header, "auc_steps");
    snprintf(path, sizeof path, "%s/curves.csv", dir);
    if (!rc && steps) rc = eval_resumed_load_curves(path, atoi(steps) + 1, &s->rows);
    return rc;
}

static int by_shard(const void *a, const void *b)
{
    int ka = ((const shard_in *)a)->shard.k, kb = ((const shard_in *)b)->shard.k;
    return (ka > kb) - (ka < kb);
}

static int header_int(const shard_in *s, const char *key, int lo, int *out)
{
    const char *v = eval_header_get(&s->header, key);
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || x < lo || x > (1 << 30))
        return cli_error("%s/run.txt: no whole number '%s'", s->dir, key);
    *out = (int)x;
    return CLI_OK;
}

/* Every shard's run.txt equals the first's but for the shard; the same N.
 * Then the shards in the order of the list. */
static int check_headers(merge_run *m)
{
    qsort(m->shards, (size_t)m->n_dirs, sizeof *m->shards, by_shard);
    const shard_in *a = &m->shards[0];
    for (int i = 1; i < m->n_dirs; i++) {
        const shard_in *b = &m->shards[i];
        const char *va, *vb, *key = eval_header_differs(&a->header, &b->header, "shard", &va, &vb);
        if (key)
            return cli_error("%s/run.txt: '%s' is %s%s%s, but %s/run.txt has %s%s%s: not shards of one run", b->dir,
                             key, vb ? "'" : "", vb ? vb : "absent", vb ? "'" : "", a->dir, va ? "'" : "",
                             va ? va : "none", va ? "'" : "");
        if (b->shard.n != a->shard.n)
            return cli_error("%s/run.txt: shard %d of %d, but %s/run.txt is shard %d of %d", b->dir, b->shard.k,
                             b->shard.n, a->dir, a->shard.k, a->shard.n);
    }
    int rc = header_int(a, "images", 0, &m->total);
    if (!rc && m->total > (1 << 26)) rc = cli_error("%s/run.txt: %d images: more than merge handles", a->dir, m->total);
    if (!rc) rc = header_int(a, "classes", 1, &m->n_classes);
    if (rc) return rc;
    const eval_header *h = &a->header;
    m->methods = calloc((size_t)h->n + 1, sizeof *m->methods);
    m->class_names = calloc((size_t)h->n + 1, sizeof *m->class_names);
    if (!m->methods || !m->class_names) return cli_error("out of memory");
    int n_names = 0;
    for (int i = 0; i < h->n; i++) {
        if (!strcmp(h->keys[i], "method")) m->methods[m->n_methods++] = h->values[i];
        else if (!strcmp(h->keys[i], "class")) m->class_names[n_names++] = h->values[i];
        else if (!strcmp(h->keys[i], "class_none")) m->class_names[n_names++] = NULL;
    }
    if (!m->n_methods || m->n_methods > NM_METHOD_COUNT)
        return cli_error("%s/run.txt: %d 'method' lines (1 to %d)", a->dir, m->n_methods, NM_METHOD_COUNT);
    if (n_names && n_names != m->n_classes)
        return cli_error("%s/run.txt: %d class names for %d classes", a->dir, n_names, m->n_classes);
    if (!n_names) free(m->class_names), m->class_names = NULL;
    return CLI_OK;
}

/* A name list for messages: "a, b, c and 4 more". */
static void list_add(char **list, int *count, const char *name)
{
    char *more = NULL;
    if (*count < 10 && asprintf(&more, "%s%s%s", *list ? *list : "", *list ? ", " : "", name) >= 0)
        free(*list), *list = more;
    (*count)++;
}

/* Each image of each shard's images.tsv into its slot of the whole list. */
static int place_images(merge_run *m)
{
    m->image = calloc((size_t)m->total + 1, sizeof *m->image);
    m->image_shard = calloc((size_t)m->total + 1, sizeof *m->image_shard);
    m->cell = calloc((size_t)m->total * m->n_methods + 1, sizeof *m->cell);
    if (!m->image || !m->image_shard || !m->cell) return cli_error("out of memory");
    for (int i = 0; i < m->n_dirs; i++) {
        const shard_in *s = &m->shards[i];
        int first, count;
        cli_shard_range(&s->shard, m->total, 1, &first, &count);
        for (int j = 0; j < s->n_images; j++) {
            const eval_image_entry *e = &s->images[j];
            if (e->index != first + j || j >= count)
                return cli_error("%s/images.tsv: line %d holds image %d, but shard %d of %d of %d images holds "
                                 "%d to %d", s->dir, j + 2, e->index, s->shard.k, s->shard.n, m->total, first,
                                 first + count - 1);
            if (m->image[e->index]) {
                list_add(&m->duplicates, &m->n_duplicates, e->path);
                continue;
            }
            m->image[e->index] = e;
            m->image_shard[e->index] = i;
        }
    }
    return CLI_OK;
}

/* Each row of each shard's results.csv into its cell (image, method). */
static int place_rows(merge_run *m)
{
    for (int i = 0; i < m->n_dirs; i++) {
        const shard_in *s = &m->shards[i];
        int cursor = 0;   /* rows come in the order of the images (a path may be listed twice) */
        for (int r = 0; r < s->rows.n; r++) {
            const eval_resumed_row *w = &s->rows.rows[r];
            int j = -1, method = -1;
            for (int t = 0; t < s->n_images && j < 0; t++) {
                int at = (cursor + t) % s->n_images;
                if (!strcmp(s->images[at].path, w->image)) j = at;
            }
            for (int k = 0; k < m->n_methods && method < 0; k++)
                if (!strcmp(m->methods[k], w->method)) method = k;
            if (j < 0 || method < 0)
                return cli_error("%s/results.csv: row %d (%s, %s) is not an image and method of %s/images.tsv and "
                                 "run.txt", s->dir, r + 2, w->image, w->method, s->dir);
            cursor = j;
            int index = s->images[j].index;
            if (m->image_shard[index] != i) continue;   /* a duplicate image: listed already */
            const eval_resumed_row **c = &m->cell[(size_t)index * m->n_methods + method];
            if (*c) list_add(&m->duplicates, &m->n_duplicates, w->image);
            else *c = w;
        }
    }
    return CLI_OK;
}

/* Lists what is missing or duplicated; CLI_FAIL when anything is. */
static int report_gaps(const merge_run *m)
{
    char *missing = NULL, *shards = NULL;
    int n_missing = 0, n_shards = 0, n = m->shards[0].shard.n;
    for (int k = 0; k < n; k++) {
        int seen = 0;
        for (int i = 0; i < m->n_dirs && !seen; i++) seen = m->shards[i].shard.k == k;
        if (seen) continue;
        cli_shard s = {k, n};
        char name[64 + 64];
        int first, count;
        cli_shard_range(&s, m->total, 1, &first, &count);
        cli_shard_name(&s, name, 64);
        snprintf(name + strlen(name), 64, " (images %d to %d)", first, first + count - 1);
        if (count) list_add(&shards, &n_shards, name);
    }
    for (int i = 0; i < m->total; i++) {
        const eval_image_entry *e = m->image[i];
        int complete = e && e->pred >= 0;
        for (int k = 0; complete && k < m->n_methods; k++) complete = m->cell[(size_t)i * m->n_methods + k] != NULL;
        if (e && !complete) list_add(&missing, &n_missing, e->path);
    }
    if (n_shards)
        cli_error("%s: %d shard%s not given: %s%s", m->out, n_shards, n_shards == 1 ? "" : "s", shards,
                  n_shards > 10 ? " ..." : "");
    if (n_missing)
        cli_error("%s: %d image%s not finished by %s shard: %s%s (rerun its task: eval --resume finishes it)", m->out,
                  n_missing, n_missing == 1 ? "" : "s", n_missing == 1 ? "its" : "their", missing,
                  n_missing > 10 ? " and more" : "");
    if (m->n_duplicates)
        cli_error("%s: %d image%s given twice: %s%s", m->out, m->n_duplicates, m->n_duplicates == 1 ? "" : "s",
                  m->duplicates, m->n_duplicates > 10 ? " and more" : "");
    free(missing), free(shards);
    return n_shards || n_missing || m->n_duplicates ? CLI_FAIL : CLI_OK;
}

/* ------------------------------------------------------------- outputs */

static int flag(const merge_run *m, const char *key)
{
    const char *v = eval_header_get(&m->shards[0].header, key);
    return v && !strcmp(v, "1");
}

static int check_outputs(const merge_run *m)
{
    static const char *const files[] = {"results.csv", "summary.md", "index.html", "curves.csv", "sanity_cascade.csv",
                                        "run.txt", "images.tsv"};
    char path[4096];
    struct stat st;
    for (int i = 0; !m->force && i < 7; i++) {
        snprintf(path, sizeof path, "%s/%s", m->out, files[i]);
        if (stat(path, &st) == 0) return cli_error("%s: exists (use --force to overwrite)", path);
    }
    snprintf(path, sizeof path, "%s/img", m->out);
    int rc = cli_mkdir_p(path);
    snprintf(path, sizeof path, "%s/maps", m->out);
    return !rc && flag(m, "save_maps") ? cli_mkdir_p(path) : rc;
}

static int copy_file(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    if (!f) return cli_error("%s: cannot open: %s", from, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    int rc = CLI_OK;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *more = realloc(buf, cap);
            if (!more) {
                rc = cli_error("out of memory");
                break;
            }
            buf = more;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got);
    if (!rc && ferror(f)) rc = cli_error("%s: cannot read: %s", from, strerror(errno));
    fclose(f);
    nm_error err = {0};
    if (!rc && nm_write_file_atomic(to, buf, len, &err)) rc = cli_fail(&err);
    free(buf);
    return rc;
}

/* A picture, overlay or map of the shard's img/ or maps/ into OUT's. */
static int copy_output(const merge_run *m, int shard, const char *name)
{
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", m->shards[shard].dir, name);
    snprintf(to, sizeof to, "%s/%s", m->out, name);
    return copy_file(from, to);
}

/* curves.csv / sanity_cascade.csv: the shards' lines in the order of the list. */
static int concatenate(const merge_run *m, const char *name)
{
    char path[4096], tmp[4096];
    nm_error err = {0};
    snprintf(path, sizeof path, "%s/%s", m->out, name);
    FILE *out = nm_atomic_open(path, tmp, sizeof tmp, &err);
    if (!out) return cli_fail(&err);
    char *line = NULL;
    size_t size = 0;
    int rc = CLI_OK;
    for (int i = 0; rc == CLI_OK && i < m->n_dirs; i++) {
        snprintf(path, sizeof path, "%s/%s", m->shards[i].dir, name);
        FILE *f = fopen(path, "r");
        if (!f) {
            rc = cli_error("%s: cannot open: %s", path, strerror(errno));
            break;
        }
        for (int number = 0; getline(&line, &size, f) >= 0; number++)
            if (number > 0 || i == 0) fputs(line, out);
        fclose(f);
    }
    free(line);
    snprintf(path, sizeof path, "%s/%s", m->out, name);
    if (rc) nm_atomic_abort(out, tmp);
    else if (nm_atomic_commit(out, tmp, path, &err)) rc = cli_fail(&err);
    return rc;
}

static int write_merged(merge_run *m)
{
    int total = m->total, rc = check_outputs(m);
    nm_eval_image *images = calloc((size_t)total + 1, sizeof *images);
    nm_eval_row *rows = calloc((size_t)total * m->n_methods + 1, sizeof *rows);
    eval_image_entry *entries = calloc((size_t)total + 1, sizeof *entries);
    char **names = calloc((size_t)total * (m->n_methods + 1) + 1, sizeof *names);
    if (!rc && (!images || !rows || !entries || !names)) rc = cli_error("out of memory");
    const char *auc_steps = eval_header_get(&m->shards[0].header, "auc_steps");
    size_t points = auc_steps ? (size_t)atoi(auc_steps) + 1 : 1;
    int n_rows = 0;
    for (int i = 0; !rc && i < total; i++) {
        const eval_image_entry *e = m->image[i];
        char **name = &names[(size_t)i * (m->n_methods + 1)];
        name[0] = eval_output_name("img", "png", i, e->path, NULL);
        if (!name[0]) rc = cli_error("out of memory");
        if (!rc) rc = copy_output(m, m->image_shard[i], name[0]);
        images[i] = (nm_eval_image){.path = e->path, .picture = name[0], .label = e->label, .pred = e->pred};
        entries[i] = *e;
        for (int k = 0; !rc && k < m->n_methods; k++) {
            name[k + 1] = eval_output_name("img", "png", i, e->path, m->methods[k]);
            if (!name[k + 1]) rc = cli_error("out of memory");
            if (!rc) rc = copy_output(m, m->image_shard[i], name[k + 1]);
            char *map = !rc && flag(m, "save_maps") ? eval_output_name("maps", "npy", i, e->path, m->methods[k]) : NULL;
            if (map) rc = copy_output(m, m->image_shard[i], map);
            free(map);
            nm_eval_row *w = &rows[n_rows++];
            const eval_resumed_row *old = m->cell[(size_t)i * m->n_methods + k];
            *w = old->row;
            w->image = i, w->method = k, w->overlay = name[k + 1];
            for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {   /* the curves the shard's curves.csv has */
                const float *c = old->curves ? old->curves + (size_t)2 * p * points : NULL;
                w->deletion_curve[p] = old->has_curve >> (2 * p) & 1 ? c : NULL;
                w->insertion_curve[p] = old->has_curve >> (2 * p + 1) & 1 ? c + points : NULL;
            }
        }
    }
    if (!rc && flag(m, "cascade")) rc = concatenate(m, "sanity_cascade.csv");
    const eval_header *h = &m->shards[0].header;
    const char *fill = eval_header_get(h, "deletion_fill"), *steps = eval_header_get(h, "auc_steps");
    const char *protocols = eval_header_get(h, "protocols");
    nm_eval_report rep = {.model = eval_header_get(h, "model"), .steps = steps ? atoi(steps) : 0,
                          .deletion_fill = fill ? fill : "", .sanity = flag(m, "sanity"),
                          .protocols = protocols ? (unsigned)strtoul(protocols, NULL, 10) : 0,
                          .stability = flag(m, "stability"), .road = flag(m, "road"),
                          .has_labels = flag(m, "has_labels"),
                          .n_methods = m->n_methods, .methods = m->methods, .n_images = total, .images = images,
                          .n_rows = n_rows, .rows = rows, .class_names = m->class_names, .n_classes = m->n_classes};
    char path[4096];
    nm_error err = {0};
    snprintf(path, sizeof path, "%s/results.csv", m->out);
    if (!rc && nm_eval_write_csv(&rep, path, &err)) rc = cli_fail(&err);
    snprintf(path, sizeof path, "%s/curves.csv", m->out);
    if (!rc && nm_eval_write_curves(&rep, path, &err)) rc = cli_fail(&err);
    snprintf(path, sizeof path, "%s/summary.md", m->out);
    if (!rc && nm_eval_write_summary(&rep, path, &err)) rc = cli_fail(&err);
    snprintf(path, sizeof path, "%s/index.html", m->out);
    if (!rc && nm_eval_write_html(&rep, path, &err)) rc = cli_fail(&err);
    eval_header whole = {0};   /* the header of the whole run: the shard line dropped */
    for (int i = 0; !rc && i < h->n; i++)
        if (strcmp(h->keys[i], "shard")) rc = eval_header_add(&whole, h->keys[i], "%s", h->values[i]);
    snprintf(path, sizeof path, "%s/run.txt", m->out);
    if (!rc) rc = eval_header_write(&whole, path);
    snprintf(path, sizeof path, "%s/images.tsv", m->out);
    if (!rc) rc = eval_images_write(path, entries, total);
    eval_header_free(&whole);
    for (size_t i = 0; names && i < (size_t)total * (m->n_methods + 1); i++) free(names[i]);
    free(names), free(images), free(rows), free(entries);
    if (!rc && !m->quiet)
        fprintf(stderr, "merged %d shard folder%s: %d images, %d rows into %s/results.csv, summary.md, index.html\n",
                m->n_dirs, m->n_dirs == 1 ? "" : "s", total, n_rows, m->out);
    return rc;
}

static void merge_free(merge_run *m)
{
    for (int i = 0; m->shards && i < m->n_dirs; i++) {
        eval_header_free(&m->shards[i].header);
        eval_images_free(m->shards[i].images, m->shards[i].n_images);
        eval_resumed_free(&m->shards[i].rows);
    }
    for (int i = 0; m->dirs && i < m->n_dirs; i++) free(m->dirs[i]);
    free(m->dirs), free(m->shards), free(m->methods), free(m->class_names);
    free(m->image), free(m->image_shard), free(m->cell), free(m->duplicates);
}

int cmd_merge(int argc, char **argv)
{
    merge_run m = {0};
    int rc = parse_args(argc, argv, &m);
    if (rc == CLI_OK && !m.n_dirs) rc = find_shard_dirs(&m);
    if (rc == CLI_OK && !(m.shards = calloc((size_t)m.n_dirs, sizeof *m.shards))) rc = cli_error("out of memory");
    for (int i = 0; rc == CLI_OK && i < m.n_dirs; i++) rc = load_shard(m.dirs[i], &m.shards[i]);
    if (rc == CLI_OK) rc = check_headers(&m);
    if (rc == CLI_OK) rc = place_images(&m);
    if (rc == CLI_OK) rc = place_rows(&m);
    if (rc == CLI_OK) rc = report_gaps(&m);
    if (rc == CLI_OK) rc = write_merged(&m);
    merge_free(&m);
    return rc < 0 ? CLI_OK : rc;
}
