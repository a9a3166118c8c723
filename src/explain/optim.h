/* First-order optimisers over plain float arrays, state owned by the caller. */
#ifndef NM_EXPLAIN_OPTIM_H
#define NM_EXPLAIN_OPTIM_H

#include <stdint.h>

#include "neuromask.h"

typedef struct nm_optim {
    nm_optimizer kind;
    float lr;
    int64_t n;
    float *s1;      /* RMSProp mean square / Adam first moment */
    float *s2;      /* Adam second moment */
} nm_optim;

int nm_optim_init(nm_optim *o, nm_optimizer kind, float lr, int64_t n);
void nm_optim_free(nm_optim *o);
/* Update w[i] for i in [from, from+count) with gradient g (same indexing);
 * t is that range's 1-based step number (Adam's bias correction). */
void nm_optim_step(nm_optim *o, float *w, const float *g, int64_t from, int64_t count, int t);

#endif
