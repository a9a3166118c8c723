#include "core/read_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

nm_status nm_read_file(const char *path, void **bytes, size_t *size, nm_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return nm_fail(err, NM_ERR_IO, "%s: is a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f) return nm_fail(err, NM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *more = realloc(buf, cap * 2);
        if (!more) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = more;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory reading the file", path);
    if (bad) {
        free(buf);
        return nm_fail(err, NM_ERR_IO, "%s: read error", path);
    }
    *bytes = buf;
    *size = n;
    return NM_OK;
}
