/* NumPy .npy files (format version 1.0), for masks and heat maps that other
 * tools read with numpy.load. */
#ifndef NM_IMAGE_NPY_H
#define NM_IMAGE_NPY_H

#include <stdint.h>

#include "neuromask.h"

/* Little-endian float32 ('<f4'), C order, shape dims[0..ndim-1] (ndim 0..8).
 * Written atomically (temporary file + rename). */
nm_status nm_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *dims,
                           nm_error *err);

#endif
