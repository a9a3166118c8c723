/* ONNX import: unpack the protobuf with protobuf-c, check it, and build an
 * nm_graph from it. Nothing in the file is trusted before it is checked:
 * element counts use checked multiplication, data lengths must match dims,
 * every node input must name a defined tensor. */
#include "onnx/onnx_import.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

static const char *str_or(const char *s, const char *def) { return (s && *s) ? s : def; }

static const char *onnx_type_name(int32_t t)
{
    static const char *const names[] = {
        "undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "string",
        "bool", "float16", "double", "uint32", "uint64", "complex64", "complex128", "bfloat16",
    };
    return (t >= 0 && t < (int32_t)(sizeof names / sizeof names[0])) ? names[t] : "unknown";
}

/* The nm dtype an ONNX element type converts to; NM_UNDEFINED when none. */
static nm_dtype dtype_from_onnx(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return NM_FLOAT;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return NM_INT64;
    default: return NM_UNDEFINED;
    }
}

/* Bytes per element in raw_data (little-endian), for the convertible types. */
static size_t raw_elem_size(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
    default: return 8;
    }
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

/* One raw element of ONNX type `t` as int64; 0 when a uint64 does not fit. */
static int raw_to_i64(int32_t t, const uint8_t *p, int64_t *v)
{
    uint64_t u = load_le(p, raw_elem_size(t));
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: *v = (int8_t)(uint8_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: *v = (int16_t)(uint16_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *v = (int32_t)(uint32_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *v = (int64_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *v = u != 0; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        if (u > (uint64_t)INT64_MAX) return 0;
        *v = (int64_t)u;
        break;
    default: *v = (int64_t)u; break;   /* uint8, uint16, uint32 */
    }
    return 1;
}

static nm_status convert_raw(const Onnx__TensorProto *tp, int64_t numel, void *dst,
                             const char *source, const char *name, nm_error *err)
{
    int32_t t = tp->data_type;
    const uint8_t *p = tp->raw_data.data;
    size_t es = raw_elem_size(t);
    for (int64_t k = 0; k < numel; k++, p += es) {
        if (t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            uint32_t u = (uint32_t)load_le(p, 4);
            memcpy((float *)dst + k, &u, 4);
        } else if (t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
            uint64_t u = load_le(p, 8);
            double d;
            memcpy(&d, &u, 8);
            ((float *)dst)[k] = (float)d;
        } else if (!raw_to_i64(t, p, (int64_t *)dst + k)) {
            return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: tensor '%s': uint64 value above int64 range",
                           source, name);
        }
    }
    return NM_OK;
}

/* Number of typed (non-raw) values the tensor carries for its type. */
static size_t typed_count(const Onnx__TensorProto *tp)
{
    switch (tp->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return tp->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return tp->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return tp->n_int64_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return tp->n_uint64_data;
    default: return tp->n_int32_data;
    }
}

static nm_status convert_typed(const Onnx__TensorProto *tp, int64_t numel, void *dst,
                               const char *source, const char *name, nm_error *err)
{
    float *f = dst;
    int64_t *i = dst;
    for (int64_t k = 0; k < numel; k++) {
        switch (tp->data_type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: f[k] = tp->float_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: f[k] = (float)tp->double_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: i[k] = tp->int64_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
            if (tp->uint64_data[k] > (uint64_t)INT64_MAX)
                return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: tensor '%s': uint64 value above int64 range",
                               source, name);
            i[k] = (int64_t)tp->uint64_data[k];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: i[k] = tp->int32_data[k] != 0; break;
        default: i[k] = tp->int32_data[k]; break;
        }
    }
    return NM_OK;
}

static nm_status tensor_shape(const Onnx__TensorProto *tp, const char *source, const char *name,
                              nm_shape *shape, int64_t *numel, nm_error *err)
{
    if (tp->n_dims > NM_MAX_DIMS)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: tensor '%s' has rank %zu (at most %d supported)",
                       source, name, tp->n_dims, NM_MAX_DIMS);
    shape->ndim = (int)tp->n_dims;
    int empty = 0;
    for (size_t d = 0; d < tp->n_dims; d++) {
        if (tp->dims[d] < 0)
            return nm_fail(err, NM_ERR_PARSE, "%s: tensor '%s' has negative dimension %lld",
                           source, name, (long long)tp->dims[d]);
        shape->dims[d] = tp->dims[d];
        empty |= tp->dims[d] == 0;
    }
    int64_t n = 1;
    for (size_t d = 0; !empty && d < tp->n_dims; d++)
        if (!nm_mul_i64(n, tp->dims[d], &n))
            return nm_fail(err, NM_ERR_LIMIT, "%s: tensor '%s': element count overflows", source, name);
    *numel = empty ? 0 : n;
    return NM_OK;
}

/* The float payload of an unpacked TensorProto, taken out of it: protobuf-c
 * allocated it with malloc (the default allocator), so it becomes the
 * tensor's data and the weights are never held twice while loading. raw_data
 * is little-endian: taken as is on a little-endian host only. NULL when it
 * cannot be taken. */
static void *take_floats(Onnx__TensorProto *tp, int64_t numel)
{
    if (tp->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || numel < 1) return NULL;
    void *p = NULL;
    if (tp->has_raw_data) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if ((uintptr_t)tp->raw_data.data % sizeof(float)) return NULL;
        p = tp->raw_data.data;
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
#endif
        return p;
    }
    p = tp->float_data;
    tp->float_data = NULL;
    tp->n_float_data = 0;
    return p;
}

/* TensorProto -> dtype, shape, numel, data of `out` (name untouched). The
 * float payload moves out of tp (take_floats). */
static nm_status convert_tensor(Onnx__TensorProto *tp, const char *source, const char *name,
                                nm_tensor *out, nm_error *err)
{
    if ((tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        tp->n_external_data > 0)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: tensor '%s': external data not supported",
                       source, name);
    nm_dtype dt = dtype_from_onnx(tp->data_type);
    if (dt == NM_UNDEFINED)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: tensor '%s' has data type %s (%d), not supported",
                       source, name, onnx_type_name(tp->data_type), (int)tp->data_type);
    nm_shape shape = {0};
    int64_t numel = 0;
    nm_status st = tensor_shape(tp, source, name, &shape, &numel, err);
    if (st) return st;

    if (tp->has_raw_data) {
        int64_t want;
        if (!nm_mul_i64(numel, (int64_t)raw_elem_size(tp->data_type), &want) ||
            (uint64_t)want != tp->raw_data.len)
            return nm_fail(err, NM_ERR_PARSE, "%s: tensor '%s': raw_data has %zu bytes, dims need %lld x %zu",
                           source, name, tp->raw_data.len, (long long)numel, raw_elem_size(tp->data_type));
    } else if ((uint64_t)typed_count(tp) != (uint64_t)numel) {
        return nm_fail(err, NM_ERR_PARSE, "%s: tensor '%s' has %zu values, dims need %lld",
                       source, name, typed_count(tp), (long long)numel);
    }
    /* numel is now bounded by the bytes actually present in the file. */
    size_t bytes, es = dt == NM_FLOAT ? sizeof(float) : sizeof(int64_t);
    if (!nm_mul_size((size_t)numel, es, &bytes))
        return nm_fail(err, NM_ERR_LIMIT, "%s: tensor '%s' too large", source, name);
    void *data = take_floats(tp, numel);
    if (!data) {
        data = malloc(bytes ? bytes : 1);
        if (!data) return nm_fail(err, NM_ERR_MEMORY, "%s: tensor '%s': out of memory", source, name);
        st = tp->has_raw_data ? convert_raw(tp, numel, data, source, name, err)
                              : convert_typed(tp, numel, data, source, name, err);
        if (st) {
            free(data);
            return st;
        }
    }
    free(out->data);
    out->dtype = dt;
    out->shape = shape;
    out->numel = numel;
    out->data = data;
    return NM_OK;
}

nm_status nm_onnx_read_tensor(const void *bytes, size_t size, const char *source,
                              nm_tensor *out, nm_error *err)
{
    source = str_or(source, "tensor");
    memset(out, 0, sizeof *out);
    out->producer = -1;
    if (!bytes && size) return nm_fail(err, NM_ERR_ARG, "%s: no bytes", source);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, bytes);
    if (!tp) return nm_fail(err, NM_ERR_PARSE, "%s: not an ONNX tensor (protobuf parse failed)", source);
    const char *name = str_or(tp->name, "");
    nm_status st = convert_tensor(tp, source, str_or(tp->name, "(unnamed)"), out, err);
    if (!st) {
        out->name = strdup(name);
        if (!out->name) st = nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", source);
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (st) {
        free(out->data);
        free(out->name);
        memset(out, 0, sizeof *out);
        out->producer = -1;
    }
    return st;
}

/* ------------------------------------------------------------ model checks */

static int is_default_domain(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

static nm_status read_opset(const Onnx__ModelProto *mp, const char *source, int *opset, nm_error *err)
{
    int64_t v = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++)
        if (is_default_domain(mp->opset_import[i]->domain)) v = mp->opset_import[i]->version;
    if (v < 0 && mp->n_opset_import == 0) v = 1;   /* IR < 3: no opset_import means opset 1 */
    if (v < NM_ONNX_OPSET_MIN || v > NM_ONNX_OPSET_MAX)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: ai.onnx opset %lld not supported (%d..%d)",
                       source, (long long)v, NM_ONNX_OPSET_MIN, NM_ONNX_OPSET_MAX);
    *opset = (int)v;
    return NM_OK;
}

/* Every node must be an ai.onnx operator neuromask implements. Checked
 * before anything else is converted: it is the most useful message. */
/* A node's name, or "<op_type>_<index>" for an unnamed one. */
static const char *node_name(const Onnx__NodeProto *np, size_t k, char *buf, size_t cap)
{
    if (np->name && *np->name) return np->name;
    snprintf(buf, cap, "%s_%zu", str_or(np->op_type, "node"), k);
    return buf;
}

static nm_status check_operators(const Onnx__GraphProto *gp, const char *source, int opset, nm_error *err)
{
    char buf[128];
    for (size_t k = 0; k < gp->n_node; k++) {
        const Onnx__NodeProto *np = gp->node[k];
        const char *op = str_or(np->op_type, "");
        if (!*op)
            return nm_fail(err, NM_ERR_PARSE, "%s: node '%s' has no op_type", source,
                           node_name(np, k, buf, sizeof buf));
        if (!is_default_domain(np->domain) || nm_op_from_name(op) == NM_OP_COUNT) {
            char full[256];
            if (is_default_domain(np->domain))
                snprintf(full, sizeof full, "%s", op);
            else
                snprintf(full, sizeof full, "%s.%s", np->domain, op);
            return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: unsupported operator '%s' (node '%s', opset %d)",
                           source, full, node_name(np, k, buf, sizeof buf), opset);
        }
    }
    return NM_OK;
}

/* ------------------------------------------------------------ graph parts */

static nm_status oom(const nm_graph *g, nm_error *err)
{
    return nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", g->source);
}

static nm_status add_tensor(nm_graph *g, const char *name, int *idx, nm_error *err)
{
    *idx = nm_graph_tensor(g, name);
    return *idx < 0 ? oom(g, err) : NM_OK;
}

static nm_status add_initializers(nm_graph *g, const Onnx__GraphProto *gp, nm_error *err)
{
    for (size_t k = 0; k < gp->n_initializer; k++) {
        Onnx__TensorProto *tp = gp->initializer[k];
        const char *name = str_or(tp->name, "");
        if (!*name) return nm_fail(err, NM_ERR_PARSE, "%s: initializer %zu has no name", g->source, k);
        if (nm_graph_find_tensor(g, name) >= 0)
            return nm_fail(err, NM_ERR_PARSE, "%s: initializer '%s' defined twice", g->source, name);
        int idx;
        nm_status st = add_tensor(g, name, &idx, err);
        if (st) return st;
        st = convert_tensor(tp, g->source, name, &g->t[idx], err);
        if (st) return st;
        g->t[idx].is_const = 1;
    }
    return NM_OK;
}

/* dtype and shape of a graph input from its ValueInfo. */
static nm_status input_type(nm_graph *g, const Onnx__ValueInfoProto *vi, nm_tensor *t, nm_error *err)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: graph input '%s' is not a tensor", g->source, t->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    t->dtype = dtype_from_onnx(tt->elem_type);
    if (t->dtype == NM_UNDEFINED)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: graph input '%s' has element type %s, not supported",
                       g->source, t->name, onnx_type_name(tt->elem_type));
    if (!tt->shape) {   /* unknown rank */
        t->shape.ndim = 0;
        t->numel = -1;
        return NM_OK;
    }
    if (tt->shape->n_dim > NM_MAX_DIMS)
        return nm_fail(err, NM_ERR_UNSUPPORTED, "%s: graph input '%s' has rank %zu (at most %d supported)",
                       g->source, t->name, tt->shape->n_dim, NM_MAX_DIMS);
    t->shape.ndim = (int)tt->shape->n_dim;
    for (size_t d = 0; d < tt->shape->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        int64_t v = -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (dim->dim_value < 0)
                return nm_fail(err, NM_ERR_PARSE, "%s: graph input '%s' has negative dimension %lld",
                               g->source, t->name, (long long)dim->dim_value);
            v = dim->dim_value;
        }
        t->shape.dims[d] = v;
    }
    t->numel = nm_shape_numel(&t->shape);
    return NM_OK;
}

static nm_status add_inputs(nm_graph *g, const Onnx__GraphProto *gp, nm_error *err)
{
    for (size_t k = 0; k < gp->n_input; k++) {
        const Onnx__ValueInfoProto *vi = gp->input[k];
        const char *name = str_or(vi->name, "");
        if (!*name) return nm_fail(err, NM_ERR_PARSE, "%s: graph input %zu has no name", g->source, k);
        int idx = nm_graph_find_tensor(g, name);
        if (idx >= 0 && g->t[idx].is_const) continue;   /* IR < 4 lists initializers as inputs */
        if (idx >= 0)
            return nm_fail(err, NM_ERR_PARSE, "%s: graph input '%s' listed twice", g->source, name);
        nm_status st = add_tensor(g, name, &idx, err);
        if (st) return st;
        st = input_type(g, vi, &g->t[idx], err);
        if (st) return st;
        if (!nm_graph_add_input(g, idx)) return oom(g, err);
    }
    return NM_OK;   /* a graph without inputs is a constant; the model API refuses it */
}

static nm_attr_type attr_type(const Onnx__AttributeProto *ap)
{
    if (ap->has_type && ap->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
        return (nm_attr_type)ap->type;
    /* IR 1 files carry no type: infer it from the field that is set. */
    if (ap->has_f) return NM_ATTR_FLOAT;
    if (ap->has_i) return NM_ATTR_INT;
    if (ap->has_s) return NM_ATTR_STRING;
    if (ap->t) return NM_ATTR_TENSOR;
    if (ap->n_floats) return NM_ATTR_FLOATS;
    if (ap->n_ints) return NM_ATTR_INTS;
    if (ap->n_strings) return NM_ATTR_STRINGS;
    return (nm_attr_type)0;
}

static void *dup_mem(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n) memcpy(d, p, n);
    return d;
}

static nm_status fill_list_attr(nm_graph *g, const nm_node *n, const Onnx__AttributeProto *ap, nm_attr *a,
                                nm_error *err)
{
    size_t cnt = a->type == NM_ATTR_FLOATS ? ap->n_floats : ap->n_ints;
    if (cnt > INT_MAX / 8)
        return nm_fail(err, NM_ERR_LIMIT, "%s: node '%s': attribute '%s' too long", g->source, n->name,
                       a->name);
    a->n = (int)cnt;
    if (a->type == NM_ATTR_FLOATS)
        a->floats = dup_mem(ap->floats, cnt * sizeof(float));
    else
        a->ints = dup_mem(ap->ints, cnt * sizeof(int64_t));
    return (a->floats || a->ints) ? NM_OK : oom(g, err);
}

static nm_status fill_attr(nm_graph *g, const nm_node *n, const Onnx__AttributeProto *ap, nm_attr *a,
                           nm_error *err)
{
    switch (a->type) {
    case NM_ATTR_FLOAT: a->f = ap->f; return NM_OK;
    case NM_ATTR_INT: a->i = ap->i; return NM_OK;
    case NM_ATTR_STRING:
        a->s = malloc(ap->s.len + 1);
        if (!a->s) return oom(g, err);
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = '\0';
        return NM_OK;
    case NM_ATTR_FLOATS:
    case NM_ATTR_INTS: return fill_list_attr(g, n, ap, a, err);
    case NM_ATTR_TENSOR:
        if (!ap->t)
            return nm_fail(err, NM_ERR_PARSE, "%s: node '%s': tensor attribute '%s' has no tensor", g->source,
                           n->name, a->name);
        a->t = calloc(1, sizeof *a->t);
        if (!a->t) return oom(g, err);
        a->t->producer = -1;
        a->t->is_const = 1;
        a->t->name = strdup(str_or(ap->t->name, a->name));
        if (!a->t->name) return oom(g, err);
        return convert_tensor(ap->t, g->source, a->t->name, a->t, err);
    default: return NM_OK;   /* STRINGS: no operator of ours reads them */
    }
}

static nm_status add_attributes(nm_graph *g, nm_node *n, const Onnx__NodeProto *np, nm_error *err)
{
    for (size_t k = 0; k < np->n_attribute; k++) {
        const Onnx__AttributeProto *ap = np->attribute[k];
        nm_attr_type type = attr_type(ap);
        /* Graph, sparse and type attributes belong to operators we refuse anyway. */
        if (type != NM_ATTR_FLOAT && type != NM_ATTR_INT && type != NM_ATTR_STRING && type != NM_ATTR_TENSOR &&
            type != NM_ATTR_FLOATS && type != NM_ATTR_INTS && type != NM_ATTR_STRINGS)
            continue;
        nm_attr *a = nm_node_add_attr(n, str_or(ap->name, ""), type);
        if (!a) return oom(g, err);
        nm_status st = fill_attr(g, n, ap, a, err);
        if (st) return st;
    }
    return NM_OK;
}

/* Tensor indices for a list of names; "" (an omitted optional) is -1. */
static nm_status name_indices(nm_graph *g, char **names, size_t n, int *idx, nm_error *err)
{
    for (size_t k = 0; k < n; k++) {
        idx[k] = -1;
        if (names[k] && *names[k]) {
            nm_status st = add_tensor(g, names[k], &idx[k], err);
            if (st) return st;
        }
    }
    return NM_OK;
}

/* Mark the node's outputs as produced by it; a tensor has one producer. */
static nm_status claim_outputs(nm_graph *g, int node, nm_error *err)
{
    const nm_node *n = &g->nodes[node];
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        nm_tensor *t = &g->t[n->out[k]];
        if (t->is_const || t->is_input)
            return nm_fail(err, NM_ERR_PARSE, "%s: node '%s' writes %s '%s'", g->source, n->name,
                           t->is_const ? "initializer" : "graph input", t->name);
        if (t->producer >= 0)
            return nm_fail(err, NM_ERR_PARSE, "%s: tensor '%s' is produced by node '%s' and by node '%s'",
                           g->source, t->name, g->nodes[t->producer].name, n->name);
        t->producer = node;
    }
    return NM_OK;
}

static nm_status add_node(nm_graph *g, const Onnx__NodeProto *np, size_t k, nm_error *err)
{
    if (np->n_input > 4096 || np->n_output > 4096)
        return nm_fail(err, NM_ERR_LIMIT, "%s: node %zu has too many inputs or outputs", g->source, k);
    int in[4096], out[4096];
    nm_status st = name_indices(g, np->input, np->n_input, in, err);
    if (!st) st = name_indices(g, np->output, np->n_output, out, err);
    if (st) return st;
    char buf[128];
    int idx = nm_graph_add_node(g, np->op_type, node_name(np, k, buf, sizeof buf), (int)np->n_input, in,
                                (int)np->n_output, out);
    if (idx < 0) return oom(g, err);
    st = add_attributes(g, &g->nodes[idx], np, err);
    if (st) return st;
    return claim_outputs(g, idx, err);
}

static int is_defined(const nm_tensor *t) { return t->is_const || t->is_input || t->producer >= 0; }

static nm_status check_node_inputs(nm_graph *g, nm_error *err)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const nm_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] >= 0 && !is_defined(&g->t[n->in[i]]))
                return nm_fail(err, NM_ERR_PARSE, "%s: node '%s' reads undefined tensor '%s'", g->source,
                               n->name, g->t[n->in[i]].name);
    }
    return NM_OK;
}

static nm_status add_outputs(nm_graph *g, const Onnx__GraphProto *gp, nm_error *err)
{
    if (gp->n_output == 0) return nm_fail(err, NM_ERR_PARSE, "%s: graph has no outputs", g->source);
    for (size_t k = 0; k < gp->n_output; k++) {
        const char *name = str_or(gp->output[k]->name, "");
        int idx = nm_graph_find_tensor(g, name);
        if (idx < 0 || !is_defined(&g->t[idx]))
            return nm_fail(err, NM_ERR_PARSE, "%s: graph output '%s' is not produced by any node", g->source,
                           name);
        if (!nm_graph_add_output(g, idx)) return oom(g, err);
    }
    return NM_OK;
}

static nm_status add_metadata(nm_graph *g, const Onnx__ModelProto *mp, nm_error *err)
{
    for (size_t k = 0; k < mp->n_metadata_props; k++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[k];
        if (!nm_graph_add_meta(g, str_or(e->key, ""), str_or(e->value, "")))
            return oom(g, err);
    }
    return NM_OK;
}

static nm_status build_graph(nm_graph *g, const Onnx__ModelProto *mp, nm_error *err)
{
    const Onnx__GraphProto *gp = mp->graph;
    if (!gp) return nm_fail(err, NM_ERR_PARSE, "%s: not an ONNX model (no graph)", g->source);
    if (gp->n_node == 0) return nm_fail(err, NM_ERR_PARSE, "%s: ONNX graph has no nodes", g->source);
    if (gp->n_node > NM_ONNX_MAX_NODES)
        return nm_fail(err, NM_ERR_LIMIT, "%s: graph has %zu nodes (limit %d)", g->source, gp->n_node,
                       NM_ONNX_MAX_NODES);
    nm_status st = read_opset(mp, g->source, &g->opset, err);
    if (!st) st = check_operators(gp, g->source, g->opset, err);
    if (!st) st = add_metadata(g, mp, err);
    if (!st) st = add_initializers(g, gp, err);
    if (!st) st = add_inputs(g, gp, err);
    for (size_t k = 0; !st && k < gp->n_node; k++) st = add_node(g, gp->node[k], k, err);
    if (!st) st = check_node_inputs(g, err);
    if (!st) st = add_outputs(g, gp, err);
    return st;
}

/* `owned`: the bytes are freed as soon as they are unpacked. */
static nm_status import_model(const void *bytes, size_t size, void *owned, const char *source, nm_graph **out,
                              nm_error *err)
{
    *out = NULL;
    source = str_or(source, "model");
    if (!bytes && size) return nm_fail(err, NM_ERR_ARG, "%s: no bytes", source);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, bytes);
    free(owned);
    if (!mp) return nm_fail(err, NM_ERR_PARSE, "%s: not an ONNX model (protobuf parse failed)", source);
    nm_graph *g = nm_graph_new(source);
    nm_status st = g ? build_graph(g, mp, err) : nm_fail(err, NM_ERR_MEMORY, "%s: out of memory", source);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st) {
        nm_graph_free(g);
        return st;
    }
    *out = g;
    return NM_OK;
}

nm_status nm_onnx_import(const void *bytes, size_t size, const char *source, nm_graph **out, nm_error *err)
{
    return import_model(bytes, size, NULL, source, out, err);
}

nm_status nm_onnx_import_owned(void *bytes, size_t size, const char *source, nm_graph **out, nm_error *err)
{
    return import_model(bytes, size, bytes, source, out, err);
}
