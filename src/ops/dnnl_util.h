/* Small helpers shared by the oneDNN-backed operators (Conv, pooling):
 * engine/stream access, status checks, memory descriptors from nm_shape,
 * primitive arguments that move between the graph's plain row-major buffers
 * and a primitive's preferred (blocked) layout, and the sliding-window
 * geometry (kernel, strides, pads, auto_pad, ceil_mode) of ONNX. */
#ifndef NM_OPS_DNNL_UTIL_H
#define NM_OPS_DNNL_UTIL_H

#include <dnnl.h>

#include "graph/graph.h"

/* Create g->engine and g->stream on first use. */
nm_status nm_dnnl_ready(nm_graph *g, nm_error *err);

/* NM_OK on dnnl_success; otherwise NM_ERR_INTERNAL with "<what>: <dnnl status>". */
nm_status nm_dnnl_check(dnnl_status_t s, nm_error *err, const char *what);

/* Plain row-major tag for a rank (a, ab, abc, ...); dnnl_format_tag_undef past 6. */
dnnl_format_tag_t nm_dnnl_plain_tag(int ndim);

/* oneDNN tag of graph tensor t (its plan layout) at rank ndim. */
dnnl_format_tag_t nm_dnnl_tensor_tag(const nm_graph *g, int t, int ndim);

/* f32 memory descriptor of `ndim` dims with a tag (plain or dnnl_format_tag_any). */
nm_status nm_dnnl_md(dnnl_memory_desc_t *md, int ndim, const int64_t *dims,
                     dnnl_format_tag_t tag, nm_error *err);
/* The same with another data type (bf16 operands). */
nm_status nm_dnnl_md_dt(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, dnnl_format_tag_t tag,
                        dnnl_data_type_t dt, nm_error *err);

/* 1 when the graph asked for bf16 (nm_load_options.precision) and the CPU
 * multiplies bf16 natively (AVX512_BF16). */
int nm_dnnl_use_bf16(const nm_graph *g);

/* Run a primitive on the graph's stream and wait. */
nm_status nm_dnnl_exec(nm_graph *g, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args);

/* Threads for a primitive doing `flops` operations: 1 below the graph's
 * serial_below (nm_graph_prepare), where an OpenMP region would cost more
 * than splitting the work saves, else 0 (all). A primitive is built and run
 * under the same count (nm_dnnl_threads_begin/end), since oneDNN partitions
 * the work when the primitive is created. */
int nm_dnnl_threads_for(const nm_graph *g, double flops);
/* Set the calling thread's OpenMP thread count to `threads` (0: leave it);
 * returns what to restore. */
int nm_dnnl_threads_begin(int threads);
void nm_dnnl_threads_end(int saved);
/* nm_dnnl_exec under a thread count from nm_dnnl_threads_for. */
nm_status nm_dnnl_exec_threads(nm_graph *g, dnnl_primitive_t prim, int threads, int nargs,
                               const dnnl_exec_arg_t *args);

/* Create a primitive from an op descriptor; the primitive descriptor is
 * returned in *pd when pd is not NULL (caller destroys), else destroyed. */
nm_status nm_dnnl_primitive(nm_graph *g, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                            const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd,
                            dnnl_primitive_t *prim, nm_error *err, const char *what);

/* A copy between two blocked f32 layouts of one tensor, planned once
 * (ops/dnnl_util.c); faster per call than a oneDNN reorder. */
typedef struct nm_dnnl_copy nm_dnnl_copy;

/* nm_dnnl_primitive with the scratchpad user-managed: a region of the graph's
 * scratch, like every per-call temporary (one scratch for the whole graph
 * instead of oneDNN's own beside ours). *pad (an argument without a user
 * side, zeroed when the primitive needs none) goes to nm_dnnl_exec_pad. */
struct nm_dnnl_arg;
nm_status nm_dnnl_primitive_pad(nm_graph *g, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                                const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd,
                                dnnl_primitive_t *prim, struct nm_dnnl_arg *pad, nm_error *err, const char *what);
/* nm_dnnl_exec with the primitive's scratchpad (when it has one) added. */
nm_status nm_dnnl_exec_pad(nm_graph *g, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                           struct nm_dnnl_arg *pad);
/* The same on a stream of the caller's (one per thread running primitives
 * side by side). */
nm_status nm_dnnl_exec_pad_on(dnnl_stream_t stream, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                              struct nm_dnnl_arg *pad);

/* One primitive argument as the graph sees it: a plain row-major buffer given
 * per call and, when the primitive prefers another layout, a buffer in that
 * layout plus a reorder between the two. That buffer is a region of the
 * graph's scratch, bound per call, except for a frozen constant's (owned).
 *   NM_ARG_IN:  plain -> prim before execution (or the plain buffer used directly)
 *   NM_ARG_OUT: prim -> plain after execution (or written directly)
 *   NM_ARG_ACC: prim -> plain, ADDED to the plain buffer (gradients); always
 *               goes through the primitive's own buffer since oneDNN writes. */
typedef enum nm_arg_kind { NM_ARG_IN, NM_ARG_OUT, NM_ARG_ACC } nm_arg_kind;

typedef struct nm_dnnl_arg {
    nm_arg_kind kind;
    dnnl_memory_t user;       /* plain layout; handle set per call */
    dnnl_memory_t prim;       /* primitive layout; == user when used directly */
    dnnl_primitive_t reorder; /* NULL when no reorder is needed (ACC: plain add) */
    int64_t numel;
    nm_graph *sg;             /* prim's buffer is sg's scratch at `off` (`bytes`), or NULL */
    size_t off, bytes;
    void *own;                /* prim's own buffer: a frozen constant in another layout */
    nm_dnnl_copy *copy;       /* derived: copied per call from `from` ... */
    const void *from;         /* ... (another argument's frozen buffer) */
    unsigned frozen : 1;      /* NM_ARG_IN converted once (constant weights) */
    unsigned alias : 1;       /* prim belongs to another argument (same layout) */
    unsigned derived : 1;     /* made by nm_dnnl_arg_init_derived */
} nm_dnnl_arg;

/* `prim_md` is what the primitive descriptor asks for; `dims` the plain shape. */
nm_status nm_dnnl_arg_init(nm_graph *g, nm_dnnl_arg *a, nm_arg_kind kind, int ndim,
                           const int64_t *dims, const dnnl_memory_desc_t *prim_md, nm_error *err);
/* The same for a graph buffer in layout `user_tag` (plain or channels-last). */
nm_status nm_dnnl_arg_init_tag(nm_graph *g, nm_dnnl_arg *a, nm_arg_kind kind, int ndim, const int64_t *dims,
                               dnnl_format_tag_t user_tag, const dnnl_memory_desc_t *prim_md, nm_error *err);
/* nm_dnnl_arg_init (NM_ARG_IN) of a constant, frozen at once (below). */
nm_status nm_dnnl_arg_init_const(nm_graph *g, nm_dnnl_arg *a, int ndim, const int64_t *dims,
                                 const dnnl_memory_desc_t *prim_md, const void *data, nm_error *err);
/* NM_ARG_IN: present `data` to the primitive (reorders unless frozen). */
nm_status nm_dnnl_arg_in(nm_graph *g, nm_dnnl_arg *a, const void *data);
/* NM_ARG_IN of a constant: convert once now, later calls reuse it (the
 * constant's own buffer when the layouts agree, borrowed: it must outlive
 * the argument). */
nm_status nm_dnnl_arg_freeze(nm_graph *g, nm_dnnl_arg *a, const void *data, nm_error *err);
/* NM_ARG_IN of the same constant as `from` (frozen in another layout, its
 * own buffer) in layout `prim_md`: from's buffer itself when the layouts
 * agree; else, with `hold`, a frozen copy (own buffer, a->bytes); else
 * copied per call into scratch when nm_dnnl_copy can, else frozen all the
 * same (a oneDNN reorder). nm_dnnl_arg_in ignores its data argument. */
nm_status nm_dnnl_arg_init_derived(nm_graph *g, nm_dnnl_arg *a, const nm_dnnl_arg *from,
                                   const dnnl_memory_desc_t *prim_md, int hold, nm_error *err);
/* A frozen argument's value back in its plain (user) layout, into dst. */
nm_status nm_dnnl_arg_thaw(nm_graph *g, const nm_dnnl_arg *a, void *dst, nm_error *err);
/* NM_ARG_OUT, NM_ARG_ACC: point the primitive at `data` (or at its scratch
 * region) before execution. */
nm_status nm_dnnl_arg_out_begin(nm_dnnl_arg *a, void *data);
/* NM_ARG_OUT: copy out after execution; NM_ARG_ACC: add into `data`. */
nm_status nm_dnnl_arg_out_end(nm_graph *g, nm_dnnl_arg *a, float *data);
void nm_dnnl_arg_free(nm_dnnl_arg *a);
/* 1 when the primitive uses the plain buffer itself. */
static inline int nm_dnnl_arg_is_plain(const nm_dnnl_arg *a) { return a->reorder == NULL; }

/* Pooling (pool.c): 1 when MaxPool/AveragePool node n runs on oneDNN and so
 * may read and write channels-last tensors. */
int nm_pool_native_ok(nm_graph *g, const nm_node *n);

/* ---------------------------------------------------------- window geometry */

#define NM_MAX_SPATIAL 3

typedef enum nm_auto_pad { NM_PAD_NOTSET, NM_PAD_VALID, NM_PAD_SAME_UPPER, NM_PAD_SAME_LOWER } nm_auto_pad;

typedef struct nm_window {
    int nsp;                            /* spatial dims, 1..3 */
    int64_t in[NM_MAX_SPATIAL], out[NM_MAX_SPATIAL];
    int64_t kernel[NM_MAX_SPATIAL], stride[NM_MAX_SPATIAL], dilation[NM_MAX_SPATIAL];
    int64_t pad_l[NM_MAX_SPATIAL];
    int64_t pad_r[NM_MAX_SPATIAL];      /* as ONNX means it (explicit or auto_pad) */
    int64_t extra_r[NM_MAX_SPATIAL];    /* ceil_mode: windows reaching past pad_r */
} nm_window;

/* Parse auto_pad; -1 when the string is not one ONNX defines. */
int nm_auto_pad_parse(const char *s);

/* Check the window attributes' lengths against `nsp` (init time). */
nm_status nm_window_check_attrs(nm_graph *g, const nm_node *n, int nsp_or_0, nm_error *err);

/* Geometry of one node from its attributes (kernel_shape, strides, pads,
 * dilations, auto_pad) and the input's spatial dims; `kernel` overrides
 * kernel_shape when not NULL (Conv: from W). ceil_mode rounds the output up,
 * dropping a last window that would start in the right padding. */
nm_status nm_window_from_node(nm_graph *g, const nm_node *n, int nsp, const int64_t *in_spatial,
                              const int64_t *kernel, int ceil_mode, nm_window *w, nm_error *err);

/* Dilated kernel extent of axis i. */
static inline int64_t nm_window_extent(const nm_window *w, int i)
{
    return (w->kernel[i] - 1) * w->dilation[i] + 1;
}

#endif
