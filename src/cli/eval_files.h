/* The files with which `neuromask merge` puts shards of `neuromask eval`
 * back together, besides results.csv (eval_resume.h reads that):
 *
 *   run.txt     the run's header, "key=value" lines in a fixed order: the
 *               model's path and SHA-256, the whole input list's size and
 *               SHA-256, the methods ("method", one line each), the options
 *               that shape the rows (the command line's, "argument" lines),
 *               the class names ("class", or "class_none" for a class
 *               without one), and "shard=K/N" for a shard. Shards of one run
 *               have equal headers but for the shard line.
 *   images.tsv  "index<TAB>label<TAB>pred<TAB>path" for each image of this
 *               run (index in the whole list; pred -1 until it is computed).
 *
 * Values are escaped: a backslash as "\\", a newline as "\n". */
#ifndef NM_CLI_EVAL_FILES_H
#define NM_CLI_EVAL_FILES_H

#include "cli_common.h"

typedef struct eval_header {
    char **keys, **values;
    int n, cap;
} eval_header;

/* Appends key=value (value printf-formatted). Returns CLI_OK or CLI_FAIL. */
int eval_header_add(eval_header *h, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The value of the first line with this key, or NULL. */
const char *eval_header_get(const eval_header *h, const char *key);
/* Writes path atomically. Returns CLI_OK or prints and returns CLI_FAIL. */
int eval_header_write(const eval_header *h, const char *path);
/* Reads path. Returns CLI_OK or prints "path: ..." and returns CLI_FAIL. */
int eval_header_read(const char *path, eval_header *h);
/* The key of the first line, lines with key `ignore` aside, that differs
 * between a and b (or that only one has), with its values in a and b (NULL
 * where that header has no such line); NULL when they agree. */
const char *eval_header_differs(const eval_header *a, const eval_header *b, const char *ignore, const char **va,
                                const char **vb);
void eval_header_free(eval_header *h);

typedef struct eval_image_entry {
    int index, label, pred;
    char *path;
} eval_image_entry;

/* Writes images.tsv atomically. Returns CLI_OK or prints and returns CLI_FAIL. */
int eval_images_write(const char *path, const eval_image_entry *e, int n);
/* Reads images.tsv into *e (n entries). Returns CLI_OK or prints "path: line
 * N: ..." and returns CLI_FAIL. */
int eval_images_read(const char *path, eval_image_entry **e, int *n);
void eval_images_free(eval_image_entry *e, int n);

/* "DIR/NNNN_stem[.suffix].EXT" for image `index` of the whole list, the
 * stem (the image's base name without extension) made URL- and file-safe:
 * eval's pictures and overlays (img/, png) and maps (maps/, npy). NULL when
 * out of memory. */
char *eval_output_name(const char *dir, const char *ext, int index, const char *image, const char *suffix);

/* The SHA-256 of a file's bytes, or of n strings each followed by '\n', as
 * 64 hex digits. Return CLI_OK or print and return CLI_FAIL. */
int eval_sha256_file(const char *path, char hex[65]);
int eval_sha256_list(char *const *s, int n, char hex[65]);

#endif
