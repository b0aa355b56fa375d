"""layerc.py - call a library built by `layerc build` from Python, numpy arrays in and out.

One file, no compiled extension: ctypes loads the .so and reads its descriptor,
`layerc_model()` (runtime/layerc.h; the structure below mirrors it field for
field), numpy holds the tensors.

    import numpy as np, layerc
    model = layerc.load("libcifar10.so")
    model.inputs          # (TensorSpec(name='x', shape=(None, 3, 32, 32), dtype=float32),)
    y = model(x)          # x: float32 [batch, 3, 32, 32] -> float32 [batch, 10]
    y = model.run(x, threads=2)
    s, t = two_towers(a, b)                       # several outputs: a tuple, in forward's order
    d = two_towers.run(a=a, b=b, as_dict=True)    # or a dict keyed by output name

A shape's None is the run-time batch (a named first dimension such as N);
the batch of a run is taken from the arrays.  Input dtypes are checked, not
converted: an f32 input takes float32, an i64 input int64 token ids (Python
lists are converted).  Non-contiguous arrays are copied.  Every error raised
here is a LayercError and also the built-in exception it refines (ShapeError
is a ValueError, DTypeError a TypeError, ...); an error of the library itself
carries its message and status code.
"""

import ctypes
import os
import threading
from collections import namedtuple

import numpy as np

__all__ = [
    "load", "Model", "TensorSpec", "LayercError", "LoadError", "InputError", "ShapeError", "DTypeError",
    "OutOfRangeError", "OutOfMemoryError", "RunError",
]

ABI_VERSION = 1
MAX_RANK = 8
_DTYPES = {0: np.dtype(np.float32), 1: np.dtype(np.int64)}  # layerc_dtype -> numpy
_STATUS_NAMES = {1: "LAYERC_ERR_NULL", 2: "LAYERC_ERR_BATCH", 3: "LAYERC_ERR_NOMEM", 4: "LAYERC_ERR_THREADS",
                 5: "LAYERC_ERR_INPUT", 6: "LAYERC_ERR_ARITY"}


class LayercError(Exception):
    """Every error this module raises."""


class LoadError(LayercError, OSError):
    """The file is missing, not a shared library, or not one layerc built (or of another ABI)."""


class InputError(LayercError, TypeError):
    """The wrong number of inputs, or an input name the model does not have."""


class ShapeError(LayercError, ValueError):
    """An input array's shape is not the model's (or the inputs' batches differ)."""


class DTypeError(LayercError, TypeError):
    """An input array's dtype is not the model's."""


class RunError(LayercError, RuntimeError):
    """The library refused to run: `status` is its layerc_status code, the message its error text."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status
        self.status_name = _STATUS_NAMES.get(status, f"status {status}")


class OutOfRangeError(RunError, ValueError):
    """A value the library checks is out of range: a token id, a thread count, a batch size."""


class OutOfMemoryError(RunError, MemoryError):
    """The activation memory could not be allocated."""


TensorSpec = namedtuple("TensorSpec", "name shape dtype")
TensorSpec.__doc__ = """An input or output: its name, shape (None for the run-time batch) and numpy dtype."""


class _TensorInfo(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int32), ("dtype", ctypes.c_int32), ("batch_dim", ctypes.c_int32),
                ("reserved", ctypes.c_int32), ("dims", ctypes.c_int64 * MAX_RANK)]


_VOIDPP = ctypes.POINTER(ctypes.c_void_p)
_CREATE = ctypes.CFUNCTYPE(ctypes.c_void_p)
_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_ERROR = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p)
_SET_THREADS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_RUN_MULTI = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, _VOIDPP, _VOIDPP, ctypes.c_int64, ctypes.c_void_p,
                              ctypes.c_void_p)


class _ModelDesc(ctypes.Structure):
    """layerc_model_desc of runtime/layerc.h (ABI 1), in its order."""
    _fields_ = [
        ("abi_version", ctypes.c_uint32), ("num_layers", ctypes.c_int32), ("name", ctypes.c_char_p),
        ("input", _TensorInfo), ("output", _TensorInfo), ("workspace_bytes", ctypes.c_int64),
        ("create", _CREATE), ("run", ctypes.c_void_p), ("destroy", _DESTROY), ("error", _ERROR),
        ("set_threads", _SET_THREADS), ("run_observed", ctypes.c_void_p),
        ("layer_names", ctypes.POINTER(ctypes.c_char_p)), ("layer_outputs", ctypes.POINTER(_TensorInfo)),
        ("forward", ctypes.c_void_p), ("input_id_limit", ctypes.c_int64),
        ("num_inputs", ctypes.c_int32), ("num_outputs", ctypes.c_int32),
        ("inputs", ctypes.POINTER(_TensorInfo)), ("outputs", ctypes.POINTER(_TensorInfo)),
        ("input_names", ctypes.POINTER(ctypes.c_char_p)), ("output_names", ctypes.POINTER(ctypes.c_char_p)),
        ("input_id_limits", ctypes.POINTER(ctypes.c_int64)), ("run_multi", _RUN_MULTI),
    ]


def _shape_of(info):
    dims = tuple(int(info.dims[i]) for i in range(info.rank))
    return (None,) + dims[1:] if info.batch_dim == 0 and dims else dims


def _spec(name, info):
    return TensorSpec(name.decode(), _shape_of(info), _DTYPES[info.dtype])


def _format_shape(shape, batch_name="N"):
    items = [batch_name if d is None else str(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def load(path, threads=1):
    """Loads the library `layerc build` wrote at path; see Model."""
    return Model(path, threads)


class Model:
    """A compiled model: its library, its descriptor and one context (activation memory, threads).

    A Model may be shared between Python threads: runs take turns on its one
    context (the library releases the GIL while it computes).  Use one Model
    per thread to run concurrently.
    """

    def __init__(self, path, threads=1):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise LoadError(f"cannot open '{self.path}': no such file")
        try:
            # RTLD_LOCAL: every model has its own runtime and its own layerc_model symbol.
            self._lib = ctypes.CDLL(os.path.abspath(self.path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as e:
            raise LoadError(f"cannot load '{self.path}': {e}") from None
        try:
            entry = self._lib.layerc_model
        except AttributeError:
            raise LoadError(f"'{self.path}' is not a layerc library: it has no layerc_model() "
                            "(build one with `layerc build MODEL.nn -o LIB.so`)") from None
        entry.restype = ctypes.POINTER(_ModelDesc)
        entry.argtypes = []
        self._desc = entry().contents
        if self._desc.abi_version != ABI_VERSION:
            raise LoadError(f"'{self.path}' has layerc ABI version {self._desc.abi_version}; "
                            f"this layerc.py reads version {ABI_VERSION}")
        d = self._desc
        self.name = d.name.decode()
        self.inputs = tuple(_spec(d.input_names[k], d.inputs[k]) for k in range(d.num_inputs))
        self.outputs = tuple(_spec(d.output_names[k], d.outputs[k]) for k in range(d.num_outputs))
        self.input_id_limits = tuple(int(d.input_id_limits[k]) for k in range(d.num_inputs))
        self.layers = tuple((d.layer_names[i].decode(), _shape_of(d.layer_outputs[i])) for i in range(d.num_layers))
        self.batched = d.input.batch_dim == 0
        self._lock = threading.Lock()
        self._ctx = d.create()
        if not self._ctx:
            raise OutOfMemoryError(f"{self.name}: cannot allocate the activation memory", 3)
        self._threads = 1
        self.set_threads(threads)

    # ---- lifetime ----

    def close(self):
        """Frees the context (also done when the Model is garbage-collected)."""
        ctx, self._ctx = getattr(self, "_ctx", None), None
        if ctx:
            self._desc.destroy(ctx)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        def specs(items):
            return ", ".join(f"{s.name}: {s.dtype}{_format_shape(s.shape)}" for s in items)
        return f"<layerc.Model {self.name} ({specs(self.inputs)}) -> ({specs(self.outputs)}) from '{self.path}'>"

    # ---- threads ----

    @property
    def threads(self):
        return self._threads

    def set_threads(self, threads):
        """Threads used by the following runs (1 to 256); the results do not depend on it."""
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
            raise TypeError(f"{self.name}: threads must be an int, got {type(threads).__name__}")
        with self._lock:
            self._check_open()
            if threads != self._threads:
                self._check(self._desc.set_threads(self._ctx, int(threads)))
                self._threads = int(threads)

    # ---- running ----

    def __call__(self, *args, **kwargs):
        return self.run(*args, **kwargs)

    def run(self, *args, threads=None, as_dict=False, **named):
        """Runs the model: inputs positionally (in declaration order), by name, or as one dict.

        Returns the output array, or for several outputs a tuple in forward's
        order (a dict keyed by output name with as_dict=True, also for one).
        threads, when given, is set for this run and the ones after it.
        """
        arrays = [self._prepare(spec, value) for spec, value in zip(self.inputs, self._bind(args, named))]
        batch = self._batch_of(arrays)
        outputs = [np.empty(self._output_shape(spec, batch), dtype=spec.dtype) for spec in self.outputs]
        if threads is not None:
            self.set_threads(threads)
        if batch > 0:
            self._run(arrays, outputs, batch)
        if as_dict:
            return self._as_dict(outputs)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _bind(self, args, named):
        """The input values in declaration order, from positional, keyword or dict arguments."""
        names = [s.name for s in self.inputs]
        expected = f"{len(names)} input{'s' if len(names) != 1 else ''} ({', '.join(names)})"
        if len(args) == 1 and isinstance(args[0], dict) and not named:
            named, args = dict(args[0]), ()
        if args and named:
            raise InputError(f"{self.name}: give the inputs either in order or by name, not both")
        if named:
            unknown = [k for k in named if k not in names]
            if unknown:
                raise InputError(f"{self.name} has no input '{unknown[0]}': it takes {expected}")
            missing = [k for k in names if k not in named]
            if missing:
                raise InputError(f"{self.name}: input '{missing[0]}' is missing: it takes {expected}")
            return [named[k] for k in names]
        if len(args) != len(names):
            raise InputError(f"{self.name} takes {expected}, got {len(args)}")
        return list(args)

    def _prepare(self, spec, value):
        """value as a C-contiguous native array of spec's dtype and shape, or a clear error."""
        where = f"{self.name} input '{spec.name}'"
        if not isinstance(value, np.ndarray):
            value = self._from_sequence(where, spec, value)
        if value.dtype.kind != spec.dtype.kind or value.dtype.itemsize != spec.dtype.itemsize:
            what = "float32" if spec.dtype.kind == "f" else "int64 token ids"
            raise DTypeError(f"{where}: expected {what}, got {value.dtype} "
                             f"(convert with .astype(numpy.{spec.dtype.name}))")
        self._check_shape(where, spec, value.shape)
        return np.ascontiguousarray(value, dtype=spec.dtype)  # a copy only when strided or byte-swapped

    @staticmethod
    def _from_sequence(where, spec, value):
        try:
            array = np.asarray(value)
        except ValueError as e:  # a ragged list
            raise ShapeError(f"{where}: cannot make an array of this {type(value).__name__}: {e}") from None
        if spec.dtype.kind == "f" and array.dtype.kind in "fiub":
            return array.astype(spec.dtype)
        if spec.dtype.kind == "i" and array.dtype.kind in "iu":
            return array.astype(spec.dtype)
        raise DTypeError(f"{where}: expected {'float32' if spec.dtype.kind == 'f' else 'int64 token ids'}, "
                         f"got {type(value).__name__} of {array.dtype}")

    def _check_shape(self, where, spec, shape):
        want = spec.shape
        fits = len(shape) == len(want) and all(w is None or w == s for w, s in zip(want, shape))
        if fits:
            return
        message = f"{where}: expected shape {_format_shape(want)}, got {_format_shape(shape)}"
        if self.batched and len(shape) == len(want) - 1 and tuple(shape) == tuple(want[1:]):
            message += f": one sample needs the batch dimension too ({spec.name}[None])"
        elif not self.batched and len(shape) == len(want) and tuple(shape[1:]) == tuple(want[1:]):
            message += f": the model's batch is fixed at {want[0]}"
        raise ShapeError(message)

    def _batch_of(self, arrays):
        if not self.batched:
            return self._desc.input.dims[0]
        batches = [a.shape[0] for a in arrays]
        if len(set(batches)) > 1:
            counts = ", ".join(f"'{s.name}' has {b} sample{'s' if b != 1 else ''}" for s, b in zip(self.inputs, batches))
            raise ShapeError(f"{self.name}: the inputs share one batch, but {counts}")
        return batches[0]

    def _output_shape(self, spec, batch):
        return tuple(batch if d is None else d for d in spec.shape)

    def _run(self, arrays, outputs, batch):
        ins = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
        outs = (ctypes.c_void_p * len(outputs))(*[o.ctypes.data for o in outputs])
        with self._lock:
            self._check_open()
            # A fixed batch is passed as 0: the library's "the declared one".
            status = self._desc.run_multi(self._ctx, ins, outs, batch if self.batched else 0, None, None)
            self._check(status)

    def _as_dict(self, outputs):
        names = [s.name for s in self.outputs]
        if len(set(names)) != len(names):
            raise InputError(f"{self.name}: two outputs are both named {sorted(n for n in names if names.count(n) > 1)[0]!r}; "
                             "use the tuple (as_dict=False)")
        return dict(zip(names, outputs))

    def _check_open(self):
        if not self._ctx:
            raise LayercError(f"{self.name}: the model is closed")

    def _check(self, status):
        """Raises the library's error for a nonzero status (called with the lock held)."""
        if status == 0:
            return
        message = f"{self.name}: {self._desc.error(self._ctx).decode(errors='replace')}"
        cls = OutOfMemoryError if status == 3 else OutOfRangeError if status in (2, 4, 5) else RunError
        raise cls(message, status)
