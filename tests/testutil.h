/* Small helpers shared by the C tests: checks with a summary line, access to
 * ../shared, random fills and a finite-difference gradient check. */
#ifndef NM_TESTUTIL_H
#define NM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "graph/graph.h"

#define NM_TEST_SKIP 77

/* Record one check; prints a line for failures (and for passes when verbose). */
int nm_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "N passed, M failed" and returns the process exit code. */
int nm_test_summary(void);

/* Path under $NEUROMASK_SHARED: exits 77 (skip) when the variable is unset,
 * exits 1 when it is set but `rel` is missing. */
const char *nm_test_shared(const char *rel, char *buf, size_t cap);

/* n raw float32 values from "<dir>/<name>.bin" (dir NULL: name is the
 * path); prints a failure and exits 1 when the file is short or missing. */
float *nm_test_read_floats(const char *dir, const char *name, size_t n);

/* Deterministic uniform floats in [lo, hi). */
void nm_test_rand_fill(float *x, int64_t n, float lo, float hi, uint64_t *state);

/* Prepare g for a gradient check: every float graph input wants gradients. */
nm_status nm_test_prepare(nm_graph *g, nm_error *err);
/* Fill every float graph input with uniform(lo, hi). */
void nm_test_fill_inputs(nm_graph *g, float lo, float hi, uint64_t seed);

/* Central finite differences against nm_graph_backward on a prepared graph,
 * with the graph inputs' current values. Loss = sum_k r_k * out0_k for random
 * r. Checks up to `max_probes` elements of each input. Returns the largest
 * |analytic - numeric| / max(max|numeric|, 1e-6) over all inputs. */
double nm_test_gradcheck(nm_graph *g, float eps, int max_probes, uint64_t seed);

#endif
