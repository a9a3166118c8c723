/* Files written under a temporary name in the target's directory and renamed
 * into place at the end, so readers never see a half-written file and a
 * failure leaves no target behind. */
#ifndef NM_CORE_ATOMIC_FILE_H
#define NM_CORE_ATOMIC_FILE_H

#include <stdio.h>

#include "neuromask.h"

/* Create "<dir>/.<base>.tmp.XXXXXX" (mode 0644) and open it for binary
 * writing; its name goes to tmp_path (cap bytes). NULL on failure. */
FILE *nm_atomic_open(const char *path, char *tmp_path, size_t cap, nm_error *err);

/* Flush and close f, then rename tmp_path to path. On any failure the
 * temporary file is removed. f is closed in every case. */
nm_status nm_atomic_commit(FILE *f, const char *tmp_path, const char *path, nm_error *err);

/* Close f (may be NULL) and remove the temporary file. */
void nm_atomic_abort(FILE *f, const char *tmp_path);

/* Whole buffer to path, atomically. */
nm_status nm_write_file_atomic(const char *path, const void *data, size_t n, nm_error *err);

#endif
