"""The classifier's forward pass on LiteRT: the verdict, the fracture map and the radiograph
check's activation summary without TensorFlow.

The model directory ships a ``.tflite`` beside the ``.keras``, converted from the Keras model
(:func:`training.litert_export.convert`, run by ``python -m training.litert_export`` and by the
trainers) with the same
outputs as :func:`core.classifier.compile_forward` returns for :func:`core.classifier.pass_extras`:
softmax probabilities (N, classes), the activation summary (N, D) and, for a model with a map of
its own, its cell logits (N, g, g, 1). ``metadata.json`` records its file name and sha256
(:class:`core.metadata.LiteRTRecord`); a file whose sha256 differs is refused (:class:`LiteRTError`).

:class:`LiteRTForward` imports only ``ai_edge_litert`` (about 0.2 s and 36 MB, against seconds
and about 700 MB for TensorFlow). A LiteRT interpreter is not safe to share between threads, so
each thread that calls the pass gets an interpreter of its own, built from the same bytes.

Convert from the Keras model, never with ``from_concrete_functions`` on a lambda-wrapped
``tf.function``: that once produced a 68 kB file without weights that always answered 0.5.
:func:`training.litert_export.convert` checks the file it makes against Keras (:func:`check_parity`)
before anything writes it.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

LITERT_SUFFIX = ".tflite"
# What a converted file must agree with Keras to (issue 22): P and the fracture map (in [0, 1]).
PARITY_PROBABILITY = 1e-5
PARITY_MAP = 1e-4


class LiteRTError(ValueError):
    """A ``.tflite`` that cannot serve its model: missing, corrupt, or not the file the metadata names."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_checked(path: str | Path, sha256: str) -> bytes:
    """The bytes of ``path`` if their sha256 is ``sha256``.

    Raises:
        FileNotFoundError: if the file is missing.
        LiteRTError: if its sha256 differs from the one recorded in ``metadata.json``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LiteRT model {path} named in metadata.json is missing")
    data = path.read_bytes()
    found = sha256_of(data)
    if found != sha256:
        raise LiteRTError(f"LiteRT model {path} does not match metadata.json: sha256 {found}, expected {sha256} "
                          "(corrupt, or converted from another model; rerun python -m training.litert_export)")
    return data


class LiteRTForward:
    """``images (N, S, S, 1) float32 in 0..255 -> (probabilities, summary[, cells])`` on LiteRT.

    Args:
        model_content: the bytes of the ``.tflite`` (checked by :func:`read_checked`).
        n_classes: the width of the probabilities output, which tells it from the summary.
        threads: the interpreter's CPU threads (one per interpreter; the callers parallelise).

    Raises:
        LiteRTError: if the bytes are not a LiteRT model with the classifier's outputs.
    """

    def __init__(self, model_content: bytes, n_classes: int = 2, threads: int = 1, where: str = "LiteRT model"):
        self._content = model_content
        self._threads = threads
        self._where = where
        self._n_classes = n_classes
        self._local = threading.local()
        interpreter = self._interpreter()  # fails here, at load, on a corrupt file
        self._order = _output_order(interpreter.get_output_details(), n_classes, where)
        self.input_size = int(interpreter.get_input_details()[0]["shape"][1])

    @property
    def has_map(self) -> bool:
        return len(self._order) == 3

    def _interpreter(self):
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            try:
                interpreter = Interpreter(model_content=self._content, num_threads=self._threads)
                interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as error:
                raise LiteRTError(f"{self._where} is not a usable LiteRT model: {error}") from None
            self._local.interpreter, self._local.rows = interpreter, None
        return interpreter

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        images = np.ascontiguousarray(images, np.float32)
        interpreter = self._interpreter()
        index = interpreter.get_input_details()[0]["index"]
        if self._local.rows != len(images):
            interpreter.resize_tensor_input(index, images.shape, strict=False)
            interpreter.allocate_tensors()
            self._local.rows = len(images)
        interpreter.set_tensor(index, images)
        interpreter.invoke()
        details = interpreter.get_output_details()
        return tuple(interpreter.get_tensor(details[position]["index"]).copy() for position in self._order)


def _output_order(details: list[dict], n_classes: int, where: str) -> tuple[int, ...]:
    """Positions in ``details`` of the probabilities, the summary and (if any) the cells, told
    apart by shape: (N, classes), (N, D) with D != classes, (N, g, g, 1)."""
    ranks = [len(detail["shape"]) for detail in details]
    probabilities = [i for i, detail in enumerate(details) if ranks[i] == 2 and detail["shape"][-1] == n_classes]
    summaries = [i for i, detail in enumerate(details) if ranks[i] == 2 and detail["shape"][-1] != n_classes]
    cells = [i for i, rank in enumerate(ranks) if rank == 4]
    if len(probabilities) != 1 or len(summaries) != 1 or len(cells) > 1 or len(details) != 2 + len(cells):
        shapes = [tuple(int(size) for size in detail["shape"]) for detail in details]
        raise LiteRTError(f"{where} lacks the classifier's outputs (probabilities, activation summary, optional "
                          f"fracture cells); its outputs have shapes {shapes}")
    return (probabilities[0], summaries[0], *cells)


def check_parity(expected, found, size: int) -> None:
    """Raises :class:`LiteRTError` unless ``found`` (the LiteRT outputs) matches ``expected`` (Keras's)."""
    if len(expected) != len(found):
        raise LiteRTError(f"the converted model returns {len(found)} outputs; Keras returns {len(expected)}")
    probability_gap, map_gap = parity_gaps(expected, found, size)
    if probability_gap > PARITY_PROBABILITY or map_gap > PARITY_MAP:
        raise LiteRTError(f"the converted model disagrees with Keras: P by {probability_gap:.2e} "
                          f"(allowed {PARITY_PROBABILITY}), the fracture map by {map_gap:.2e} (allowed {PARITY_MAP})")


def parity_gaps(expected, found, size: int) -> tuple[float, float]:
    """The largest |difference| in P(fractured) and in the fracture map (0 for a model without one)
    between two forward passes' outputs (probabilities, summary[, cells]) of ``size`` px inputs."""
    from core.config import FRACTURED
    from core.heatmaps import maps_from_cells

    probability_gap = float(np.max(np.abs(np.asarray(expected[0])[:, FRACTURED] - np.asarray(found[0])[:, FRACTURED])))
    if len(expected) < 3:
        return probability_gap, 0.0
    maps = [maps_from_cells(np.asarray(outputs[2]), size) for outputs in (expected, found)]
    return probability_gap, float(np.max(np.abs(maps[0] - maps[1])))
