#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_names[] = {
    "ok", "io", "parse", "unsupported", "shape", "memory", "limit", "argument", "numeric", "internal", "cancelled",
};

const char *nm_status_name(nm_status s)
{
    if ((unsigned)s < sizeof status_names / sizeof status_names[0]) return status_names[s];
    return "unknown";
}

nm_status nm_fail(nm_error *err, nm_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int nm_mul_size(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return 0;
    *out = r;
    return 1;
}

int nm_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return 0;
    *out = r;
    return 1;
}
