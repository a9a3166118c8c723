/* ONNX protobuf -> nm_graph. Everything read from the file is validated
 * (sizes against dims, names against producers) before it is trusted. */
#ifndef NM_ONNX_IMPORT_H
#define NM_ONNX_IMPORT_H

#include <stddef.h>

#include "graph/graph.h"

/* ai.onnx opsets the importer accepts. */
#define NM_ONNX_OPSET_MIN 7
#define NM_ONNX_OPSET_MAX 17
/* Nodes of one graph. Loading costs O(nodes^2) (tensor name look-ups, the
 * gradient plan): 10000 nodes load in 0.8 s, 30000 in 8 s. Real CNN
 * classifiers have hundreds to a few thousand; a graph past this is refused
 * before anything is built. */
#define NM_ONNX_MAX_NODES 20000

/* Build a graph from a serialized ModelProto. `source` names the model in
 * messages. Nodes keep the file's order (run nm_graph_sort next). Initializers
 * become const tensors (float32 stays float, double narrows to float, every
 * integer type and bool widen to int64); graph inputs that are not
 * initializers become g->inputs with the declared dtype and shape (-1 for a
 * symbolic or unknown dimension; ndim 0 and numel -1 for an unknown rank). */
nm_status nm_onnx_import(const void *bytes, size_t size, const char *source,
                         nm_graph **out, nm_error *err);
/* The same, taking the (malloc'ed) bytes: freed once unpacked, before the
 * graph is built, so that the file and the weights are not held at once. */
nm_status nm_onnx_import_owned(void *bytes, size_t size, const char *source, nm_graph **out, nm_error *err);

/* Parse a serialized TensorProto (test_data_set_N/input_K.pb) into `out`
 * (name, dtype, shape, numel and malloc'ed data; no gradient). The caller
 * frees out->name and out->data. */
nm_status nm_onnx_read_tensor(const void *bytes, size_t size, const char *source,
                              nm_tensor *out, nm_error *err);

#endif
