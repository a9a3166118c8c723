/* main() for a fuzz target built without libFuzzer: run the target once on
 * every file named on the command line, or on every file of a named
 * directory (names starting with '.' skipped, in byte order). A crash or a
 * sanitizer report fails the run; the target's own results do not. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static FILE *out;   /* the original stderr: a target may silence fd 2 */
static int count;

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(out, "replay: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *more = realloc(buf, cap * 2);
        if (!more) free(buf);
        buf = more;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        fprintf(out, "replay: %s: cannot read\n", path);
        free(buf);
        return 1;
    }
    /* An exact-size copy, so that a read past the end is a heap overflow. */
    unsigned char *data = malloc(n ? n : 1);
    if (!data) {
        free(buf);
        fprintf(out, "replay: %s: out of memory\n", path);
        return 1;
    }
    memcpy(data, buf, n);
    free(buf);
    fprintf(out, "replay: %s (%zu bytes)\n", path, n);
    fflush(out);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    count++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(out, "replay: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **more = realloc(names, cap * sizeof *more);
            if (!more) {
                rc = 1;
                break;
            }
            names = more;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            rc = 1;
            break;
        }
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (!rc && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) rc = replay_file(names[i]);
        free(names[i]);
    }
    free(names);
    if (rc) fprintf(out, "replay: %s: failed\n", dir);
    return rc;
}

int main(int argc, char **argv)
{
    int fd = dup(2);
    out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) out = stderr;
    if (argc < 2) {
        fprintf(out, "Usage: %s FILE_OR_DIR...\nRun the fuzz target once on each file.\n", argv[0]);
        return 2;
    }
    /* Absolute paths first: a target's initialisation may change directory. */
    char **paths = calloc((size_t)argc, sizeof *paths);
    if (!paths) return 1;
    for (int i = 1; i < argc; i++) {
        char *abs = realpath(argv[i], NULL);
        paths[i] = abs ? abs : strdup(argv[i]);
    }
    int n = argc;
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int rc = 0;
    for (int i = 1; i < n && !rc; i++) {
        struct stat st;
        if (!paths[i]) rc = 1;
        else if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) rc = replay_dir(paths[i]);
        else rc = replay_file(paths[i]);
    }
    for (int i = 1; i < n; i++) free(paths[i]);
    free(paths);
    fprintf(out, "replay: %d inputs, %s\n", count, rc ? "FAILED" : "ok");
    return rc;
}
