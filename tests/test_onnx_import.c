/* ONNX importer: models built here with protobuf-c, then imported. Checks the
 * conversions (types, shapes, attributes, metadata), every refusal with its
 * status and message, and that truncated or corrupted bytes are refused
 * without crashing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "onnx/onnx_import.h"
#include "testutil.h"

/* ------------------------------------------------------------ building */

typedef struct built {
    uint8_t *bytes;
    size_t size;
} built;

static built pack_model(const Onnx__ModelProto *m)
{
    built b;
    b.size = onnx__model_proto__get_packed_size(m);
    b.bytes = malloc(b.size + 1);
    onnx__model_proto__pack(m, b.bytes);
    return b;
}

static built pack_tensor(const Onnx__TensorProto *t)
{
    built b;
    b.size = onnx__tensor_proto__get_packed_size(t);
    b.bytes = malloc(b.size + 1);
    onnx__tensor_proto__pack(t, b.bytes);
    return b;
}

/* The test model: y = Relu(MatMul(x, w)), x float [N, 3], w float [3, 2]. */
typedef struct model {
    Onnx__ModelProto m;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__StringStringEntryProto meta, *metas[1];
    Onnx__GraphProto g;
    Onnx__NodeProto matmul, relu, *nodes[2];
    char *mm_in[2], *mm_out[1], *relu_in[1], *relu_out[1];
    Onnx__AttributeProto a_ints, a_f, a_s, a_t, *attrs[4];
    int64_t ints[3];
    Onnx__TensorProto attr_tensor;
    int64_t attr_tensor_data[2];
    Onnx__TensorProto w, *inits[1];
    int64_t w_dims[2];
    float w_vals[6];
    Onnx__ValueInfoProto x, y, *ins[1], *outs[1];
    Onnx__TypeProto x_type, y_type;
    Onnx__TypeProto__Tensor x_tt, y_tt;
    Onnx__TensorShapeProto x_shape;
    Onnx__TensorShapeProto__Dimension d0, d1, *dims[2];
} model;

static void make_model(model *s)
{
    memset(s, 0, sizeof *s);
    onnx__model_proto__init(&s->m);
    s->m.has_ir_version = 1;
    s->m.ir_version = 8;
    onnx__operator_set_id_proto__init(&s->opset);
    s->opset.domain = "";
    s->opset.has_version = 1;
    s->opset.version = 13;
    s->opsets[0] = &s->opset;
    s->m.n_opset_import = 1;
    s->m.opset_import = s->opsets;
    onnx__string_string_entry_proto__init(&s->meta);
    s->meta.key = "labels";
    s->meta.value = "cat,dog";
    s->metas[0] = &s->meta;
    s->m.n_metadata_props = 1;
    s->m.metadata_props = s->metas;

    onnx__graph_proto__init(&s->g);
    s->m.graph = &s->g;
    onnx__node_proto__init(&s->matmul);
    s->mm_in[0] = "x";
    s->mm_in[1] = "w";
    s->mm_out[0] = "h";
    s->matmul.n_input = 2;
    s->matmul.input = s->mm_in;
    s->matmul.n_output = 1;
    s->matmul.output = s->mm_out;
    s->matmul.op_type = "MatMul";
    s->matmul.name = "mm";
    onnx__node_proto__init(&s->relu);
    s->relu_in[0] = "h";
    s->relu_out[0] = "y";
    s->relu.n_input = 1;
    s->relu.input = s->relu_in;
    s->relu.n_output = 1;
    s->relu.output = s->relu_out;
    s->relu.op_type = "Relu";
    s->relu.domain = "ai.onnx";

    /* Attributes of every kind on the Relu (copied whatever the operator). */
    onnx__attribute_proto__init(&s->a_ints);
    s->a_ints.name = "ints";
    s->a_ints.has_type = 1;
    s->a_ints.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    s->ints[0] = 1, s->ints[1] = -2, s->ints[2] = 3;
    s->a_ints.n_ints = 3;
    s->a_ints.ints = s->ints;
    onnx__attribute_proto__init(&s->a_f);
    s->a_f.name = "alpha";
    s->a_f.has_f = 1;   /* no type: inferred as in IR 1 files */
    s->a_f.f = 0.25f;
    onnx__attribute_proto__init(&s->a_s);
    s->a_s.name = "mode";
    s->a_s.has_type = 1;
    s->a_s.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    s->a_s.has_s = 1;
    s->a_s.s.len = 7;
    s->a_s.s.data = (uint8_t *)"nearest";
    onnx__attribute_proto__init(&s->a_t);
    s->a_t.name = "value";
    s->a_t.has_type = 1;
    s->a_t.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    onnx__tensor_proto__init(&s->attr_tensor);
    s->attr_tensor.has_data_type = 1;
    s->attr_tensor.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    s->attr_tensor.n_dims = 0;   /* filled below: [2] */
    s->attr_tensor_data[0] = 7, s->attr_tensor_data[1] = -9;
    s->attr_tensor.n_int64_data = 2;
    s->attr_tensor.int64_data = s->attr_tensor_data;
    static int64_t two = 2;
    s->attr_tensor.n_dims = 1;
    s->attr_tensor.dims = &two;
    s->a_t.t = &s->attr_tensor;
    s->attrs[0] = &s->a_ints, s->attrs[1] = &s->a_f, s->attrs[2] = &s->a_s, s->attrs[3] = &s->a_t;
    s->relu.n_attribute = 4;
    s->relu.attribute = s->attrs;
    s->nodes[0] = &s->matmul, s->nodes[1] = &s->relu;
    s->g.n_node = 2;
    s->g.node = s->nodes;

    onnx__tensor_proto__init(&s->w);
    s->w.name = "w";
    s->w.has_data_type = 1;
    s->w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    s->w_dims[0] = 3, s->w_dims[1] = 2;
    s->w.n_dims = 2;
    s->w.dims = s->w_dims;
    for (int i = 0; i < 6; i++) s->w_vals[i] = (float)i - 2.5f;
    s->w.has_raw_data = 1;
    s->w.raw_data.len = sizeof s->w_vals;
    s->w.raw_data.data = (uint8_t *)s->w_vals;   /* little-endian host */
    s->inits[0] = &s->w;
    s->g.n_initializer = 1;
    s->g.initializer = s->inits;

    onnx__value_info_proto__init(&s->x);
    onnx__type_proto__init(&s->x_type);
    onnx__type_proto__tensor__init(&s->x_tt);
    onnx__tensor_shape_proto__init(&s->x_shape);
    onnx__tensor_shape_proto__dimension__init(&s->d0);
    onnx__tensor_shape_proto__dimension__init(&s->d1);
    s->d0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    s->d0.dim_param = "N";
    s->d1.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    s->d1.dim_value = 3;
    s->dims[0] = &s->d0, s->dims[1] = &s->d1;
    s->x_shape.n_dim = 2;
    s->x_shape.dim = s->dims;
    s->x_tt.has_elem_type = 1;
    s->x_tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    s->x_tt.shape = &s->x_shape;
    s->x_type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    s->x_type.tensor_type = &s->x_tt;
    s->x.name = "x";
    s->x.type = &s->x_type;
    onnx__value_info_proto__init(&s->y);
    onnx__type_proto__init(&s->y_type);
    onnx__type_proto__tensor__init(&s->y_tt);
    s->y_tt.has_elem_type = 1;
    s->y_tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    s->y_type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    s->y_type.tensor_type = &s->y_tt;
    s->y.name = "y";
    s->y.type = &s->y_type;
    s->ins[0] = &s->x, s->outs[0] = &s->y;
    s->g.n_input = 1;
    s->g.input = s->ins;
    s->g.n_output = 1;
    s->g.output = s->outs;
}

static nm_status import(const model *s, nm_graph **g, nm_error *err)
{
    built b = pack_model(&s->m);
    nm_status st = nm_onnx_import(b.bytes, b.size, "test.onnx", g, err);
    free(b.bytes);
    return st;
}

/* ------------------------------------------------------------ tests */

static void test_valid(void)
{
    model s;
    make_model(&s);
    nm_graph *g = NULL;
    nm_error err = {0};
    nm_status st = import(&s, &g, &err);
    if (!nm_check(st == NM_OK, "valid model imports: %s", err.msg)) return;
    nm_check(g->opset == 13 && g->n_nodes == 2 && g->n_inputs == 1 && g->n_outputs == 1, "valid: counts");
    const nm_tensor *x = &g->t[g->inputs[0]];
    nm_check(strcmp(x->name, "x") == 0 && x->dtype == NM_FLOAT && x->shape.ndim == 2 && x->shape.dims[0] == -1 &&
                 x->shape.dims[1] == 3 && x->numel == -1 && x->is_input,
             "valid: input x float [-1,3]");
    int w = nm_graph_find_tensor(g, "w");
    nm_check(w >= 0 && g->t[w].is_const && g->t[w].dtype == NM_FLOAT && g->t[w].numel == 6 &&
                 nm_f32(&g->t[w])[5] == 2.5f,
             "valid: initializer w from raw_data");
    nm_check(g->t[g->outputs[0]].producer == 1 && g->t[g->outputs[0]].is_output, "valid: output y");
    nm_check(g->n_meta == 1 && strcmp(g->meta_key[0], "labels") == 0 && strcmp(g->meta_val[0], "cat,dog") == 0,
             "valid: metadata");
    const nm_node *relu = &g->nodes[1];
    int64_t ints[4];
    nm_check(nm_attr_ints(relu, "ints", ints, 4) == 3 && ints[1] == -2, "attr: INTS");
    nm_check(nm_attr_float(relu, "alpha", 0) == 0.25f, "attr: FLOAT with its type inferred");
    nm_check(strcmp(nm_attr_string(relu, "mode", ""), "nearest") == 0, "attr: STRING");
    const nm_attr *t = nm_attr_get(relu, "value");
    nm_check(t && t->type == NM_ATTR_TENSOR && t->t && t->t->dtype == NM_INT64 && t->t->numel == 2 &&
                 nm_i64(t->t)[1] == -9,
             "attr: TENSOR");
    nm_check(strcmp(g->nodes[1].name, "Relu_1") == 0, "unnamed node named after its op: '%s'", g->nodes[1].name);
    nm_graph_free(g);
}

/* Import the model after `mutate` and expect `code` with `needle` in the message. */
static void expect_refusal(const char *what, void (*mutate)(model *), nm_status code, const char *needle)
{
    model s;
    make_model(&s);
    mutate(&s);
    nm_graph *g = NULL;
    nm_error err = {0};
    nm_status st = import(&s, &g, &err);
    nm_check(st == code && g == NULL && strstr(err.msg, needle) && strstr(err.msg, "test.onnx"),
             "%s: expected %s '%s', got %s '%s'", what, nm_status_name(code), needle, nm_status_name(st), err.msg);
    nm_graph_free(g);
}

static void m_unknown_op(model *s) { s->relu.op_type = "Swish"; }
static void m_domain(model *s) { s->relu.domain = "com.microsoft"; }
static void m_opset_old(model *s) { s->opset.version = 6; }
static void m_opset_new(model *s) { s->opset.version = 18; }
static void m_no_graph(model *s) { s->m.graph = NULL; }
static void m_no_nodes(model *s) { s->g.n_node = 0; }
static void m_undefined(model *s) { s->relu_in[0] = "ghost"; }
static void m_twice(model *s) { s->relu_out[0] = "h"; }
static void m_writes_init(model *s) { s->relu_out[0] = "w"; }
static void m_raw_short(model *s) { s->w.raw_data.len -= 4; }
static void m_neg_dim(model *s) { s->w_dims[0] = -3; }
static void m_external(model *s)
{
    s->w.has_data_location = 1;
    s->w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}
static void m_float16(model *s) { s->w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16; }
static void m_bad_output(model *s) { s->y.name = "nowhere"; }
static void m_seq_input(model *s) { s->x_type.value_case = ONNX__TYPE_PROTO__VALUE__NOT_SET; }
static void m_string_input(model *s) { s->x_tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING; }

static void test_refusals(void)
{
    expect_refusal("unknown op", m_unknown_op, NM_ERR_UNSUPPORTED, "unsupported operator 'Swish' (node 'Swish_1', opset 13)");
    expect_refusal("custom domain", m_domain, NM_ERR_UNSUPPORTED, "'com.microsoft.Relu'");
    expect_refusal("opset 6", m_opset_old, NM_ERR_UNSUPPORTED, "opset 6");
    expect_refusal("opset 18", m_opset_new, NM_ERR_UNSUPPORTED, "opset 18");
    expect_refusal("no graph", m_no_graph, NM_ERR_PARSE, "no graph");
    expect_refusal("no nodes", m_no_nodes, NM_ERR_PARSE, "no nodes");
    expect_refusal("undefined input", m_undefined, NM_ERR_PARSE, "node 'Relu_1' reads undefined tensor 'ghost'");
    expect_refusal("two producers", m_twice, NM_ERR_PARSE, "'h' is produced by node 'mm' and by node 'Relu_1'");
    expect_refusal("writes initializer", m_writes_init, NM_ERR_PARSE, "writes initializer 'w'");
    expect_refusal("short raw_data", m_raw_short, NM_ERR_PARSE, "raw_data has 20 bytes");
    expect_refusal("negative dim", m_neg_dim, NM_ERR_PARSE, "negative dimension");
    expect_refusal("external data", m_external, NM_ERR_UNSUPPORTED, "external data not supported");
    expect_refusal("float16", m_float16, NM_ERR_UNSUPPORTED, "tensor 'w' has data type float16");
    expect_refusal("output undefined", m_bad_output, NM_ERR_PARSE, "graph output 'nowhere'");
    expect_refusal("non-tensor input", m_seq_input, NM_ERR_UNSUPPORTED, "not a tensor");
    expect_refusal("string input", m_string_input, NM_ERR_UNSUPPORTED, "element type string");

    nm_graph *g = NULL;
    nm_error err = {0};
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
    nm_status st = nm_onnx_import(junk, sizeof junk, "junk.bin", &g, &err);
    nm_check(st == NM_ERR_PARSE && strstr(err.msg, "junk.bin: not an ONNX model (protobuf parse failed)"),
             "junk refused: %s", err.msg);
    st = nm_onnx_import("", 0, "empty.onnx", &g, &err);
    nm_check(st == NM_ERR_PARSE && strstr(err.msg, "no graph"), "empty file refused: %s", err.msg);
}

/* ------------------------------------------------------------ tensors */

static nm_status read_tensor(const Onnx__TensorProto *tp, nm_tensor *t, nm_error *err)
{
    built b = pack_tensor(tp);
    nm_status st = nm_onnx_read_tensor(b.bytes, b.size, "t.pb", t, err);
    free(b.bytes);
    return st;
}

static void release(nm_tensor *t)
{
    free(t->name);
    free(t->data);
}

/* raw little-endian bytes of type `dt` and 3 elements, expected as int64. */
static void check_raw_int(int32_t dt, const uint8_t *raw, size_t len, int64_t e0, int64_t e1, int64_t e2)
{
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    int64_t dims[1] = {3};
    tp.name = "t";
    tp.has_data_type = 1;
    tp.data_type = dt;
    tp.n_dims = 1;
    tp.dims = dims;
    tp.has_raw_data = 1;
    tp.raw_data.len = len;
    tp.raw_data.data = (uint8_t *)raw;
    nm_tensor t;
    nm_error err = {0};
    nm_status st = read_tensor(&tp, &t, &err);
    nm_check(st == NM_OK && t.dtype == NM_INT64 && t.numel == 3 && nm_i64(&t)[0] == e0 && nm_i64(&t)[1] == e1 &&
                 nm_i64(&t)[2] == e2,
             "raw type %d widens to int64: %s", (int)dt, err.msg);
    if (!st) release(&t);
}

static void test_tensors(void)
{
    check_raw_int(ONNX__TENSOR_PROTO__DATA_TYPE__INT8, (const uint8_t *)"\x01\xff\x80", 3, 1, -1, -128);
    check_raw_int(ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, (const uint8_t *)"\x01\xff\x80", 3, 1, 255, 128);
    check_raw_int(ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, (const uint8_t *)"\x01\x00\x01", 3, 1, 0, 1);
    check_raw_int(ONNX__TENSOR_PROTO__DATA_TYPE__INT16, (const uint8_t *)"\x02\x01\xfe\xff\x00\x80", 6, 258, -2,
                  -32768);
    check_raw_int(ONNX__TENSOR_PROTO__DATA_TYPE__INT32, (const uint8_t *)"\x01\0\0\0\xff\xff\xff\xff\0\0\0\x80", 12,
                  1, -1, INT32_MIN);
    check_raw_int(ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
                  (const uint8_t *)"\x05\0\0\0\0\0\0\0\xfe\xff\xff\xff\xff\xff\xff\xff\0\0\0\0\0\0\0\x01", 24, 5, -2,
                  (int64_t)1 << 56);

    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    int64_t dims[2] = {2, 1};
    double dv[2] = {1.5, -1e300};
    tp.has_data_type = 1;
    tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    tp.n_dims = 2;
    tp.dims = dims;
    tp.n_double_data = 2;
    tp.double_data = dv;
    nm_tensor t;
    nm_error err = {0};
    nm_status st = read_tensor(&tp, &t, &err);
    nm_check(st == NM_OK && t.dtype == NM_FLOAT && t.shape.ndim == 2 && nm_f32(&t)[0] == 1.5f &&
                 strcmp(t.name, "") == 0,
             "double_data narrows to float: %s", err.msg);
    if (!st) release(&t);

    tp.n_double_data = 1;
    st = read_tensor(&tp, &t, &err);
    nm_check(st == NM_ERR_PARSE && strstr(err.msg, "has 1 values, dims need 2"), "typed count mismatch: %s",
             err.msg);

    int32_t iv[2] = {3, -4};
    tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    tp.n_double_data = 0;
    tp.n_int32_data = 2;
    tp.int32_data = iv;
    st = read_tensor(&tp, &t, &err);
    nm_check(st == NM_OK && t.dtype == NM_INT64 && nm_i64(&t)[1] == -4, "int32_data widens: %s", err.msg);
    if (!st) release(&t);

    uint64_t big[2] = {1, (uint64_t)1 << 63};
    tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT64;
    tp.n_int32_data = 0;
    tp.n_uint64_data = 2;
    tp.uint64_data = big;
    st = read_tensor(&tp, &t, &err);
    nm_check(st == NM_ERR_UNSUPPORTED, "uint64 above int64 range refused: %s", err.msg);

    int64_t huge[3] = {(int64_t)1 << 40, (int64_t)1 << 40, 0};
    tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tp.n_uint64_data = 0;
    tp.n_dims = 2;
    tp.dims = huge;
    st = read_tensor(&tp, &t, &err);
    nm_check(st == NM_ERR_LIMIT && strstr(err.msg, "overflows"), "element count overflow refused: %s", err.msg);
    tp.n_dims = 3;   /* a zero dimension makes the tensor empty: valid */
    st = read_tensor(&tp, &t, &err);
    nm_check(st == NM_OK && t.numel == 0, "empty tensor: %s", err.msg);
    if (!st) release(&t);

    static const uint8_t junk[] = {0x0f};
    st = nm_onnx_read_tensor(junk, 1, "junk.pb", &t, &err);
    nm_check(st == NM_ERR_PARSE, "junk tensor refused: %s", err.msg);
}

/* ------------------------------------------------------------ robustness */

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Every truncation and a few thousand random byte corruptions of a valid
 * model: each must import cleanly or be refused with a message. */
static void test_corrupted(void)
{
    model s;
    make_model(&s);
    built b = pack_model(&s.m);
    uint8_t *copy = malloc(b.size);
    int bad = 0, imported = 0;
    for (size_t len = 0; len < b.size; len++) {
        nm_graph *g = NULL;
        nm_error err = {0};
        nm_status st = nm_onnx_import(b.bytes, len, "cut.onnx", &g, &err);
        if (st != NM_OK && (g || !err.msg[0])) bad++;
        imported += st == NM_OK;
        nm_graph_free(g);
    }
    uint64_t seed = 12345;
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(copy, b.bytes, b.size);
        int flips = 1 + (int)(rng(&seed) % 4);
        for (int f = 0; f < flips; f++) copy[rng(&seed) % b.size] = (uint8_t)rng(&seed);
        nm_graph *g = NULL;
        nm_error err = {0};
        nm_status st = nm_onnx_import(copy, b.size, "flip.onnx", &g, &err);
        if (st != NM_OK && (g || !err.msg[0])) bad++;
        imported += st == NM_OK;
        nm_graph_free(g);
    }
    nm_check(bad == 0, "corrupted models: every refusal has a message (%d imported anyway)", imported);
    free(copy);
    free(b.bytes);
}

int main(void)
{
    test_valid();
    test_refusals();
    test_tensors();
    test_corrupted();
    return nm_test_summary();
}
