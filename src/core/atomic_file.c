#include "core/atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

/* "<dir>/.<base>.tmp.XXXXXX": hidden, and in the same directory as the
 * target so that rename() stays on one file system. */
static int temp_name(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    int n = snprintf(out, cap, "%.*s.%s.tmp.XXXXXX", (int)dir_len, path, base);
    return n > 0 && (size_t)n < cap;
}

FILE *nm_atomic_open(const char *path, char *tmp_path, size_t cap, nm_error *err)
{
    if (!path || !*path || !tmp_path || cap == 0) {
        nm_fail(err, NM_ERR_ARG, "nm_atomic_open: no path");
        return NULL;
    }
    tmp_path[0] = '\0';
    const char *slash = strrchr(path, '/');
    if (slash && slash[1] == '\0') {
        nm_fail(err, NM_ERR_ARG, "%s: names a directory, not a file", path);
        return NULL;
    }
    if (!temp_name(path, tmp_path, cap)) {
        tmp_path[0] = '\0';
        nm_fail(err, NM_ERR_ARG, "%s: path too long", path);
        return NULL;
    }
    int fd = mkstemp(tmp_path);
    if (fd < 0) {
        nm_fail(err, NM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        tmp_path[0] = '\0';
        return NULL;
    }
    fchmod(fd, 0644);   /* mkstemp makes 0600; outputs are ordinary files */
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        nm_fail(err, NM_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(tmp_path);
        tmp_path[0] = '\0';
    }
    return f;
}

nm_status nm_atomic_commit(FILE *f, const char *tmp_path, const char *path, nm_error *err)
{
    nm_status st = NM_OK;
    if (!f) return nm_fail(err, NM_ERR_ARG, "%s: nm_atomic_commit without a file", path);
    /* ferror catches an earlier failed fwrite the caller did not check. */
    if (fflush(f) != 0 || ferror(f))
        st = nm_fail(err, NM_ERR_IO, "%s: write error: %s", path, strerror(errno));
    if (fclose(f) != 0 && st == NM_OK)
        st = nm_fail(err, NM_ERR_IO, "%s: write error: %s", path, strerror(errno));
    if (st == NM_OK && rename(tmp_path, path) != 0)
        st = nm_fail(err, NM_ERR_IO, "%s: cannot rename the temporary file: %s", path,
                     strerror(errno));
    if (st != NM_OK) unlink(tmp_path);
    return st;
}

void nm_atomic_abort(FILE *f, const char *tmp_path)
{
    if (f) fclose(f);
    if (tmp_path && *tmp_path) unlink(tmp_path);
}

nm_status nm_write_file_atomic(const char *path, const void *data, size_t n, nm_error *err)
{
    char tmp[4096];
    FILE *f = nm_atomic_open(path, tmp, sizeof tmp, err);
    if (!f) return err ? err->code : NM_ERR_IO;
    if (n && fwrite(data, 1, n, f) != n) {
        nm_status st = nm_fail(err, NM_ERR_IO, "%s: write error: %s", path, strerror(errno));
        nm_atomic_abort(f, tmp);
        return st;
    }
    return nm_atomic_commit(f, tmp, path, err);
}
