/* Fuzz target: bytes as a PNG file (nm_image_load_memory tells the format
 * by the magic bytes; the PNG seeds keep the fuzzer on libpng's path). */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_fuzz_image(data, size, "fuzz.png");
    return 0;
}
