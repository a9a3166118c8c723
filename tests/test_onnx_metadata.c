/* nm_onnx_set_metadata on the bundled model and on broken bytes: entries
 * are set and replaced, the written model loads and reads them back, every
 * truncation and a flipped byte anywhere fail cleanly or give bytes that
 * still walk (no read past the input: run it under ASan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "onnx/onnx_metadata.h"
#include "testutil.h"

static int metadata_is(const uint8_t *bytes, size_t n, const char *key, const char *value)
{
    nm_model *m = NULL;
    nm_error err = {0};
    if (nm_model_load_memory(bytes, n, "annotated", NULL, &m, &err)) return 0;
    const char *v = nm_model_metadata(m, key);
    int ok = v && !strcmp(v, value);
    nm_model_free(m);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    void *model = NULL;
    size_t n = 0;
    nm_error err = {0};
    if (nm_read_file(argv[1], &model, &n, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    const char *keys[2] = {"neuromask.preprocess", "neuromask.class_names"};
    const char *values[2] = {"cifar", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj"};
    uint8_t *once = NULL, *twice = NULL;
    size_t n1 = 0, n2 = 0;
    nm_check(nm_onnx_set_metadata(model, n, "m", keys, values, 2, &once, &n1, &err) == NM_OK, "set: %s", err.msg);
    nm_check(metadata_is(once, n1, keys[0], "cifar") && metadata_is(once, n1, keys[1], values[1]),
             "the annotated model loads and reads both entries back");
    const char *again[1] = {"fashion"};
    nm_check(nm_onnx_set_metadata(once, n1, "m", keys, again, 1, &twice, &n2, &err) == NM_OK, "set again");
    nm_check(metadata_is(twice, n2, keys[0], "fashion") && metadata_is(twice, n2, keys[1], values[1]),
             "a key set again is replaced, the other kept");
    nm_check(n2 == n1 - strlen("cifar") + strlen("fashion"), "replaced, not added (%zu -> %zu bytes)", n1, n2);
    /* Every truncation: an error or a result, never a read past the input. */
    int failed = 0, walked = 0;
    for (size_t cut = 0; cut < n; cut += 1 + cut / 64) {
        uint8_t *copy = malloc(cut ? cut : 1), *out = NULL;
        memcpy(copy, model, cut);
        size_t m = 0;
        nm_status s = nm_onnx_set_metadata(copy, cut, "cut", keys, values, 2, &out, &m, &err);
        if (s) failed += s == NM_ERR_PARSE;
        else walked++;
        free(out);
        free(copy);
    }
    nm_check(failed > 0 && walked > 0, "truncations: %d refused, %d walked (field boundaries)", failed, walked);
    uint8_t *copy = malloc(n);
    for (size_t i = 0; i < n; i += 1 + i / 32) {
        memcpy(copy, model, n);
        copy[i] ^= 0xff;
        uint8_t *out = NULL;
        size_t m = 0;
        if (!nm_onnx_set_metadata(copy, n, "flip", keys, values, 2, &out, &m, &err)) free(out);
    }
    free(copy);
    free(once);
    free(twice);
    free(model);
    return nm_test_summary();
}
