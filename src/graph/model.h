/* The model behind the public nm_model handle, for library code that needs
 * its graph (evaluation, explainers reading inner tensors). */
#ifndef NM_GRAPH_MODEL_H
#define NM_GRAPH_MODEL_H

#include "graph/graph.h"

struct nm_model {
    nm_graph *g;            /* the prepared graph */
    void *bytes;            /* the ONNX bytes it was built from */
    size_t size;
    char *source;
    nm_load_options opt;
};

/* A fresh graph from the bytes at the current batch size (trained weights). */
nm_status nm_model_rebuild(nm_model *m, nm_error *err);

#endif
