/* `neuromask eval --resume`: the rows an earlier (interrupted) run left in
 * DIR/results.csv, so that only the missing image / method pairs are
 * computed again. */
#ifndef NM_CLI_EVAL_RESUME_H
#define NM_CLI_EVAL_RESUME_H

#include "eval/report.h"

typedef struct eval_resumed_row {
    char *image, *method;   /* as written: the image path as given, the method's name */
    nm_eval_row row;        /* .image, .method and .overlay are left for the caller */
} eval_resumed_row;

typedef struct eval_resumed {
    eval_resumed_row *rows;
    int n, cap;
} eval_resumed;

/* Reads path (results.csv). A missing file is an empty set. Returns CLI_OK,
 * or prints "path: line N: ..." and returns CLI_FAIL. */
int eval_resumed_load(const char *path, eval_resumed *out);
/* The row for this image and method, or NULL. */
const eval_resumed_row *eval_resumed_find(const eval_resumed *r, const char *image, const char *method);
void eval_resumed_free(eval_resumed *r);

#endif
