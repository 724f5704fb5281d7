"""The classifier served elsewhere: a client of the Ray Serve deployment (``serving/deployment.py``)
that the app uses in place of :class:`~core.classifier.FractureClassifier` when a setting names it.

:class:`RemoteClassifier` meets the interface the pages use of the in-process classifier
(:class:`core.classifier.Classifier`) and gives the same :class:`~core.classifier.ImageResult`:
P(fractured), the radiograph check, the model input and the heatmap come from the server, bit for
bit (floats travel as their raw bytes); only the picture shown is decoded here, by the same reader,
so an unreadable upload gets the same message either way.

This module also defines the wire format of those answers (:func:`result_payload`,
:func:`encode_array`, :class:`ServedHeatmaps`), so that the server and the client share one
definition of it. It uses the standard library's HTTP client: ``core`` never imports Ray or
Streamlit.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import urllib.parse
from dataclasses import dataclass

import numpy as np

from core.classifier import ImageResult
from core.config import FRACTURED
from core.heatmaps import check_method
from core.http_json import HttpJsonError, HttpStatusError, origin, request_json
from core.imaging import MAX_FILE_BYTES, ImageReadError, decode_image
from core.imaging.sources import load_bytes
from core.overlay import encode_png
from core.metadata import ModelMetadata
from core.radiograph_check import RadiographCheck

# Long enough for the slowest heatmap method (SmoothGrad, about 1 s per image on 2 CPU cores)
# behind a queue of other users' requests; short enough that a dead server is reported while
# the visitor still waits for an answer.
DEFAULT_TIMEOUT_S = 30.0
# The routes of serving/deployment.py that this client calls.
METADATA_ROUTE = "/metadata"
HEATMAPS_ROUTE = "/heatmaps"
RESULT_ROUTE = "/result"
EXPLAIN_ROUTE = "/explain"
# HTTP statuses the server answers for a body that is not a readable image (422) or is larger
# than the reader's limit (413): the upload's fault, reported as the reader's own error.
UNREADABLE_STATUSES = frozenset({413, 422})


class RemoteServingError(RuntimeError):
    """The fracture server cannot be reached, timed out, or failed; the message says which and where."""


# --- the wire format --------------------------------------------------------------------------------

def encode_array(array: np.ndarray) -> dict:
    """``{"dtype", "shape", "data"}``: an array as JSON, its raw bytes in base64 (exact, unlike decimals)."""
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}


def decode_array(payload, dtype: str | np.dtype, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The array :func:`encode_array` encoded, which must hold ``dtype`` (and ``shape``, if given).

    Raises:
        ValueError: for anything else: another dtype or shape, a malformed field, or bytes that do
            not fill the shape.
    """
    expected = np.dtype(dtype)
    if not isinstance(payload, dict) or set(payload) != {"dtype", "shape", "data"}:
        raise ValueError("an array must be {dtype, shape, data}")
    if payload["dtype"] != expected.str:
        raise ValueError(f"expected a {expected} array; got {str(payload['dtype'])[:40]!r}")
    sides = payload["shape"]
    if not isinstance(sides, list) or not all(isinstance(side, int) and not isinstance(side, bool) and side >= 0
                                              for side in sides) or len(sides) > 4:
        raise ValueError(f"an array's shape must be a list of sizes; got {str(sides)[:60]}")
    if shape is not None and tuple(sides) != shape:
        raise ValueError(f"expected an array of shape {shape}; got {tuple(sides)}")
    if not isinstance(payload["data"], str):
        raise ValueError("an array's data must be base64 text")
    try:
        data = base64.b64decode(payload["data"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an array's data is not valid base64") from None
    if len(data) != expected.itemsize * math.prod(sides):
        raise ValueError(f"{len(data)} bytes cannot fill a {expected} array of shape {tuple(sides)}")
    return np.frombuffer(data, dtype=expected).reshape(sides).copy()  # writable, like a computed array


def result_payload(result: ImageResult) -> dict:
    """What the server sends for one image: everything but the picture, which the client reads itself."""
    return {"probability_fractured": result.probability_fractured,
            "radiograph_check": dataclasses.asdict(result.radiograph_check),
            "source_shape": list(result.source_shape),
            "model_input": encode_array(result.model_input),
            "heatmap": None if result.heatmap is None else encode_array(result.heatmap),
            "heatmap_method": result.heatmap_method}


RESULT_FIELDS = frozenset({"probability_fractured", "radiograph_check", "source_shape", "model_input",
                           "heatmap", "heatmap_method"})
CHECK_FIELDS = frozenset(field.name for field in dataclasses.fields(RadiographCheck))


def result_from_payload(payload, image: np.ndarray, size: int) -> ImageResult:
    """The :class:`ImageResult` of :func:`result_payload`, with ``image`` (the client's own read) as
    its picture, after checking every field: a server's answer is untrusted input.

    Args:
        payload: the parsed JSON of ``/result``.
        image: the client's own read of the upload.
        size: the side of the model input the server's model takes.

    Raises:
        ValueError: for a missing or unexpected field, or a value out of its range or shape (a NaN
            or out-of-range P, a map of another size or outside [0, 1]).
        RemoteServingError: if the server read the image at another size than ``image`` (a server
            running another version of the reader).
    """
    if not isinstance(payload, dict) or set(payload) != RESULT_FIELDS:
        found = set(payload) if isinstance(payload, dict) else set()
        raise ValueError(f"the answer must hold exactly {', '.join(sorted(RESULT_FIELDS))}; missing "
                         f"{sorted(RESULT_FIELDS - found)}, unexpected {sorted(found - RESULT_FIELDS)[:5]}")
    probability = _unit_number(payload["probability_fractured"], "probability_fractured")
    shape = payload["source_shape"]
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(side, int) and side > 0 for side in shape)):
        raise ValueError(f"source_shape must be two positive sizes; got {str(shape)[:60]}")
    source_shape = tuple(shape)
    if source_shape != image.shape:
        raise RemoteServingError(f"the server read the image as {source_shape[0]}×{source_shape[1]} px and this "
                                 f"app as {image.shape[0]}×{image.shape[1]}: they run different versions")
    heatmap = None if payload["heatmap"] is None else heatmap_from_payload(payload["heatmap"], size)
    method = payload["heatmap_method"]
    if (method is None) != (heatmap is None) or (method is not None and not isinstance(method, str)):
        raise ValueError("heatmap and heatmap_method must come together")
    return ImageResult(probability, _radiograph_check(payload["radiograph_check"]),
                       decode_array(payload["model_input"], np.uint8, (size, size, 1)), image, source_shape,
                       heatmap, None if method is None else check_method(method))


def heatmap_from_payload(payload, size: int) -> np.ndarray:
    """A heatmap the server sent: float32 (size, size), every value in [0, 1].

    Raises:
        ValueError: for another dtype or shape, or a value that is not finite or lies outside [0, 1].
    """
    heatmap = decode_array(payload, np.float32, (size, size))
    if not (np.isfinite(heatmap).all() and heatmap.min(initial=0.0) >= 0.0 and heatmap.max(initial=0.0) <= 1.0):
        raise ValueError("a heatmap's values must be finite and within [0, 1]")
    return heatmap


def _unit_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1]; got {str(value)[:40]}")  # NaN fails the range
    return float(value)


def _radiograph_check(values) -> RadiographCheck:
    if not isinstance(values, dict) or set(values) != CHECK_FIELDS:
        raise ValueError(f"radiograph_check must hold exactly {', '.join(sorted(CHECK_FIELDS))}")
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ValueError(f"radiograph_check.{name} must be a finite number or null; got {str(value)[:40]}")
    if values["colourfulness"] is None:
        raise ValueError("radiograph_check.colourfulness must be a number")
    return RadiographCheck(**values)


@dataclass(frozen=True)
class ServedHeatmaps:
    """The heatmaps the served model draws: its ``default_heatmap`` (what ``/result`` and ``/predict``
    carry) and every method it can draw (``HeatmapExplainer.methods``)."""

    default: str
    methods: tuple[str, ...]

    @classmethod
    def of(cls, classifier) -> "ServedHeatmaps":
        """What ``classifier`` (a :class:`~core.classifier.FractureClassifier`) draws."""
        methods = () if classifier.explainer is None else classifier.explainer.methods
        return cls(classifier.default_heatmap, tuple(methods))

    def payload(self) -> dict:
        return {"default": self.default, "methods": list(self.methods)}

    @classmethod
    def from_payload(cls, payload: dict) -> "ServedHeatmaps":
        """The server's answer to ``GET /heatmaps``.

        Raises:
            ValueError: for a method this client does not know (a server running another version).
        """
        if not isinstance(payload, dict) or set(payload) != {"default", "methods"} \
                or not isinstance(payload["default"], str) or not isinstance(payload["methods"], list) \
                or not all(isinstance(method, str) for method in payload["methods"]):
            raise ValueError("the server's heatmaps must be {default: a method, methods: a list of methods}")
        methods = tuple(check_method(method) for method in payload["methods"])
        if check_method(payload["default"]) not in methods:
            raise ValueError(f"the server's default heatmap {payload['default']!r} is not among its methods")
        return cls(payload["default"], methods)


def model_input_png(model_input: np.ndarray) -> bytes:
    """A preprocessed uint8 (S, S, 1) model input as a grey PNG: lossless, and read back by the one reader."""
    return encode_png(np.asarray(model_input)[..., 0])


# --- the client -----------------------------------------------------------------------------------

class RemoteExplainer:
    """``explain`` and ``methods`` of :class:`~core.heatmaps.HeatmapExplainer`, computed by the server
    (a :class:`core.classifier.Explainer`)."""

    def __init__(self, client: "RemoteClassifier", methods: tuple[str, ...]):
        self._client = client
        self.methods = methods  # the keys of core.heatmaps.REGISTRY the served model can draw

    def explain(self, model_inputs: np.ndarray, method: str | None = None,
                class_index: int = FRACTURED) -> np.ndarray:
        """Heatmaps of the evidence for "fractured" (see :meth:`core.heatmaps.HeatmapExplainer.explain`).

        Args:
            model_inputs: uint8 (N, S, S, 1) preprocessed images (``ImageResult.model_input``).
            method: a key of :data:`core.heatmaps.REGISTRY`; by default the served model's
                ``default_heatmap``.
            class_index: the output to explain (1 = fractured, 0 = not fractured).

        Returns:
            float32 (N, S, S) in [0, 1].

        Raises:
            ValueError: for an unknown method.
            RemoteServingError: if the server cannot be reached or fails.
        """
        method = check_method(method or self._client.default_heatmap)
        size = self._client.preprocess_config.image_size
        maps = [self._client.checked_answer(
                    lambda answer: _explain_heatmap(answer, method, size), EXPLAIN_ROUTE,
                    model_input_png(model_input), method=method, class_index=str(int(class_index)))
                for model_input in np.asarray(model_inputs)]
        return np.stack(maps) if maps else np.zeros((0, size, size), np.float32)


def _explain_heatmap(answer, method: str, size: int) -> np.ndarray:
    """The map of an ``/explain`` answer, checked: ``{"method", "heatmap"}`` for the method asked."""
    if not isinstance(answer, dict) or set(answer) != {"method", "heatmap"} or answer["method"] != method:
        raise ValueError(f"the answer must be {{method: {method!r}, heatmap}}")
    return heatmap_from_payload(answer["heatmap"], size)


class RemoteClassifier:
    """The deployment at ``url``, used like :class:`~core.classifier.FractureClassifier`.

    Use :meth:`connect`, which reads the model's metadata and heatmaps from the server. Safe to
    share between threads: every call is its own HTTP request.
    """

    def __init__(self, url: str, metadata: ModelMetadata | dict, heatmaps: ServedHeatmaps, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.metadata = ModelMetadata.parse(metadata, where=f"the metadata of the fracture server at {origin(self.url)}")
        self.preprocess_config = self.metadata.preprocessing
        self.thresholds = self.metadata.thresholds
        self.default_heatmap = heatmaps.default  # what the server's answers carry
        self.explainer = RemoteExplainer(self, heatmaps.methods)

    @classmethod
    def connect(cls, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                expected_version: str | None = None) -> "RemoteClassifier":
        """The deployment at ``url`` (e.g. ``http://127.0.0.1:8000``), once it has answered.

        Args:
            url: the deployment's base URL (its route prefix included).
            timeout_s: how long one request may wait for an answer.
            expected_version: the model version the caller's thresholds and figures belong to;
                a server that serves another one is refused.

        Raises:
            ValueError: for a URL that is not http(s)://host..., or a server that names a heatmap
                method this client does not know or sends metadata with a field missing or mistyped
                (:class:`core.metadata.MetadataError`).
            RemoteServingError: if the server cannot be reached, fails, or serves another model.
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the fracture server URL must look like http://host:port[/prefix]; got {url!r}")
        metadata = _request_json(url.rstrip("/") + METADATA_ROUTE, None, timeout_s)
        heatmaps = ServedHeatmaps.from_payload(_request_json(url.rstrip("/") + HEATMAPS_ROUTE, None, timeout_s))
        client = cls(url, metadata, heatmaps, timeout_s=timeout_s)
        if expected_version is not None and client.version != expected_version:
            raise RemoteServingError(f"the fracture server at {origin(client.url)} serves model {client.version!r}; this app's "
                                     f"thresholds and figures are for {expected_version!r}")
        return client

    @property
    def version(self) -> str:
        return self.metadata.model_version

    def warm_up(self, heatmap: str | None = None) -> None:
        """Nothing to do here: each replica of the deployment warms its own model when it starts."""

    def classify(self, source, *, heatmap: str | None = None, class_index: int = FRACTURED) -> ImageResult:
        """Reads ``source`` here (for the picture and the reader's checks) and classifies it on the server.

        Args:
            source: file bytes or a path.
            heatmap: a key of :data:`core.heatmaps.REGISTRY`, or None. The server's answer always
                carries the model's :attr:`default_heatmap` for "fractured"; another method or
                class is one more request.
            class_index: the class the heatmap explains (1 = fractured).

        Raises:
            core.imaging.ImageReadError: if the source is not a readable image.
            ValueError: for an unknown method.
            RemoteServingError: if the server cannot be reached or fails.
        """
        if heatmap is not None:
            check_method(heatmap)
        data, _ = load_bytes(source, MAX_FILE_BYTES)
        image = decode_image(data).grey  # the same reader as the server's: the same error message
        size = self.preprocess_config.image_size
        result = self.checked_answer(lambda answer: result_from_payload(answer, image, size), RESULT_ROUTE, data)
        if heatmap is None:
            return dataclasses.replace(result, heatmap=None, heatmap_method=None)
        if heatmap != result.heatmap_method or class_index != FRACTURED:
            explained = self.explainer.explain(result.model_input[None], heatmap, class_index)[0]
            return dataclasses.replace(result, heatmap=explained, heatmap_method=heatmap)
        return result

    def checked_answer(self, parse, route: str, body: bytes, **query: str):
        """``parse`` of the server's answer to ``body`` posted to ``route``; an answer ``parse``
        refuses (ValueError) is the server's fault, reported as such.

        Raises:
            core.imaging.ImageReadError: if the server could not read the body (HTTP 413 or 422).
            RemoteServingError: if the server cannot be reached, times out, fails or sends an
                invalid answer.
        """
        answer = self.post_json(route, body, **query)
        try:
            return parse(answer)
        except ValueError as error:
            raise RemoteServingError(f"the fracture server at {origin(self.url)} sent an invalid answer to "
                                     f"{route}: {error}") from None

    def post_json(self, route: str, body: bytes, **query: str) -> dict:
        """The JSON the server answers to ``body`` posted to ``route``.

        Raises:
            core.imaging.ImageReadError: if the server could not read the body (HTTP 413 or 422).
            RemoteServingError: if the server cannot be reached, times out or fails.
        """
        url = self.url + route + (f"?{urllib.parse.urlencode(query)}" if query else "")
        return _request_json(url, body, self.timeout_s)


def _request_json(url: str, body: bytes | None, timeout_s: float):
    """GET ``url`` (``body`` None) or POST ``body`` to it, and parse the JSON answer (bounded in time
    and size, no redirects: :func:`core.http_json.request_json`)."""
    try:
        return request_json(url, body, timeout_s)
    except HttpStatusError as error:
        if error.status in UNREADABLE_STATUSES:
            raise ImageReadError(error.detail) from None
        raise RemoteServingError(str(error)) from None
    except HttpJsonError as error:
        raise RemoteServingError(str(error)) from None
