/* Fuzz target: bytes as a JPEG file (nm_image_load_memory tells the format
 * by the magic bytes; the JPEG seeds keep the fuzzer on libjpeg's path). */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_fuzz_image(data, size, "fuzz.jpg");
    return 0;
}
