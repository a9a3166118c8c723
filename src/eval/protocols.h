/* The deletion / insertion protocols of `neuromask eval` (docs/metrics.md):
 * RISE's (delete to black, insert from RISE's blur), and one per fill F
 * (delete to F, insert from F everywhere), so that no single start or
 * finish image decides the score. */
#ifndef NM_EVAL_PROTOCOLS_H
#define NM_EVAL_PROTOCOLS_H

#include <stddef.h>

#include "neuromask.h"

typedef enum nm_protocol {
    NM_PROTOCOL_RISE,       /* deletion to black (or auc->deletion_fill), insertion from the blur */
    NM_PROTOCOL_BLACK,
    NM_PROTOCOL_BLUR,
    NM_PROTOCOL_GREY,
    NM_PROTOCOL_MEAN,       /* the image's own mean colour */
    NM_PROTOCOL_COUNT
} nm_protocol;

/* "rise", "black", "blur", "grey", "mean". */
const char *nm_protocol_name(nm_protocol p);
/* A comma-separated list of names, or "all", as a bit set (bit p). Returns
 * 0 and names the first unknown entry in bad[bad_size] (or "" for an empty
 * list) when the list is not valid. */
unsigned nm_protocols_parse(const char *list, char *bad, size_t bad_size);

/* Deletion and insertion AUC of `map` under every protocol of `set`, into
 * deletion[p] and insertion[p] (NaN for protocols not in the set); each
 * distinct half is computed once (RISE's deletion is the black protocol's,
 * its insertion the blur protocol's). `auc` gives the steps, the batch, the
 * blur, and RISE's deletion fill; its insertion fill is not used. Curves:
 * NULL, or NM_PROTOCOL_COUNT pointers to steps + 1 floats each (the entries
 * of protocols not in the set untouched). */
nm_status nm_eval_protocols(nm_model *m, const nm_preprocess *pp, const float *x, const float *map, int target,
                            const nm_auc_options *auc, unsigned set, double *deletion, double *insertion,
                            float *const *deletion_curves, float *const *insertion_curves, nm_error *err);

#endif
