/* .npy 1.0: magic "\x93NUMPY", version 1 0, a little-endian uint16 header
 * length, then an ASCII Python dict literal padded with spaces and ending in
 * '\n' so that magic + length + header is a multiple of 64 bytes. */
#include "image/npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"

#define NPY_ALIGN 64
#define NPY_PREFIX 10   /* magic (6) + version (2) + header length (2) */

/* Header text without padding; returns its length or -1 if it does not fit. */
static int npy_dict(char *buf, size_t cap, int ndim, const int64_t *dims)
{
    char shape[NM_MAX_DIMS * 24 + 4];
    size_t at = 0;
    shape[at++] = '(';
    for (int i = 0; i < ndim; i++)
        at += (size_t)snprintf(shape + at, sizeof shape - at, i ? ", %lld" : "%lld",
                               (long long)dims[i]);
    /* Python writes a 1-tuple as "(n,)". */
    if (ndim == 1) shape[at++] = ',';
    shape[at++] = ')';
    shape[at] = '\0';
    int n = snprintf(buf, cap, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* Host floats as little-endian bytes (a no-op copy on x86). */
static void put_f32_le(unsigned char *out, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int b = 0; b < 4; b++) out[b] = (unsigned char)(u >> (8 * b));
}

static int write_data_le(FILE *f, const float *data, size_t count)
{
    unsigned char chunk[4096];
    size_t per = sizeof chunk / 4;
    for (size_t i = 0; i < count; i += per) {
        size_t k = count - i < per ? count - i : per;
        for (size_t j = 0; j < k; j++) put_f32_le(chunk + 4 * j, data[i + j]);
        if (fwrite(chunk, 4, k, f) != k) return 0;
    }
    return 1;
}

nm_status nm_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *dims,
                           nm_error *err)
{
    if (!path) return nm_fail(err, NM_ERR_ARG, "nm_npy_write_f32: no path");
    if (ndim < 0 || ndim > NM_MAX_DIMS || (ndim > 0 && !dims))
        return nm_fail(err, NM_ERR_ARG, "%s: .npy of %d dimensions", path, ndim);
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || !nm_mul_i64(count, dims[i], &count) || count > INT64_MAX / 4)
            return nm_fail(err, NM_ERR_ARG, "%s: bad .npy shape", path);
    }
    if (count > 0 && !data) return nm_fail(err, NM_ERR_ARG, "%s: no data", path);

    char header[NM_MAX_DIMS * 24 + 128 + NPY_ALIGN];
    int len = npy_dict(header, sizeof header - NPY_ALIGN, ndim, dims);
    if (len < 0) return nm_fail(err, NM_ERR_INTERNAL, "%s: .npy header too long", path);
    /* Pad with spaces; the final byte is '\n'. */
    size_t total = ((size_t)NPY_PREFIX + (size_t)len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t hlen = total - NPY_PREFIX;
    memset(header + len, ' ', hlen - (size_t)len - 1);
    header[hlen - 1] = '\n';

    unsigned char prefix[NPY_PREFIX] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                         (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8) };
    char tmp[4096];
    FILE *f = nm_atomic_open(path, tmp, sizeof tmp, err);
    if (!f) return err ? err->code : NM_ERR_IO;
    if (fwrite(prefix, 1, NPY_PREFIX, f) != NPY_PREFIX || fwrite(header, 1, hlen, f) != hlen ||
        !write_data_le(f, data, (size_t)count)) {
        nm_status st = nm_fail(err, NM_ERR_IO, "%s: write error: %s", path, strerror(errno));
        nm_atomic_abort(f, tmp);
        return st;
    }
    return nm_atomic_commit(f, tmp, path, err);
}
