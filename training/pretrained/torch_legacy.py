"""Reads a PyTorch state dict saved in the legacy (non-zip) ``torch.save`` format, without torch.

The file is a run of pickles followed by raw bytes: a magic number, the protocol version, system
information, the state dict itself (whose tensors name their storages by persistent id), the
list of storage keys, and then, for each key in that order, an int64 element count and the
storage's bytes. A tensor is a view into its storage with an offset and strides, and some
tensors in real checkpoints are not contiguous, so the view is rebuilt from the strides rather
than by reshaping.

Unpickling runs whatever callables a file names. The unpickler below resolves only the four
globals a state dict needs and refuses every other name, so a hostile file fails before any of
its code runs.
"""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for a global outside the allow-list; nothing it names was called."""


class LegacyCheckpointError(ValueError):
    """The file is not a legacy PyTorch state dict, or its storages do not add up."""


@dataclass(frozen=True)
class _StorageType:
    """What ``torch.FloatStorage`` and its kin resolve to: a dtype, deliberately not callable."""

    dtype: np.dtype


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = field(default=None, repr=False)  # read after the pickle that names it


@dataclass(frozen=True)
class _TensorView:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> _TensorView:
    # The storage's bytes come after this pickle, so the tensor stays a view until they are read.
    if not isinstance(storage, _Storage):
        raise LegacyCheckpointError(f"a tensor's storage is {type(storage).__name__}, not a persistent storage")
    return _TensorView(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(n) for n in stride))


def _allowed_globals() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    }
    allowed.update({("torch", name): _StorageType(np.dtype(dtype)) for name, dtype in _STORAGE_DTYPES.items()})
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the allowed globals; storages become placeholders keyed by their id."""

    def __init__(self, file, allowed: dict[tuple[str, str], object], storages: dict[str, _Storage]):
        super().__init__(file)
        self._allowed = allowed
        self._storages = storages

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            valid = ", ".join(sorted({f"{m}.{n}" for m, n in self._allowed if m != "torch"}) + ["torch.*Storage"])
            raise UnsafePickleError(f"refusing to load {module}.{name} from a checkpoint; allowed: {valid}") from None

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 6 and saved_id[0] == "storage"):
            raise LegacyCheckpointError(f"unknown persistent id {saved_id!r:.80}; expected a storage")
        _, storage_type, key, _location, numel, view = saved_id
        if not isinstance(storage_type, _StorageType):
            raise LegacyCheckpointError(f"storage {key!r} has type {storage_type!r:.80}, not a torch storage")
        if view is not None:
            raise LegacyCheckpointError(f"storage {key!r} is a storage view, which this reader does not support")
        if key not in self._storages:
            self._storages[key] = _Storage(str(key), storage_type.dtype, int(numel))
        return self._storages[key]


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a legacy-format state dict, as contiguous numpy arrays in file order.

    Args:
        path: A file written by ``torch.save(state_dict, f, _use_new_zipfile_serialization=False)``.

    Returns:
        Tensor name → array with the tensor's shape and dtype.

    Raises:
        UnsafePickleError: The file names a global outside the allow-list.
        LegacyCheckpointError: The file is not in the legacy format, is big-endian, holds
            something other than a mapping of names to tensors, or a storage is short or a
            tensor reaches outside its storage.
    """
    storages: dict[str, _Storage] = {}
    try:
        with open(path, "rb") as handle:
            _check_header(_RestrictedUnpickler(handle, {}, storages), path)  # the header needs no globals
            state = _RestrictedUnpickler(handle, _allowed_globals(), storages).load()
            keys = _RestrictedUnpickler(handle, {}, storages).load()
            if not isinstance(keys, list) or set(keys) != set(storages):
                raise LegacyCheckpointError(f"{path}: the storage list does not match the storages the state dict uses")
            for key in keys:
                _read_storage(handle, storages[key], path)
    except EOFError as error:
        raise LegacyCheckpointError(f"{path} ends before its last pickle") from error
    if not isinstance(state, dict):
        raise LegacyCheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    return {str(name): _materialise(name, view) for name, view in state.items()}


def _check_header(unpickler: _RestrictedUnpickler, path) -> None:
    magic = unpickler.load()
    if magic != MAGIC_NUMBER:
        raise LegacyCheckpointError(f"{path} is not a legacy torch.save file (it starts with {magic!r:.40}, not "
                                    f"the magic number {MAGIC_NUMBER:#x}); a zip-format file needs torch.load")
    protocol, system = unpickler.load(), unpickler.load()
    if protocol != PROTOCOL_VERSION:
        raise LegacyCheckpointError(f"{path} has protocol version {protocol!r:.40}, expected {PROTOCOL_VERSION}")
    if not (isinstance(system, dict) and system.get("little_endian") is True):
        raise LegacyCheckpointError(f"{path} was written on a big-endian machine or lacks system information")


def _read_storage(handle, storage: _Storage, path) -> None:
    itemsize = storage.dtype.itemsize
    header = handle.read(8)
    count = int.from_bytes(header, "little", signed=True) if len(header) == 8 else -1
    if count != storage.numel:
        raise LegacyCheckpointError(f"{path}: storage {storage.key} holds {count} elements, "
                                    f"the pickle says {storage.numel}")
    raw = handle.read(count * itemsize)
    if len(raw) != count * itemsize:
        raise LegacyCheckpointError(f"{path}: storage {storage.key} is cut short "
                                    f"({len(raw)} of {count * itemsize} bytes)")
    storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))


def _materialise(name, view) -> np.ndarray:
    if not isinstance(view, _TensorView):
        raise LegacyCheckpointError(f"entry {name!r} is a {type(view).__name__}, not a tensor")
    data = view.storage.data
    if data is None:
        raise LegacyCheckpointError(f"tensor {name!r}: storage {view.storage.key} is not in the file")
    if len(view.shape) != len(view.strides) or min(view.strides, default=0) < 0 or view.offset < 0:
        raise LegacyCheckpointError(f"tensor {name!r}: shape {view.shape} and strides {view.strides} do not match")
    if 0 in view.shape:
        return np.zeros(view.shape, dtype=data.dtype)
    # as_strided does not check bounds, so the furthest element is checked here.
    last = view.offset + sum((size - 1) * stride for size, stride in zip(view.shape, view.strides))
    if last >= data.size:
        raise LegacyCheckpointError(f"tensor {name!r} reaches element {last} of storage {view.storage.key}, "
                                    f"which holds {data.size}")
    strided = np.lib.stride_tricks.as_strided(data[view.offset:], shape=view.shape,
                                              strides=tuple(s * data.itemsize for s in view.strides), writeable=False)
    return np.ascontiguousarray(strided)
