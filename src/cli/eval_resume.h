/* `neuromask eval --resume`: the rows an earlier (interrupted) run left in
 * DIR/results.csv, so that only the missing image / method pairs are
 * computed again. */
#ifndef NM_CLI_EVAL_RESUME_H
#define NM_CLI_EVAL_RESUME_H

#include "eval/report.h"

typedef struct eval_resumed_row {
    char *image, *method;   /* as written: the image path as given, the method's name */
    nm_eval_row row;        /* .image, .method, .overlay and the curves are left for the caller */
    float *curves;          /* from curves.csv: per protocol p, deletion at 2p, insertion at 2p + 1, `points`
                               values each; NULL when curves.csv has none of the row */
    unsigned has_curve;     /* bit 2p + half: that curve was read */
} eval_resumed_row;

typedef struct eval_resumed {
    eval_resumed_row *rows;
    int n, cap;
} eval_resumed;

/* Reads path (results.csv). A missing file is an empty set. Returns CLI_OK,
 * or prints "path: line N: ..." and returns CLI_FAIL. */
int eval_resumed_load(const char *path, eval_resumed *out);
/* Reads path (curves.csv, as nm_eval_write_curves writes it) and gives the
 * loaded rows their curves of `points` values each. A missing file, or a
 * line for a row not loaded, leaves rows without curves. Returns CLI_OK, or
 * prints "path: line N: ..." and returns CLI_FAIL. */
int eval_resumed_load_curves(const char *path, int points, eval_resumed *r);
/* The row for this image and method, or NULL. */
const eval_resumed_row *eval_resumed_find(const eval_resumed *r, const char *image, const char *method);
void eval_resumed_free(eval_resumed *r);

#endif
