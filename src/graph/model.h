/* The model behind the public nm_model handle, for library code that needs
 * its graph (evaluation, explainers reading inner tensors). */
#ifndef NM_GRAPH_MODEL_H
#define NM_GRAPH_MODEL_H

#include "graph/graph.h"

struct nm_model {
    nm_graph *g;            /* the prepared graph */
    nm_graph *tmpl;         /* the imported graph after sorting, Identity removal and
                             * BatchNorm folding, unprepared: each build prepares a copy
                             * (nm_graph_clone). Its constants are released: their values
                             * are in g at the same tensor index, except the originals it
                             * keeps of what the sanity check re-drew in g */
    char *source;
    nm_load_options opt;
    int random_layers;      /* sanity check: the top layers re-initialised ... */
    uint64_t random_seed;   /* ... with this seed, re-applied after every rebuild */
    int last_shared;        /* the last pass was nm_model_predict: no activations kept */
    int threads;            /* OpenMP threads the graph was built for and runs on */
    int threads_max;        /* ... at most */
    int threads_follow;     /* 1: the count follows the load (nm_load_options.threads) */
    int cpus;               /* usable CPUs (affinity mask) */
    double load_read_at;    /* when the load was last read (nm_cpu_now) */
    int load_votes;         /* consecutive reads that asked for threads_voted ... */
    int threads_voted;      /* ... instead of threads */
};

/* A fresh graph from the template at the current batch size (with the
 * randomisation of the sanity check re-applied, if any). */
nm_status nm_model_rebuild(nm_model *m, nm_error *err);

/* Before constant t of m->g is changed in place (the sanity check's
 * re-drawing): the template keeps its original value, for later builds. */
nm_status nm_model_keep_original(nm_model *m, int t, nm_error *err);

/* Re-initialise the top m->random_layers layers of the freshly built graph
 * (eval/randomize.c). */
nm_status nm_model_apply_randomization(nm_model *m, nm_error *err);

#endif
