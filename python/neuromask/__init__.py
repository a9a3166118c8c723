"""neuromask: explain image classifiers exported to ONNX, from Python.

Pure Python over libneuromask.so (ctypes); images and maps are numpy arrays.

    import neuromask
    model = neuromask.Model("models/fashion_cnn.onnx", preprocess="fashion")
    ex = model.explain("data/fashion/0_Ankle_boot.png")          # NeuroMask
    ex.map, ex.image_map, ex.target, ex.probabilities, ex.seconds
    model.evaluate("data/fashion/0_Ankle_boot.png", ex).deletion

See docs/python.md."""
import ctypes
import math
import os
import re
import signal
import threading
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from . import _lib
from ._lib import lib

__all__ = ["Model", "Explanation", "Classification", "Evaluation", "NeuromaskError", "METHODS", "BASELINES",
           "spearman", "roughness"]
__version__ = "0.1.0"

METHODS = tuple(lib.nm_method_name(i).decode() for i in range(lib.nm_method_from_name(b"")))
BASELINES = ("black", "blur", "mean", "noise")  # nm_baseline, in order
_AUC_FILLS = ("black", "mean", "blur", "grey", "image-mean")  # nm_auc_fill, in order ("mean": the value
# that normalises to 0, as `neuromask eval --deletion-fill mean`)


class NeuromaskError(Exception):
    """A call of the library failed: `status` is the nm_status name (e.g.
    "parse"), `code` its value, and the message is the library's."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.status = lib.nm_status_name(code).decode()


def _check(status: int, err: _lib.Error) -> None:
    if status == _lib.ERR_CANCELLED:
        raise KeyboardInterrupt(err.msg.decode(errors="replace"))
    if status != _lib.OK:
        raise NeuromaskError(status, err.msg.decode(errors="replace"))


def _fptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _enum(value, names, what):
    if isinstance(value, int):
        return value
    try:
        return names.index(value)
    except ValueError:
        raise ValueError(f"{what}: unknown value {value!r} (one of {', '.join(names)})") from None


def _interruptible(call):
    """Runs call(cancel) with cancel a sig_atomic_t the library polls. In the
    main thread, the call runs in a worker thread while this one waits, with a
    SIGINT handler that sets the flag, so Ctrl-C stops the library at its next
    step; the library then returns NM_ERR_CANCELLED, which _check turns into
    KeyboardInterrupt."""
    cancel = _lib.sig_atomic_t(0)
    if threading.current_thread() is not threading.main_thread():
        return call(cancel)
    result = []
    worker = threading.Thread(target=lambda: result.append(call(cancel)), daemon=True)

    def on_sigint(signum, frame):
        cancel.value = 1

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.05)
    finally:
        # The worker holds `cancel`; wait for it even if this thread is interrupted otherwise.
        cancel.value = 1 if worker.is_alive() else cancel.value
        worker.join()
        signal.signal(signal.SIGINT, previous)
    return result[0]


@dataclass
class Classification:
    """One image's classes, most probable first."""
    classes: np.ndarray        # int, the top-k class indices
    probabilities: np.ndarray  # their softmax probabilities
    labels: List[Optional[str]]
    all_probabilities: np.ndarray  # softmax over every class

    @property
    def top(self) -> int:
        return int(self.classes[0])


@dataclass
class Explanation:
    """An explanation of one image. `map` is at the model's input size (what
    the model saw after resizing and cropping); `image_map` is the same map
    on the image's own pixels (nm_preprocess_unmap: 0 outside what the crop
    kept). For NeuroMask and extremal perturbation the map is a mask in
    [0, 1] (1 = kept); for the others higher means more important."""
    method: str
    map: np.ndarray
    image_map: np.ndarray
    target: int
    label: Optional[str]
    prob: float                 # the target's probability on the image
    probabilities: np.ndarray   # softmax over the classes on the image
    kind: str
    seconds: float              # the library's time for the explanation
    extra: dict = field(default_factory=dict)  # method-specific: NeuroMask's prob_after, steps, ...


@dataclass
class Evaluation:
    """Deletion / insertion (Petsiuk et al. 2018, RISE's auc) of a map for its
    target, and how rough the map's pixel order is (nm_map_roughness)."""
    deletion: float
    insertion: float
    deletion_curve: np.ndarray
    insertion_curve: np.ndarray
    roughness: float
    target: int


def spearman(a, b) -> float:
    """Spearman rank correlation of two maps of the same size (NaN if one is constant)."""
    a = np.ascontiguousarray(a, dtype=np.float32).ravel()
    b = np.ascontiguousarray(b, dtype=np.float32).ravel()
    if a.size != b.size:
        raise ValueError(f"spearman: maps of {a.size} and {b.size} values")
    return float(lib.nm_spearman(_fptr(a), _fptr(b), a.size))


def roughness(map_) -> float:
    """nm_map_roughness of an H x W map: 0 constant, about 1/3 for noise."""
    m = np.ascontiguousarray(map_, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"roughness: need an H x W map, got shape {m.shape}")
    return float(lib.nm_map_roughness(_fptr(m), m.shape[0], m.shape[1]))


def _probabilities(out: np.ndarray) -> np.ndarray:
    """Softmax of each row of the model's output, or the row as it is when it
    already is a distribution (as `neuromask classify`)."""
    out = out.astype(np.float64)
    rows = []
    for row in out:
        if np.all((row >= 0) & (row <= 1)) and abs(row.sum() - 1) < 1e-3:
            rows.append(row)
        else:
            e = np.exp(row - row.max())
            rows.append(e / e.sum())
    return np.array(rows, dtype=np.float32)


class Model:
    """An ONNX image classifier loaded by libneuromask.

    preprocess: a recipe name (cifar, torchvision, darknet, inception, fashion)
    or a spec as `neuromask explain --preprocess` takes; None uses the model's
    "neuromask.preprocess" metadata. labels: a list of class names, a file of
    one name per line, or None (the model's "neuromask.class_names" metadata, as
    neuromask annotate writes it, or the older "neuromask.labels", if any).
    """

    def __init__(self, path, preprocess=None, labels=None, precision="fp32", max_bytes=0):
        self._m = ctypes.c_void_p()
        self.path = os.fspath(path)
        err = _lib.Error()
        opt = _lib.LoadOptions(batch=1, max_bytes=int(max_bytes),
                               precision=_enum(precision, ("fp32", "bf16"), "precision"))
        _check(lib.nm_model_load_file(self.path.encode(), ctypes.byref(opt), ctypes.byref(self._m), err), err)
        shape = lib.nm_model_input_shape(self._m)
        if shape.ndim != 4:
            self.close()
            raise NeuromaskError(_lib.ERR_SHAPE, f"{self.path}: input is not [N, C, H, W]")
        self.channels, self.height, self.width = (int(d) for d in shape.dims[1:4])
        out = lib.nm_model_output_shape(self._m)
        if out.ndim != 2:
            self.close()
            raise NeuromaskError(_lib.ERR_SHAPE, f"{self.path}: output is not [N, classes]")
        self.num_classes = int(out.dims[1])
        spec = preprocess if preprocess is not None else self.metadata("neuromask.preprocess")
        if spec is None:
            self.close()
            raise ValueError(f"{self.path}: no preprocessing given and no neuromask.preprocess metadata "
                             "(pass preprocess='NAME')")
        self.preprocess = spec
        self._pp = _lib.Preprocess()
        _check(lib.nm_preprocess_parse(spec.encode(), ctypes.byref(self._pp), err), err)
        self.labels = self._load_labels(labels)

    def _load_labels(self, labels):
        """As the CLI: a file has one name per line (a leading WordNet id such as
        "n01440764 " dropped); the metadata separates names by newlines or '|'."""
        if labels is None:
            # "neuromask.class_names" (neuromask annotate, '\n'-separated), else the older key
            key = "neuromask.class_names" if self.metadata("neuromask.class_names") is not None else "neuromask.labels"
            meta = self.metadata(key)
            if meta is None:
                return None
            split = key == "neuromask.class_names" or "\n" in meta
            labels = [x.rstrip("\r") for x in (meta.split("\n") if split else meta.split("|"))]
            source = f"{self.path}: metadata {key}"
        elif isinstance(labels, (str, os.PathLike)):
            source = os.fspath(labels)
            with open(source, encoding="utf-8") as f:
                labels = [re.sub(r"^n[0-9]{8}[ \t]", "", x.rstrip("\r")) for x in f.read().split("\n")]
        else:
            source = "labels"
            labels = [str(x) for x in labels]
        while labels and not labels[-1]:
            labels.pop()
        if len(labels) != self.num_classes:
            raise ValueError(f"{source}: {len(labels)} labels but the model has {self.num_classes} classes")
        return labels

    # ------------------------------------------------------------ basics
    def close(self):
        if self._m:
            lib.nm_model_free(self._m)
            self._m = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_m", None):
            self.close()

    def metadata(self, key: str) -> Optional[str]:
        v = lib.nm_model_metadata(self._m, key.encode())
        return None if v is None else v.decode()

    def label(self, cls: int) -> Optional[str]:
        return self.labels[cls] if self.labels else None

    @property
    def spatial_tensors(self) -> List[str]:
        """Names of the 4-D tensors, in execution order: the layers Grad-CAM can use."""
        n = lib.nm_model_spatial_tensors(self._m, None, 0)
        names = (ctypes.c_char_p * max(n, 1))()
        lib.nm_model_spatial_tensors(self._m, names, n)
        return [names[i].decode() for i in range(n)]

    def _set_batch(self, n: int):
        # The library's calls re-plan the model for the batch they use; ask it.
        if lib.nm_model_input_shape(self._m).dims[0] != n:
            err = _lib.Error()
            _check(lib.nm_model_set_batch(self._m, n, err), err)

    # ------------------------------------------------------------ images
    def _image(self, image):
        """(pixels [C, H, W] float32 in [0, 1] at the model's input size, (h0, w0) of the image)."""
        err = _lib.Error()
        src = _lib.Image()
        keep = None
        if isinstance(image, (str, os.PathLike)):
            _check(lib.nm_image_load(os.fspath(image).encode(), ctypes.byref(src), err), err)
            owned = True
        else:
            keep = _hwc_pixels(image)
            h, w, c = keep.shape
            src = _lib.Image(w=w, h=h, c=c, data=_fptr(keep))
            owned = False
        view = _lib.Image()
        try:
            status = lib.nm_preprocess_geometry(ctypes.byref(self._pp), ctypes.byref(src), self.height, self.width,
                                                ctypes.byref(view), err)
            _check(status, err)
            identity = _lib.Preprocess(scale=1, std=(1, 1, 1))
            x = np.empty((self.channels, self.height, self.width), np.float32)
            lib.nm_preprocess_normalize(ctypes.byref(identity), ctypes.byref(view), self.channels, _fptr(x))
            return x, (src.h, src.w)
        finally:
            lib.nm_image_free(ctypes.byref(view))
            if owned:
                lib.nm_image_free(ctypes.byref(src))

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        """Pixels [.., C, H, W] in [0, 1] -> the model's input (the recipe's value transform)."""
        c = self.channels
        mean = np.array(self._pp.mean[:c], np.float32).reshape(c, 1, 1)
        std = np.array(self._pp.std[:c], np.float32).reshape(c, 1, 1)
        return ((x * np.float32(self._pp.scale) + np.float32(self._pp.offset) - mean) / std).astype(np.float32)

    def _forward(self, inputs: np.ndarray) -> np.ndarray:
        """Logits of a batch of model inputs [N, C, H, W], at any N."""
        n = inputs.shape[0]
        try:
            self._set_batch(n)
        except NeuromaskError as e:
            if e.code != _lib.ERR_SHAPE or n == 1:
                raise
            return np.concatenate([self._forward(inputs[i:i + 1]) for i in range(n)])  # a graph fixed at batch 1
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        out = np.empty((n, self.num_classes), np.float32)
        err = _lib.Error()
        _check(lib.nm_model_forward(self._m, _fptr(inputs), _fptr(out), err), err)
        return out

    # ------------------------------------------------------------ calls
    def classify(self, images, top: int = 5):
        """Classes of an image or a list of images (paths, PIL images or
        arrays): a Classification, or a list of them for a list."""
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        if not batch:
            return []
        x = np.stack([self._image(im)[0] for im in batch])
        probs = _probabilities(self._forward(self._normalize(x)))
        k = max(1, min(top, self.num_classes))
        result = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[:k]
            result.append(Classification(order, p[order], [self.label(int(c)) for c in order], p))
        return result[0] if single else result

    def explain(self, image, method: str = "neuromask", target: Optional[int] = None, seed: int = 0,
                **options) -> Explanation:
        """Explain one image (a path, a PIL image, an H x W x C uint8 array or a
        C x H x W float array in [0, 1]) for class `target` (None: the
        predicted class). Options: for NeuroMask `preset` and the keys of
        nm_neuromask_parse (steps, lr, grid, l_sparse, ...); for the other
        methods the fields of nm_saliency_options (ig_steps, ig_baseline,
        sg_samples, sg_sigma, gradcam_layer, occ_patch, occ_stride, occ_fill,
        rise_masks, rise_cell, rise_p, pert_steps, pert_grid, pert_lr,
        blur_sigma, mp_l1, mp_tv, areas, batch). Ctrl-C stops it
        (KeyboardInterrupt)."""
        code = lib.nm_method_from_name(method.encode())
        if code == len(METHODS):
            raise ValueError(f"unknown method {method!r} (one of {', '.join(METHODS)})")
        if target is not None and not 0 <= target < self.num_classes:
            raise ValueError(f"target {target}, but the model has {self.num_classes} classes")
        x, (h0, w0) = self._image(image)
        probabilities = _probabilities(self._forward(self._normalize(x[None])))[0]
        err = _lib.Error()
        cls = -1 if target is None else int(target)
        if method == "neuromask":
            o = self._neuromask_options(options, cls, seed)
            ex = _lib.Explanation()

            def run(cancel):
                o.cancel = ctypes.pointer(cancel)
                return lib.nm_neuromask_explain(self._m, ctypes.byref(self._pp), _fptr(x), 1, ctypes.byref(o),
                                                ctypes.byref(ex), err)
            status = _interruptible(run)
            _check(status, err)
            try:
                m = np.ctypeslib.as_array(ex.mask, (ex.h, ex.w)).copy()
                t, prob, seconds = ex.target[0], ex.prob_before[0], ex.seconds
                extra = {"prob_after": float(ex.prob_after[0]), "top_after": int(ex.top_after[0]),
                         "steps": int(ex.steps[0]), "converged_at": int(ex.converged_at[0]),
                         "loss": (float(ex.loss_pred[0]), float(ex.loss_sparse[0]), float(ex.loss_smooth[0]))}
            finally:
                lib.nm_explanation_free(ctypes.byref(ex))
        else:
            o = self._saliency_options(options, cls, seed)
            s = _lib.Saliency()

            def run(cancel):
                o.cancel = ctypes.pointer(cancel)
                return lib.nm_explain(self._m, ctypes.byref(self._pp), _fptr(x), code, ctypes.byref(o),
                                      ctypes.byref(s), err)
            status = _interruptible(run)
            _check(status, err)
            try:
                m = np.ctypeslib.as_array(s.map, (s.h, s.w)).copy()
                t, prob, seconds = s.target, s.prob, s.seconds
                extra = {}
                if not math.isnan(s.completeness_error):
                    extra["completeness_error"] = float(s.completeness_error)
                if code == METHODS.index("gradcam"):
                    extra["gradcam_layer"] = lib.nm_gradcam_layer(self._m, ctypes.byref(o), err).decode()
            finally:
                lib.nm_saliency_free(ctypes.byref(s))
        kind = lib.nm_map_kind_name(lib.nm_method_map_kind(code)).decode()
        return Explanation(method, m, self.unmap(m, (h0, w0)), int(t), self.label(int(t)), float(prob),
                           probabilities, kind, float(seconds), extra)

    def _neuromask_options(self, options, cls, seed):
        err = _lib.Error()
        o = _lib.NeuromaskOptions()
        preset = options.pop("preset", None) or lib.nm_neuromask_preset_for(self.height).decode()
        _check(lib.nm_neuromask_preset(preset.encode(), ctypes.byref(o), err), err)
        if options:
            spec = ",".join(f"{k}={_spec_value(v)}" for k, v in options.items())
            _check(lib.nm_neuromask_parse(spec.encode(), ctypes.byref(o), err), err)
        o.target_class, o.seed = cls, seed
        return o

    def _saliency_options(self, options, cls, seed):
        o = _lib.SaliencyOptions()
        lib.nm_saliency_defaults(ctypes.byref(o))
        o.target_class, o.seed = cls, seed
        self._layer = None
        for key, value in options.items():
            if key in ("ig_baseline", "occ_fill"):
                setattr(o, key, _enum(value, BASELINES, key))
            elif key == "gradcam_layer":
                self._layer = value.encode()  # kept alive for the call
                o.gradcam_layer = self._layer
            elif key == "areas":
                areas = [float(a) for a in value]
                if not 1 <= len(areas) <= 8:
                    raise ValueError("areas: 1 to 8 values")
                o.ep_areas[:len(areas)] = areas
                o.ep_n_areas = len(areas)
            elif key in _SALIENCY_KEYS:
                setattr(o, key, value)
            else:
                raise TypeError(f"explain: unknown option {key!r} for method other than neuromask "
                                f"(one of {', '.join(sorted(_SALIENCY_KEYS | {'ig_baseline', 'occ_fill', 'gradcam_layer', 'areas'}))})")
        return o

    def unmap(self, map_, size) -> np.ndarray:
        """A map at the model's input size onto an image of size (h0, w0), as
        the preprocessing's geometry placed it (0 where the crop cut)."""
        m = np.ascontiguousarray(map_, dtype=np.float32)
        h0, w0 = size
        out = np.empty((h0, w0), np.float32)
        lib.nm_preprocess_unmap(ctypes.byref(self._pp), _fptr(m), m.shape[0], m.shape[1], h0, w0, _fptr(out))
        return out

    def evaluate(self, image, explanation, target: Optional[int] = None, **options) -> Evaluation:
        """Deletion and insertion AUC (nm_deletion_insertion) of a map (an
        Explanation or an array at the model's input size) on `image`, for
        `target` (default: the explanation's target, else the predicted class),
        and the map's roughness. Options (the library's defaults, RISE's
        protocol, when not given): steps, batch, blur_kernel, blur_sigma,
        deletion_fill and insertion_fill (black, mean, blur, grey,
        image-mean)."""
        if isinstance(explanation, Explanation):
            m = explanation.map
            if target is None:
                target = explanation.target
        else:
            m = explanation
        m = np.ascontiguousarray(m, dtype=np.float32)
        if m.shape != (self.height, self.width):
            raise ValueError(f"evaluate: map of shape {m.shape}, the model's input is {self.height} x {self.width}")
        o = _lib.AucOptions()
        lib.nm_auc_defaults(ctypes.byref(o))
        for key, value in options.items():
            if key in ("deletion_fill", "insertion_fill"):
                setattr(o, key, _enum(value, _AUC_FILLS, key))
            elif key in ("steps", "batch", "blur_kernel", "blur_sigma"):
                setattr(o, key, value)
            else:
                raise TypeError(f"evaluate: unknown option {key!r}")
        x, _ = self._image(image)
        if target is None:
            target = int(np.argmax(self._forward(self._normalize(x[None]))[0]))
        d, i = ctypes.c_double(), ctypes.c_double()
        if o.steps < 1:
            raise ValueError(f"evaluate: steps {o.steps}")
        dc, ic = np.empty(o.steps + 1, np.float32), np.empty(o.steps + 1, np.float32)
        err = _lib.Error()
        status = lib.nm_deletion_insertion(self._m, ctypes.byref(self._pp), _fptr(x), _fptr(m), int(target),
                                           ctypes.byref(o), ctypes.byref(d), ctypes.byref(i), _fptr(dc), _fptr(ic),
                                           err)
        _check(status, err)
        return Evaluation(d.value, i.value, dc, ic, roughness(m), int(target))

    @property
    def layer_count(self) -> int:
        """Layers with parameters (Conv, Gemm, MatMul) that randomize() can reach."""
        return lib.nm_model_layer_count(self._m)

    def randomize(self, n_layers: int, seed: int = 0):
        """Model-randomisation sanity check (Adebayo et al.): re-draw the
        weights of the last n_layers layers; 0 restores the trained weights."""
        err = _lib.Error()
        _check(lib.nm_model_randomize(self._m, n_layers, seed, err), err)


_SALIENCY_KEYS = {"batch", "ig_steps", "sg_samples", "sg_sigma", "occ_patch", "occ_stride", "rise_masks", "rise_cell",
                  "rise_p", "pert_steps", "pert_grid", "pert_lr", "blur_sigma", "mp_l1", "mp_tv"}


def _spec_value(v):
    if isinstance(v, bool):
        return int(v)
    return v


def _hwc_pixels(image) -> np.ndarray:
    """An image as H x W x C float32 in [0, 1] (C = 1 or 3)."""
    if not isinstance(image, np.ndarray):
        try:
            from PIL import Image as PILImage  # optional
        except ImportError:
            PILImage = None
        if PILImage is not None and isinstance(image, PILImage.Image):
            image = np.asarray(image.convert("L" if image.mode in ("1", "L", "I", "I;16", "F") else "RGB"))
        else:
            raise TypeError(f"image: need a path, a PIL image or a numpy array, got {type(image).__name__}")
    a = image
    if a.dtype == np.uint8:
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3 or a.shape[2] not in (1, 3):
            raise ValueError(f"image: a uint8 array must be H x W x C with C = 1 or 3, got shape {a.shape}")
        return np.ascontiguousarray(a, dtype=np.float32) / np.float32(255)
    if np.issubdtype(a.dtype, np.floating):
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[0] not in (1, 3):
            raise ValueError(f"image: a float array must be C x H x W with C = 1 or 3, got shape {a.shape}")
        if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
            raise ValueError("image: a float array must hold pixel values in [0, 1] (before normalisation)")
        return np.ascontiguousarray(np.transpose(a, (1, 2, 0)), dtype=np.float32)
    raise TypeError(f"image: unsupported array dtype {a.dtype} (uint8 H x W x C or float C x H x W)")
