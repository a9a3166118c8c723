/* Setting metadata_props entries of a serialized ONNX ModelProto without
 * parsing the rest: the top level is walked field by field (protobuf wire
 * format), entries with the keys being set are dropped and the new entries
 * are appended, so every other byte (fields this project's minimal schema
 * does not know included) is kept as it was. Protobuf merges repeated
 * fields found anywhere at the top level, so appended entries are valid. */
#ifndef NM_ONNX_METADATA_H
#define NM_ONNX_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "neuromask.h"

/* `name` names the source in errors. *out (malloc'ed) receives the model
 * with keys[i] = values[i] for i < count. */
nm_status nm_onnx_set_metadata(const uint8_t *in, size_t n, const char *name, const char *const *keys,
                               const char *const *values, int count, uint8_t **out, size_t *out_n, nm_error *err);

#endif
