#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

int64_t nm_shape_numel(const nm_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] < 0 || !nm_mul_i64(n, s->dims[i], &n)) return -1;
    }
    return n;
}

int nm_shape_equal(const nm_shape *a, const nm_shape *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

const char *nm_shape_str(const nm_shape *s, char *buf, int cap)
{
    int k = snprintf(buf, (size_t)cap, "[");
    for (int i = 0; i < s->ndim && k < cap; i++)
        k += snprintf(buf + k, (size_t)(cap - k), i ? ",%lld" : "%lld", (long long)s->dims[i]);
    if (k < cap) snprintf(buf + k, (size_t)(cap - k), "]");
    return buf;
}

int nm_axis(int64_t axis, int rank)
{
    if (axis < 0) axis += rank;
    return (axis < 0 || axis >= rank) ? -1 : (int)axis;
}

/* Blocks without an early exit, so the compiler vectorises the test: the
 * check runs on every forward pass's input. */
nm_status nm_check_finite(const float *v, size_t n, const char *what, nm_error *err)
{
    enum { BLOCK = 1024 };
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t end = n - b < BLOCK ? n : b + BLOCK;
        uint32_t bad = 0;
        for (size_t i = b; i < end; i++) {
            uint32_t u;
            memcpy(&u, &v[i], sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u;   /* exponent all ones: NaN or Inf */
        }
        if (!bad) continue;
        for (size_t i = b; i < end; i++)
            if (!isfinite(v[i]))
                return nm_fail(err, NM_ERR_NUMERIC, "%s has %s at element %zu", what, isnan(v[i]) ? "NaN" : "Inf", i);
    }
    return NM_OK;
}
