/* neuromask: explain image classifiers exported to ONNX, in C.
 *
 * The library loads an ONNX CNN, runs it forward on a batch and back-propagates
 * any gradient of the logits to the input image (and to any named tensor).
 * Every call reports failure as an nm_status with a reason in nm_error; the
 * library never exits and never prints. */
#ifndef NEUROMASK_H
#define NEUROMASK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nm_status {
    NM_OK = 0,
    NM_ERR_IO,          /* file missing or unreadable */
    NM_ERR_PARSE,       /* bytes are not a valid model / image */
    NM_ERR_UNSUPPORTED, /* valid, but uses something neuromask does not implement */
    NM_ERR_SHAPE,       /* shapes do not agree */
    NM_ERR_MEMORY,      /* allocation failed */
    NM_ERR_LIMIT,       /* a size above the configured limits */
    NM_ERR_ARG,         /* bad argument from the caller */
    NM_ERR_NUMERIC,     /* NaN or Inf where a finite value is needed */
    NM_ERR_INTERNAL,    /* a library (oneDNN) refused an operation */
    NM_ERR_CANCELLED    /* the caller's cancel flag was set (e.g. by a signal handler) */
} nm_status;

typedef struct nm_error {
    nm_status code;
    char msg[512];
} nm_error;

/* Name of a status code, e.g. "unsupported". */
const char *nm_status_name(nm_status s);

/* ---------------------------------------------------------------- models */

#define NM_MAX_DIMS 8

typedef struct nm_model nm_model;

typedef struct nm_shape {
    int ndim;
    int64_t dims[NM_MAX_DIMS];
} nm_shape;

typedef enum nm_precision {
    NM_PRECISION_FP32 = 0,  /* float32 throughout (the default) */
    NM_PRECISION_BF16       /* convolutions multiply in bfloat16 (accumulating in float32)
                               where the CPU has AVX512_BF16; float32 elsewhere */
} nm_precision;

typedef struct nm_load_options {
    int batch;              /* N of the input [N,C,H,W]; 0 means the model's own (or 1) */
    int64_t max_elements;   /* largest tensor allowed (elements); 0 = default */
    int64_t max_bytes;      /* all planned memory together; 0 = default */
    nm_precision precision;
    int threads;            /* OpenMP threads of the engine. 0 (the default): follow the load:
                               the cores this process may use that other processes leave
                               free, at least 1 and at most omp_get_max_threads(), re-read
                               every 50 ms at nm_model_forward; OMP_NUM_THREADS set: exactly
                               that. N > 0: exactly N. On a shared machine two threads on one
                               core run far slower than one (waiting at barriers) */
} nm_load_options;

/* Load a model from a file or from memory. `name` names the source in errors. */
nm_status nm_model_load_file(const char *path, const nm_load_options *opt,
                             nm_model **out, nm_error *err);
nm_status nm_model_load_memory(const void *bytes, size_t size, const char *name,
                               const nm_load_options *opt, nm_model **out, nm_error *err);
void nm_model_free(nm_model *m);

/* Re-plan for another batch size (primitives and buffers are rebuilt). */
nm_status nm_model_set_batch(nm_model *m, int batch, nm_error *err);

nm_shape nm_model_input_shape(const nm_model *m);
nm_shape nm_model_output_shape(const nm_model *m);
const char *nm_model_input_name(const nm_model *m);
const char *nm_model_output_name(const nm_model *m);

/* Value of a metadata_props entry, or NULL. */
const char *nm_model_metadata(const nm_model *m, const char *key);

/* Run the model on `input` (input shape, NCHW float32); copy the output to
 * `output` (output shape) when it is not NULL. An input holding NaN or Inf
 * is refused (NM_ERR_NUMERIC, naming the first such element): activations
 * such as ReLU would otherwise turn it into finite logits. */
nm_status nm_model_forward(nm_model *m, const float *input, float *output, nm_error *err);

/* The same output as nm_model_forward, faster where activations are large
 * (it keeps none: inner tensors share memory, as in an inference engine).
 * nm_model_backward and nm_model_tensor on inner tensors then need a new
 * nm_model_forward. */
nm_status nm_model_predict(nm_model *m, const float *input, float *output, nm_error *err);

/* Back-propagate `doutput` (output shape) through the last forward pass.
 * Writes the gradient with respect to the input to `dinput` when not NULL. */
nm_status nm_model_backward(nm_model *m, const float *doutput, float *dinput, nm_error *err);

/* Value and gradient (after nm_model_backward; NULL when the tensor carries
 * none) of a named tensor of the last pass, in plain row-major layout. */
nm_status nm_model_tensor(nm_model *m, const char *name, nm_shape *shape,
                          const float **value, const float **grad, nm_error *err);

/* Summary for `neuromask info`. */
typedef struct nm_model_info {
    int n_nodes;
    int64_t n_params;
    double flops;           /* multiply-adds x 2 of one forward at the planned batch */
    int64_t planned_bytes;  /* values and gradients of the non-constant tensors, as planned */
    int opset;
    int n_op_types;
    const char *op_types[64];
    int op_counts[64];
} nm_model_info;
void nm_model_get_info(const nm_model *m, nm_model_info *info);

/* Names and shapes (at the planned batch) of the tensors the nodes compute,
 * in execution order, after neuromask's graph passes. Returns the count;
 * fills up to `cap` entries. Names belong to the model. */
int nm_model_tensors(const nm_model *m, const char **names, nm_shape *shapes, int cap);

/* Names of spatial (4-D) tensors in execution order, for Grad-CAM layer choice.
 * Returns the count; fills up to `cap` names. */
int nm_model_spatial_tensors(const nm_model *m, const char **names, int cap);

/* ---------------------------------------------------------------- images */

/* An image in [0,1], interleaved HWC, c = 1 or 3. */
typedef struct nm_image {
    int w, h, c;
    float *data;
} nm_image;

nm_status nm_image_load(const char *path, nm_image *img, nm_error *err);
/* The same from PNG or JPEG bytes in memory; `name` names the source in errors. */
nm_status nm_image_load_memory(const void *bytes, size_t size, const char *name, nm_image *img,
                               nm_error *err);
/* 8-bit PNG of `img` (c = 1 or 3), written to a temporary name and renamed. */
nm_status nm_image_write_png(const char *path, const nm_image *img, nm_error *err);
void nm_image_free(nm_image *img);

typedef struct nm_preprocess {
    int resize_short;       /* resize so the short side is this (0: none) */
    float crop_fraction;    /* central crop of this fraction of each side first (0: none) */
    int crop;               /* centre crop to crop x crop after resizing (0: none) */
    int size;               /* final resize to size x size (0: none, or the model's) */
    float scale;            /* pixel value multiplier applied to x in [0,1] (1 = none) */
    float offset;           /* added after scaling */
    float mean[3], std[3];  /* (x*scale + offset - mean) / std per channel */
} nm_preprocess;

/* Named recipes: cifar, torchvision, darknet, inception, fashion. */
nm_status nm_preprocess_recipe(const char *name, nm_preprocess *p, nm_error *err);

/* A recipe name or a spec of comma-separated items, as stored in the model
 * metadata key "neuromask.preprocess", e.g.
 * "resize=256,crop=224,scale=1,mean=0.485:0.456:0.406,std=0.229:0.224:0.225".
 * Keys: resize (short side), central (crop fraction), crop, size, scale,
 * offset, mean, std (one value or three separated by ':'). A recipe name
 * among the items sets every field; later items override it. */
nm_status nm_preprocess_parse(const char *spec, nm_preprocess *p, nm_error *err);

/* Geometry only: resize / crop `in` into `out` (a new image in [0,1]) whose
 * size matches the model input (h, w). */
nm_status nm_preprocess_geometry(const nm_preprocess *p, const nm_image *in, int h, int w,
                                 nm_image *out, nm_error *err);
/* Value transform: image in [0,1] -> normalised NCHW planes (c channels). */
void nm_preprocess_normalize(const nm_preprocess *p, const nm_image *img, int c, float *nchw);

/* Map a map of the model's input (h x w) back onto the original w0 x h0
 * image: bilinear inside the region the geometry kept, 0 outside. */
void nm_preprocess_unmap(const nm_preprocess *p, const float *map, int h, int w, int h0, int w0,
                         float *out);


/* ------------------------------------------------------------- NeuroMask */

/* NM_OPT_NORMALIZED: w -= lr_t g / rms(g), the rms over the image's mask
 * cells, lr_t falling linearly from lr to lr / steps: steps whose direction
 * is a smooth function of g and whose length settles. */
typedef enum nm_optimizer { NM_OPT_RMSPROP = 0, NM_OPT_ADAM = 1, NM_OPT_NORMALIZED = 2 } nm_optimizer;
typedef enum nm_baseline {
    NM_BASELINE_BLACK = 0,  /* x * m, as in the paper */
    NM_BASELINE_BLUR,       /* masked-out pixels show a Gaussian blur of the image (blur_sigma) */
    NM_BASELINE_MEAN,       /* ... the image's mean colour */
    NM_BASELINE_NOISE       /* ... uniform noise (seeded) */
} nm_baseline;

typedef enum nm_mask_init {
    NM_INIT_UNIFORM = 0,    /* w ~ Uniform(-L, L), seeded (the paper's) */
    NM_INIT_ZERO            /* w = 0 everywhere (m = 0.5): no seed dependence at the start */
} nm_mask_init;
typedef enum nm_sparsity {
    NM_SPARSITY_LOGIT = 0,  /* mean |w + L| (the paper's): pulls every w to -L at a constant pace */
    NM_SPARSITY_MASK        /* mean m: the pull fades where the sigmoid saturates */
} nm_sparsity;

#define NM_GRID_AUTO (-1)

typedef void (*nm_progress_fn)(void *ctx, int step, int steps, const float *loss, int batch);

typedef struct nm_neuromask_options {
    int target_class;       /* -1: the class predicted on the unmasked image */
    float l_pred, l_sparse, l_smooth;
    float temperature;      /* T in m = sigmoid(w / T) */
    float init_range;       /* L: w starts Uniform(-L, L); sparsity pulls w to -L */
    int kernel;             /* Laplacian size for smoothness: 3 or 5 */
    nm_optimizer optimizer;
    float lr;
    int steps;              /* maximum number of steps */
    float tol;              /* an image has converged when its loss moved by less than
                               tol (relative) over `window` steps */
    int window;
    int early_stop;         /* stop each image once it has converged */
    uint64_t seed;
    nm_baseline baseline;   /* what the masked-out pixels show */
    float blur_sigma;       /* pixels, for NM_BASELINE_BLUR */
    int grid;               /* 0: one weight per pixel (the paper's); else grid x grid cells
                               (at most the input's side) interpolated with a Gaussian
                               kernel, so the mask has no cell edges; NM_GRID_AUTO: side / 16
                               cells per side within 8..14 (nm_neuromask_grid) */
    const float *init_w;    /* optional: initial w (batch x mask cells), overrides the seed */
    nm_progress_fn progress;
    void *progress_ctx;
    const volatile sig_atomic_t *cancel;    /* optional: once *cancel is non-zero the run
                                               stops before its next step, NM_ERR_CANCELLED */
    /* Additions beyond the paper (zero = the paper's behaviour). */
    nm_mask_init init;      /* how w starts (when init_w is NULL) */
    nm_sparsity sparsity;   /* what the sparsity term penalises */
    float l_delete;         /* > 0 adds l_delete * -log(1 - p_c) of the image with the mask's
                               pixels deleted (x (1 - m) + b m): the masked region must also be
                               necessary, not only sufficient. Doubles the work per step */
    int alt_fill;           /* 1: every game is played on alt_baseline too, its weight
                               shared between the two fills. Doubles the work per step */
    nm_baseline alt_baseline;
    int average;            /* 1: the returned mask is the mean of the masks of every step and
                               the final one: pixels rank by how early and how long they were
                               kept, also where the final mask saturates */
    int calibrate;          /* 1: the returned mask is m^g, g the largest of 1, 2^-1/2, ...,
                               2^-11/2 whose masked image x m (the paper's) keeps the class with
                               at least half its probability: the pixels' order is m's, the
                               mask is raised until it keeps the class. Forward passes only */
} nm_neuromask_options;

/* Presets: "cifar" and "imagenet", the paper's settings; "default", this
 * project's setting (docs/neuromask_default.md): a smooth mask on a coarse
 * grid, kept and deleted on a strong blur that no metric uses, 40
 * normalized gradient steps from w = 0, raised until it keeps the class. */
nm_status nm_neuromask_preset(const char *name, nm_neuromask_options *o, nm_error *err);
/* The cells per side of the mask the options learn at input size h x w (0:
 * one per pixel). */
int nm_neuromask_grid(const nm_neuromask_options *o, int h, int w);
/* The preset used when none is named: "default", at every input size
 * (input_h 0: size unknown). */
const char *nm_neuromask_preset_for(int input_h);

/* Apply "key=value,key=value" over `o` (after a preset). Keys: steps, lr,
 * l_pred, l_sparse, l_smooth, temperature (or T), init_range (or L), kernel,
 * optimizer (rmsprop|adam|normalized), tol, window, early_stop (0|1), baseline
 * (black|blur|mean|noise), blur_sigma, grid, init (uniform|zero),
 * sparsity (logit|mask), l_delete, alt_fill (0|1), alt_baseline, average
 * (0|1), calibrate (0|1); "preset=NAME"
 * as an item resets to that preset first. */
nm_status nm_neuromask_parse(const char *spec, nm_neuromask_options *o, nm_error *err);

typedef struct nm_explanation {
    int batch, h, w;
    float *mask;            /* batch x h x w, in [0,1] */
    int *target;            /* explained class per image */
    float *prob_before;     /* target's softmax probability, unmasked image */
    float *prob_after;      /* ... on the masked image */
    int *top_after;         /* top-1 class of the masked image */
    int *steps;             /* steps run per image */
    int *converged_at;      /* first step at which the image met the convergence test, or -1 */
    float *loss_pred, *loss_sparse, *loss_smooth;   /* final terms, weighted */
    float *history;         /* steps_run x batch total losses */
    int history_len;
    double seconds;
} nm_explanation;
void nm_explanation_free(nm_explanation *e);

/* Learn one mask per image. `x`: batch images in pixel space [0,1], NCHW at
 * the model's input size; `pp` gives the normalisation applied after masking
 * (only scale, offset, mean, std are used). The model is re-planned for the
 * batch size when needed. */
nm_status nm_neuromask_explain(nm_model *m, const nm_preprocess *pp, const float *x, int batch,
                               const nm_neuromask_options *o, nm_explanation *out, nm_error *err);

/* ------------------------------------------------------ saliency methods */

/* Every explanation method, NeuroMask included, behind one call that gives a
 * map at the model's input resolution (higher = more important). */
typedef enum nm_method {
    NM_METHOD_GRADIENT = 0,           /* |d logit_c / dx|, max over channels */
    NM_METHOD_GRADXINPUT,             /* sum over channels of x * d logit_c / dx */
    NM_METHOD_INTEGRATED_GRADIENTS,
    NM_METHOD_SMOOTHGRAD,
    NM_METHOD_GRADCAM,
    NM_METHOD_OCCLUSION,
    NM_METHOD_RISE,
    NM_METHOD_MEANINGFUL_PERTURBATION,
    NM_METHOD_EXTREMAL_PERTURBATION,
    NM_METHOD_NEUROMASK,
    NM_METHOD_COUNT
} nm_method;

/* "gradient", "gradxinput", "integrated-gradients", "smoothgrad", "gradcam",
 * "occlusion", "rise", "meaningful-perturbation", "extremal-perturbation",
 * "neuromask". */
const char *nm_method_name(nm_method m);
/* NM_METHOD_COUNT when unknown. */
nm_method nm_method_from_name(const char *name);

/* What a method's map holds: how to draw it and what to call its files. */
typedef enum nm_map_kind {
    NM_MAP_MASK = 0,        /* a mask in [0,1], 1 = kept: NeuroMask, extremal perturbation */
    NM_MAP_SIGNED,          /* an attribution of either sign, 0 = no effect: gradient x input,
                               integrated gradients, occlusion (a patch may raise the class) */
    NM_MAP_NONNEGATIVE      /* an importance >= 0: gradient, SmoothGrad, Grad-CAM, RISE,
                               meaningful perturbation (1 - its keep mask) */
} nm_map_kind;
/* The kind of `m`'s map (NM_MAP_NONNEGATIVE for an unknown method). */
nm_map_kind nm_method_map_kind(nm_method m);
/* "mask", "signed" or "nonnegative". */
const char *nm_map_kind_name(nm_map_kind k);

typedef struct nm_saliency_options {
    int target_class;       /* -1: the predicted class */
    uint64_t seed;
    int batch;              /* images per engine call for sampling methods (16) */
    int ig_steps;           /* integrated gradients: midpoint Riemann steps (32) */
    nm_baseline ig_baseline;    /* black (default), blur, mean or noise */
    int sg_samples;         /* SmoothGrad: noisy samples (32) */
    float sg_sigma;         /* ... noise std as a fraction of the image's pixel range (0.15) */
    const char *gradcam_layer;  /* NULL: the last spatial tensor with more than 1x1
                                   (nm_gradcam_layer says which) */
    int occ_patch, occ_stride;  /* occlusion: square patch and stride, pixels
                                   (0: patch = round(min(H,W) / 8) >= 2, stride = patch / 2) */
    nm_baseline occ_fill;       /* what fills the patch (black) */
    int rise_masks, rise_cell;  /* RISE: number of masks (2000), grid cells per side (7) */
    float rise_p;               /* ... keep probability (0.5) */
    int pert_steps;             /* meaningful / extremal perturbation: optimisation steps (300) */
    int pert_grid;              /* ... mask cells per side (0: min(H,W) / 4 within [2, 28]) */
    float pert_lr;              /* ... Adam learning rate (0: 0.1 meaningful, 0.05 extremal) */
    float blur_sigma;           /* Gaussian blur in pixels for every blur baseline and the
                                   perturbation methods (0: 10 * min(H,W) / 224, at least 1) */
    float mp_l1, mp_tv;         /* meaningful perturbation coefficients (mean-normalised) */
    float ep_areas[8];          /* extremal perturbation: preserved areas (0.05, 0.1, 0.2) */
    int ep_n_areas;
    nm_neuromask_options neuromask;
    const volatile sig_atomic_t *cancel;    /* optional: once *cancel is non-zero the method
                                               stops before its next engine call (and NeuroMask
                                               before its next step), NM_ERR_CANCELLED */
} nm_saliency_options;

/* The tensor Grad-CAM uses with these options (o->gradcam_layer, or the
 * default), as nm_explain does; NULL with the reason in err when the model
 * has no spatial tensor or o names one that is not among
 * nm_model_spatial_tensors (the message lists them). */
const char *nm_gradcam_layer(const nm_model *m, const nm_saliency_options *o, nm_error *err);

/* Defaults of every method's parameters; NeuroMask gets the preset
 * nm_neuromask_preset_for names ("default"). The neuromask command line
 * starts from these, so the library and the CLI explain alike. */
void nm_saliency_defaults(nm_saliency_options *o);

typedef struct nm_saliency {
    int h, w;
    float *map;             /* h x w, owned */
    int target;
    float prob;             /* target's softmax probability on the image */
    int is_mask;            /* the map is a mask in [0,1] (keep = 1) */
    int is_signed;          /* the map has both signs, 0 = no effect: draw it centred at 0 */
    double completeness_error;  /* IG: sum(attr) - (f(x) - f(baseline)); NaN otherwise */
    double seconds;
} nm_saliency;
void nm_saliency_free(nm_saliency *s);

/* One image `x` (pixel space [0,1], [C,H,W] at the model's input size);
 * `pp` is the normalisation applied after any perturbation (only scale,
 * offset, mean, std are used). Gradients are taken with respect to x through
 * the normalisation. The model is re-planned for the batch size the method
 * uses (1 for single-pass methods and meaningful perturbation, `batch` for
 * the sampling methods, the number of areas for extremal perturbation) and
 * left so. is_mask and is_signed follow nm_method_map_kind(method);
 * meaningful perturbation's map is 1 - its keep mask. */
nm_status nm_explain(nm_model *m, const nm_preprocess *pp, const float *x, nm_method method,
                     const nm_saliency_options *o, nm_saliency *out, nm_error *err);

/* ------------------------------------------------------------ evaluation */

typedef enum nm_auc_fill {
    NM_AUC_FILL_BLACK = 0,          /* 0 in pixel space */
    NM_AUC_FILL_NORMALIZED_ZERO,    /* the value that normalises to 0 (the dataset's mean colour):
                                       what RISE's code does on a normalised tensor */
    NM_AUC_FILL_BLUR,               /* RISE's blurred copy of the image (blur_kernel, blur_sigma) */
    NM_AUC_FILL_GREY,               /* 0.5 in pixel space, every channel */
    NM_AUC_FILL_IMAGE_MEAN          /* the image's own mean colour, per channel */
} nm_auc_fill;

typedef struct nm_auc_options {
    int steps;              /* perturbation steps, each changing ceil(H*W / steps) pixels
                               (all channels); the curves have steps + 1 points (default 64) */
    int blur_kernel;        /* NM_AUC_FILL_BLUR: RISE's Gaussian blur, kernel ... */
    float blur_sigma;       /* ... and sigma (11 and 5 as in RISE) */
    int batch;              /* images per engine call (default 16) */
    nm_auc_fill deletion_fill;  /* what deleted pixels become (default NM_AUC_FILL_BLACK) */
    nm_auc_fill insertion_fill; /* the image insertion starts from (default NM_AUC_FILL_BLUR);
                                   the defaults are RISE's protocol */
} nm_auc_options;
void nm_auc_defaults(nm_auc_options *o);

/* Deletion and insertion AUC (Petsiuk et al. 2018) of `map` for class
 * `target`: pixels ranked by the map (descending, ties by index); deletion
 * replaces them with o->deletion_fill, insertion reveals them on an image
 * that is o->insertion_fill everywhere (the blur's border is padded with
 * the pixel value that normalises to 0, as RISE's zero-padded blur of the
 * normalised tensor); normalised trapezoid AUC of the target's softmax
 * probability, RISE's auc(). `x` is [C,H,W] in pixel space, `map` H x W.
 * Curves (steps + 1 values) optional. A half whose AUC and curve pointers
 * are both NULL is not computed. The model is re-planned for o->batch. */
nm_status nm_deletion_insertion(nm_model *m, const nm_preprocess *pp, const float *x, const float *map,
                                int target, const nm_auc_options *o, double *deletion, double *insertion,
                                float *deletion_curve, float *insertion_curve, nm_error *err);

/* Model-randomisation sanity check (Adebayo et al. 2018): re-initialise the
 * weights of the last `n_layers` layers with parameters (Conv, Gemm, MatMul)
 * with Gaussian values of each tensor's own standard deviation (seeded).
 * Layers are Conv, Gemm and MatMul nodes with a constant float input, in
 * execution order; every constant float input (weights and bias) is
 * re-drawn, with a stream per layer, so depth n and n + 1 share their
 * layers' values. Each call starts from the trained weights (rebuilt from
 * the model bytes); n_layers <= 0 just restores them, n_layers above the
 * count randomises all. The randomisation is kept when a new batch size
 * re-plans the model. nm_model_layer_count returns the number of layers. */
int nm_model_layer_count(const nm_model *m);
nm_status nm_model_randomize(nm_model *m, int n_layers, uint64_t seed, nm_error *err);

/* Spearman rank correlation of two maps of n values (ties get mean ranks);
 * NaN when either map is constant. */
double nm_spearman(const float *a, const float *b, int n);

/* How much an h x w map's pixel order changes between neighbours: the mean,
 * over horizontally and vertically adjacent pixels, of |q_i - q_j|, where q
 * is the pixel's rank scaled to [0, 1] (ties share their mean rank). 0 for a
 * constant map, about 1/3 for independent noise; a map that is smooth at
 * the scale of s pixels scores about 1/s or less. Deletion and insertion
 * only see this order, and a map with a high value can score well on them
 * with a pattern that is no longer a region (docs/neuromask_default.md).
 * NaN for fewer than 2 pixels or out of memory. */
double nm_map_roughness(const float *map, int h, int w);

#ifdef __cplusplus
}
#endif
#endif
