"""ctypes view of include/neuromask.h: the structs and functions the package uses.

The structs mirror the header field by field; tests/test_python_layout checks
their sizes and offsets against the C compiler's."""
import ctypes
import glob
import os
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int64, c_size_t,
                    c_uint64, c_void_p)

SONAME = "libneuromask.so.0.1"

# nm_status
OK, ERR_IO, ERR_PARSE, ERR_UNSUPPORTED, ERR_SHAPE, ERR_MEMORY, ERR_LIMIT, ERR_ARG, ERR_NUMERIC, \
    ERR_INTERNAL, ERR_CANCELLED = range(11)
MAX_DIMS = 8
sig_atomic_t = c_int  # glibc on Linux


class Error(Structure):
    _fields_ = [("code", c_int), ("msg", c_char * 512)]


class Shape(Structure):
    _fields_ = [("ndim", c_int), ("dims", c_int64 * MAX_DIMS)]


class LoadOptions(Structure):
    _fields_ = [("batch", c_int), ("max_elements", c_int64), ("max_bytes", c_int64), ("precision", c_int)]


class Image(Structure):
    _fields_ = [("w", c_int), ("h", c_int), ("c", c_int), ("data", POINTER(c_float))]


class Preprocess(Structure):
    _fields_ = [("resize_short", c_int), ("crop_fraction", c_float), ("crop", c_int), ("size", c_int),
                ("scale", c_float), ("offset", c_float), ("mean", c_float * 3), ("std", c_float * 3)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_int, POINTER(c_float), c_int)


class NeuromaskOptions(Structure):
    _fields_ = [("target_class", c_int), ("l_pred", c_float), ("l_sparse", c_float), ("l_smooth", c_float),
                ("temperature", c_float), ("init_range", c_float), ("kernel", c_int), ("optimizer", c_int),
                ("lr", c_float), ("steps", c_int), ("tol", c_float), ("window", c_int), ("early_stop", c_int),
                ("seed", c_uint64), ("baseline", c_int), ("blur_sigma", c_float), ("grid", c_int),
                ("init_w", POINTER(c_float)), ("progress", PROGRESS_FN), ("progress_ctx", c_void_p),
                ("cancel", POINTER(sig_atomic_t)), ("init", c_int), ("sparsity", c_int), ("l_delete", c_float),
                ("alt_fill", c_int), ("alt_baseline", c_int), ("average", c_int), ("calibrate", c_int)]


class Explanation(Structure):
    _fields_ = [("batch", c_int), ("h", c_int), ("w", c_int), ("mask", POINTER(c_float)),
                ("target", POINTER(c_int)), ("prob_before", POINTER(c_float)), ("prob_after", POINTER(c_float)),
                ("top_after", POINTER(c_int)), ("steps", POINTER(c_int)), ("converged_at", POINTER(c_int)),
                ("loss_pred", POINTER(c_float)), ("loss_sparse", POINTER(c_float)),
                ("loss_smooth", POINTER(c_float)), ("history", POINTER(c_float)), ("history_len", c_int),
                ("seconds", c_double)]


class SaliencyOptions(Structure):
    _fields_ = [("target_class", c_int), ("seed", c_uint64), ("batch", c_int), ("ig_steps", c_int),
                ("ig_baseline", c_int), ("sg_samples", c_int), ("sg_sigma", c_float), ("gradcam_layer", c_char_p),
                ("occ_patch", c_int), ("occ_stride", c_int), ("occ_fill", c_int), ("rise_masks", c_int),
                ("rise_cell", c_int), ("rise_p", c_float), ("pert_steps", c_int), ("pert_grid", c_int),
                ("pert_lr", c_float), ("blur_sigma", c_float), ("mp_l1", c_float), ("mp_tv", c_float),
                ("ep_areas", c_float * 8), ("ep_n_areas", c_int), ("neuromask", NeuromaskOptions),
                ("cancel", POINTER(sig_atomic_t))]


class Saliency(Structure):
    _fields_ = [("h", c_int), ("w", c_int), ("map", POINTER(c_float)), ("target", c_int), ("prob", c_float),
                ("is_mask", c_int), ("completeness_error", c_double), ("seconds", c_double)]


class AucOptions(Structure):
    _fields_ = [("steps", c_int), ("blur_kernel", c_int), ("blur_sigma", c_float), ("batch", c_int),
                ("deletion_fill", c_int), ("insertion_fill", c_int)]


STRUCTS = {"nm_error": Error, "nm_shape": Shape, "nm_load_options": LoadOptions, "nm_image": Image,
           "nm_preprocess": Preprocess, "nm_neuromask_options": NeuromaskOptions, "nm_explanation": Explanation,
           "nm_saliency_options": SaliencyOptions, "nm_saliency": Saliency, "nm_auc_options": AucOptions}

P = POINTER
_E = P(Error)
_M = c_void_p  # nm_model *
_FP = P(c_float)
# name: (restype, argtypes)
_FUNCTIONS = {
    "nm_status_name": (c_char_p, [c_int]),
    "nm_model_load_file": (c_int, [c_char_p, P(LoadOptions), P(c_void_p), _E]),
    "nm_model_free": (None, [_M]),
    "nm_model_set_batch": (c_int, [_M, c_int, _E]),
    "nm_model_input_shape": (Shape, [_M]),
    "nm_model_output_shape": (Shape, [_M]),
    "nm_model_metadata": (c_char_p, [_M, c_char_p]),
    "nm_model_forward": (c_int, [_M, _FP, _FP, _E]),
    "nm_model_spatial_tensors": (c_int, [_M, P(c_char_p), c_int]),
    "nm_model_layer_count": (c_int, [_M]),
    "nm_model_randomize": (c_int, [_M, c_int, c_uint64, _E]),
    "nm_image_load": (c_int, [c_char_p, P(Image), _E]),
    "nm_image_free": (None, [P(Image)]),
    "nm_preprocess_parse": (c_int, [c_char_p, P(Preprocess), _E]),
    "nm_preprocess_geometry": (c_int, [P(Preprocess), P(Image), c_int, c_int, P(Image), _E]),
    "nm_preprocess_normalize": (None, [P(Preprocess), P(Image), c_int, _FP]),
    "nm_preprocess_unmap": (None, [P(Preprocess), _FP, c_int, c_int, c_int, c_int, _FP]),
    "nm_neuromask_preset": (c_int, [c_char_p, P(NeuromaskOptions), _E]),
    "nm_neuromask_preset_for": (c_char_p, [c_int]),
    "nm_neuromask_parse": (c_int, [c_char_p, P(NeuromaskOptions), _E]),
    "nm_neuromask_explain": (c_int, [_M, P(Preprocess), _FP, c_int, P(NeuromaskOptions), P(Explanation), _E]),
    "nm_explanation_free": (None, [P(Explanation)]),
    "nm_method_name": (c_char_p, [c_int]),
    "nm_method_from_name": (c_int, [c_char_p]),
    "nm_method_map_kind": (c_int, [c_int]),
    "nm_map_kind_name": (c_char_p, [c_int]),
    "nm_saliency_defaults": (None, [P(SaliencyOptions)]),
    "nm_explain": (c_int, [_M, P(Preprocess), _FP, c_int, P(SaliencyOptions), P(Saliency), _E]),
    "nm_saliency_free": (None, [P(Saliency)]),
    "nm_gradcam_layer": (c_char_p, [_M, P(SaliencyOptions), _E]),
    "nm_auc_defaults": (None, [P(AucOptions)]),
    "nm_deletion_insertion": (c_int, [_M, P(Preprocess), _FP, _FP, c_int, P(AucOptions), P(c_double),
                                      P(c_double), _FP, _FP, _E]),
    "nm_spearman": (c_double, [_FP, _FP, c_int]),
    "nm_map_roughness": (c_double, [_FP, c_int, c_int]),
}


def _candidates():
    env = os.environ.get("NEUROMASK_LIBRARY")
    if env:
        return [env]  # told exactly which: no fallback that could load another build
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "libneuromask.so*")))
    # An install prefix's lib dir seen from PREFIX/lib/pythonX.Y/site-packages/neuromask.
    prefix_lib = os.path.normpath(os.path.join(here, "..", "..", "..", SONAME))
    return found + [prefix_lib, SONAME]  # the last: the dynamic linker's search (ld.so.conf, LD_LIBRARY_PATH)


def load():
    """Open libneuromask.so: $NEUROMASK_LIBRARY, else one next to this package,
    else PREFIX/lib of an install prefix holding the package, else the dynamic linker's search."""
    tried = []
    for name in _candidates():
        if os.sep in name and not os.path.exists(name):
            tried.append(name + " (missing)")
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as e:
            tried.append(f"{name} ({e})")
    else:
        raise ImportError("neuromask: cannot load libneuromask.so; set NEUROMASK_LIBRARY to its path. Tried: "
                          + "; ".join(tried))
    for fname, (restype, argtypes) in _FUNCTIONS.items():
        f = getattr(lib, fname)
        f.restype, f.argtypes = restype, argtypes
    return lib


lib = load()
