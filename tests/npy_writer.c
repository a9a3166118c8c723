/* Writes the .npy cases that test_npy.py reads back with numpy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "image/npy.h"

static int write_case(const char *dir, const char *name, int ndim, const int64_t *dims, int64_t n)
{
    char path[4096];
    nm_error err = { 0 };
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) return 1;
    /* Values numpy recomputes: i * 0.25 - 3 + sin(i) (rounded to float). */
    for (int64_t i = 0; i < n; i++) v[i] = (float)(i * 0.25 - 3.0 + sin((double)i));
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    nm_status st = nm_npy_write_f32(path, v, ndim, dims, &err);
    free(v);
    if (st != NM_OK) fprintf(stderr, "%s: %s\n", name, err.msg);
    return st != NM_OK;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: npy_writer DIR\n");
        return 2;
    }
    static const int64_t d1[1] = { 5 }, d3[3] = { 2, 3, 4 }, de[2] = { 0, 4 },
                         dm[4] = { 3, 1, 32, 32 }, d8[8] = { 1, 2, 1, 2, 1, 2, 1, 3 };
    int fails = 0;
    fails += write_case(argv[1], "vector", 1, d1, 5);
    fails += write_case(argv[1], "cube", 3, d3, 24);
    fails += write_case(argv[1], "scalar", 0, NULL, 1);
    fails += write_case(argv[1], "empty", 2, de, 0);
    fails += write_case(argv[1], "masks", 4, dm, 3 * 32 * 32);
    fails += write_case(argv[1], "eight", 8, d8, 24);
    return fails ? 1 : 0;
}
