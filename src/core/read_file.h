/* A whole file into memory. */
#ifndef NM_CORE_READ_FILE_H
#define NM_CORE_READ_FILE_H

#include <stddef.h>

#include "neuromask.h"

/* *bytes (malloc'ed) and *size: the file's contents. Errors name the path. */
nm_status nm_read_file(const char *path, void **bytes, size_t *size, nm_error *err);

#endif
