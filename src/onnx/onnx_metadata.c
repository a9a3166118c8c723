#include "onnx/onnx_metadata.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };
enum { MODEL_METADATA_PROPS = 14, ENTRY_KEY = 1, ENTRY_VALUE = 2 };

/* A varint at *p (below end); 0 when it is cut short or longer than 10 bytes. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* The next field at *p: its number, wire type and payload [*data, *p). */
static int next_field(const uint8_t **p, const uint8_t *end, uint64_t *field, int *wire, const uint8_t **data)
{
    uint64_t tag, len;
    if (!read_varint(p, end, &tag)) return 0;
    *field = tag >> 3;
    *wire = (int)(tag & 7);
    switch (*wire) {
    case WIRE_VARINT: *data = *p; return read_varint(p, end, &len);
    case WIRE_FIXED64: len = 8; break;
    case WIRE_FIXED32: len = 4; break;
    case WIRE_BYTES:
        if (!read_varint(p, end, &len)) return 0;
        break;
    default: return 0;   /* groups (3, 4) are not in ONNX; 6 and 7 do not exist */
    }
    if (len > (uint64_t)(end - *p)) return 0;
    *data = *p;
    *p += len;
    return 1;
}

/* The key of a StringStringEntryProto payload, or NULL/0 when it has none. */
static int entry_key(const uint8_t *p, const uint8_t *end, const uint8_t **key, size_t *len)
{
    *key = NULL;
    *len = 0;
    while (p < end) {
        uint64_t field;
        int wire;
        const uint8_t *data;
        if (!next_field(&p, end, &field, &wire, &data)) return 0;
        if (field == ENTRY_KEY && wire == WIRE_BYTES) *key = data, *len = (size_t)(p - data);
    }
    return 1;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    for (; v >= 0x80; v >>= 7) *o++ = (uint8_t)(v | 0x80);
    *o++ = (uint8_t)v;
    return o;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7) n++;
    return n;
}

static uint8_t *put_bytes(uint8_t *o, int field, const void *s, size_t n)
{
    o = put_varint(o, (uint64_t)field << 3 | WIRE_BYTES);
    o = put_varint(o, n);
    memcpy(o, s, n);
    return o + n;
}

nm_status nm_onnx_set_metadata(const uint8_t *in, size_t n, const char *name, const char *const *keys,
                               const char *const *values, int count, uint8_t **out, size_t *out_n, nm_error *err)
{
    size_t extra = 0;
    for (int i = 0; i < count; i++) {
        size_t k = strlen(keys[i]), v = strlen(values[i]);
        size_t entry = 1 + varint_size(k) + k + 1 + varint_size(v) + v;
        extra += 1 + varint_size(entry) + entry;
    }
    uint8_t *buf = malloc(n + extra + 1), *o = buf;
    if (!buf) return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", name);
    const uint8_t *p = in, *end = in + n;
    while (p < end) {
        const uint8_t *start = p, *data, *key;
        uint64_t field;
        int wire, drop = 0;
        size_t key_len;
        if (!next_field(&p, end, &field, &wire, &data)) {
            free(buf);
            return nm_fail(err, NM_ERR_PARSE, "%s: not an ONNX model (broken field at byte %zu)", name,
                           (size_t)(start - in));
        }
        if (field == MODEL_METADATA_PROPS && wire == WIRE_BYTES) {
            if (!entry_key(data, p, &key, &key_len)) {
                free(buf);
                return nm_fail(err, NM_ERR_PARSE, "%s: broken metadata_props entry at byte %zu", name,
                               (size_t)(start - in));
            }
            for (int i = 0; i < count && !drop; i++)
                drop = key && key_len == strlen(keys[i]) && !memcmp(key, keys[i], key_len);
        }
        if (!drop) {
            memcpy(o, start, (size_t)(p - start));
            o += p - start;
        }
    }
    for (int i = 0; i < count; i++) {
        size_t k = strlen(keys[i]), v = strlen(values[i]);
        o = put_varint(o, (uint64_t)MODEL_METADATA_PROPS << 3 | WIRE_BYTES);
        o = put_varint(o, 1 + varint_size(k) + k + 1 + varint_size(v) + v);
        o = put_bytes(o, ENTRY_KEY, keys[i], k);
        o = put_bytes(o, ENTRY_VALUE, values[i], v);
    }
    *out = buf;
    *out_n = (size_t)(o - buf);
    return NM_OK;
}
