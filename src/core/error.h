/* Error reporting as values: fill an nm_error and return its code. */
#ifndef NM_CORE_ERROR_H
#define NM_CORE_ERROR_H

#include "neuromask.h"

/* printf-style; `err` may be NULL. Returns `code` so callers can `return nm_fail(...)`. */
nm_status nm_fail(nm_error *err, nm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checked size arithmetic: return 0 on overflow (result untouched). */
int nm_mul_size(size_t a, size_t b, size_t *out);
int nm_mul_i64(int64_t a, int64_t b, int64_t *out);

#endif
