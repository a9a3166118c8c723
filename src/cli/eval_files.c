/* run.txt, images.tsv and picture names of `neuromask eval` (eval_files.h).
 * SHA-256 from OpenSSL's libcrypto: the digest `sha256sum` prints. */
#include "eval_files.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/atomic_file.h"
#include "core/error.h"

/* ------------------------------------------------------------ escaping */

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') fputs("\\\\", f);
        else if (*s == '\n') fputs("\\n", f);
        else if (*s == '\t') fputs("\\t", f);
        else fputc(*s, f);
    }
}

/* In place; 0 for a dangling or unknown escape. */
static int unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s != '\\') {
            *out++ = *s;
            continue;
        }
        s++;
        if (*s == '\\') *out++ = '\\';
        else if (*s == 'n') *out++ = '\n';
        else if (*s == 't') *out++ = '\t';
        else return 0;
    }
    *out = '\0';
    return 1;
}

/* Closes f, an open_memstream onto *buf and *len, and writes what it holds
 * to path atomically. */
static int write_memstream(const char *path, FILE *f, char **buf, size_t *len)
{
    int bad = ferror(f);
    fclose(f);
    nm_error err = {0};
    int rc = bad ? cli_error("%s: out of memory", path) : nm_write_file_atomic(path, *buf, *len, &err) ? cli_fail(&err)
                                                                                                     : CLI_OK;
    free(*buf);
    return rc;
}

/* -------------------------------------------------------------- run.txt */

int eval_header_add(eval_header *h, const char *key, const char *fmt, ...)
{
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        char **k = realloc(h->keys, sizeof *k * (size_t)cap);
        if (k) h->keys = k;
        char **v = realloc(h->values, sizeof *v * (size_t)cap);
        if (v) h->values = v;
        if (!k || !v) return cli_error("out of memory");
        h->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *value = NULL;
    int len = vasprintf(&value, fmt, ap);
    va_end(ap);
    char *k = strdup(key);
    if (len < 0 || !k) {
        free(k);
        if (len >= 0) free(value);
        return cli_error("out of memory");
    }
    h->keys[h->n] = k, h->values[h->n++] = value;
    return CLI_OK;
}

const char *eval_header_get(const eval_header *h, const char *key)
{
    for (int i = 0; i < h->n; i++)
        if (!strcmp(h->keys[i], key)) return h->values[i];
    return NULL;
}

int eval_header_write(const eval_header *h, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cli_error("%s: out of memory", path);
    fputs("# neuromask eval: the run's header (neuromask merge compares the shards' headers)\n", f);
    for (int i = 0; i < h->n; i++) {
        fprintf(f, "%s=", h->keys[i]);
        put_escaped(f, h->values[i]);
        fputc('\n', f);
    }
    return write_memstream(path, f, &buf, &len);
}

int eval_header_read(const char *path, eval_header *h)
{
    memset(h, 0, sizeof *h);
    FILE *f = fopen(path, "r");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t size = 0;
    int rc = CLI_OK;
    for (int number = 1; rc == CLI_OK && getline(&line, &size, f) >= 0; number++) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || !line[0]) continue;
        char *eq = strchr(line, '=');
        if (!eq || eq == line || !unescape(eq + 1)) {
            rc = cli_error("%s: line %d: not a 'key=value' line of neuromask eval's run header", path, number);
            break;
        }
        *eq = '\0';
        rc = eval_header_add(h, line, "%s", eq + 1);
    }
    free(line);
    fclose(f);
    if (rc == CLI_OK && !eval_header_get(h, "format"))
        rc = cli_error("%s: not the run header of neuromask eval (no 'format' line)", path);
    if (rc) eval_header_free(h);
    return rc;
}

const char *eval_header_differs(const eval_header *a, const eval_header *b, const char *ignore, const char **va,
                                const char **vb)
{
    int i = 0, j = 0;
    for (;; i++, j++) {
        while (i < a->n && ignore && !strcmp(a->keys[i], ignore)) i++;
        while (j < b->n && ignore && !strcmp(b->keys[j], ignore)) j++;
        *va = i < a->n ? a->values[i] : NULL;
        *vb = j < b->n ? b->values[j] : NULL;
        if (i == a->n || j == b->n) break;
        if (strcmp(a->keys[i], b->keys[j])) {
            *vb = NULL;   /* b has another line here */
            return a->keys[i];
        }
        if (strcmp(a->values[i], b->values[j])) return a->keys[i];
    }
    return i < a->n ? a->keys[i] : j < b->n ? b->keys[j] : NULL;
}

void eval_header_free(eval_header *h)
{
    for (int i = 0; i < h->n; i++) free(h->keys[i]), free(h->values[i]);
    free(h->keys), free(h->values);
    memset(h, 0, sizeof *h);
}

/* ----------------------------------------------------------- images.tsv */

int eval_images_write(const char *path, const eval_image_entry *e, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cli_error("%s: out of memory", path);
    fputs("index\tlabel\tpred\tpath\n", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%d\t%d\t%d\t", e[i].index, e[i].label, e[i].pred);
        put_escaped(f, e[i].path);
        fputc('\n', f);
    }
    return write_memstream(path, f, &buf, &len);
}

static int parse_int(const char *s, char **end, int *out)
{
    errno = 0;
    long v = strtol(s, end, 10);
    if (*end == s || **end != '\t' || errno || v < -1 || v > (1 << 30)) return 0;
    *out = (int)v;
    (*end)++;
    return 1;
}

int eval_images_read(const char *path, eval_image_entry **e, int *n)
{
    *e = NULL, *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t size = 0;
    int rc = CLI_OK, cap = 0;
    if (getline(&line, &size, f) < 0 || strcmp(line, "index\tlabel\tpred\tpath\n"))
        rc = cli_error("%s: not the images.tsv of neuromask eval (its header differs)", path);
    for (int number = 2; rc == CLI_OK && getline(&line, &size, f) >= 0; number++) {
        line[strcspn(line, "\n")] = '\0';
        eval_image_entry w = {0};
        char *p = line;
        if (!parse_int(p, &p, &w.index) || !parse_int(p, &p, &w.label) || !parse_int(p, &p, &w.pred) ||
            w.index < 0 || !*p || !unescape(p)) {
            rc = cli_error("%s: line %d: not 'index<TAB>label<TAB>pred<TAB>path'", path, number);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            eval_image_entry *more = realloc(*e, sizeof *more * (size_t)cap);
            if (!more) {
                rc = cli_error("out of memory");
                break;
            }
            *e = more;
        }
        w.path = strdup(p);
        if (!w.path) rc = cli_error("out of memory");
        else (*e)[(*n)++] = w;
    }
    free(line);
    fclose(f);
    if (rc) {
        eval_images_free(*e, *n);
        *e = NULL, *n = 0;
    }
    return rc;
}

void eval_images_free(eval_image_entry *e, int n)
{
    for (int i = 0; i < n; i++) free(e[i].path);
    free(e);
}

/* ------------------------------------------------------------- pictures */

char *eval_output_name(const char *dir, const char *ext, int index, const char *image, const char *suffix)
{
    char stem[200];
    const char *slash = strrchr(image, '/'), *b = slash ? slash + 1 : image, *dot = strrchr(b, '.');
    int len = dot && dot != b ? (int)(dot - b) : (int)strlen(b);
    if (len > (int)sizeof stem - 1) len = (int)sizeof stem - 1;
    for (int i = 0; i < len; i++) {
        char ch = b[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        stem[i] = ok ? ch : '_';
    }
    stem[len] = '\0';
    char *out = NULL;
    if (asprintf(&out, "%s/%04d_%s%s%s.%s", dir, index, stem, suffix ? "." : "", suffix ? suffix : "", ext) < 0)
        return NULL;
    return out;
}

/* --------------------------------------------------------------- SHA-256 */

static void to_hex(const unsigned char *d, unsigned n, char hex[65])
{
    for (unsigned i = 0; i < n && i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

int eval_sha256_file(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[1 << 16], digest[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    size_t got;
    while (ok && (got = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, got);
    int bad_read = ferror(f);
    fclose(f);
    ok = ok && !bad_read && EVP_DigestFinal_ex(ctx, digest, &n);
    EVP_MD_CTX_free(ctx);
    if (!ok) return cli_error("%s: cannot read it to its end (SHA-256)", path);
    to_hex(digest, n, hex);
    return CLI_OK;
}

int eval_sha256_list(char *const *s, int n, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (int i = 0; ok && i < n; i++) ok = EVP_DigestUpdate(ctx, s[i], strlen(s[i])) && EVP_DigestUpdate(ctx, "\n", 1);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    if (!ok) return cli_error("out of memory (SHA-256)");
    to_hex(digest, len, hex);
    return CLI_OK;
}
