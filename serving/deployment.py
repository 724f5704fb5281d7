"""The classifier on Ray Serve: an image over HTTP in, the CLI's JSON or the heatmap PNG out.

    python -m serving.deployment [--port 8000] [--host 127.0.0.1] [--replicas N] [--address ADDR]

Each replica loads the model once. Routes, under the application's route prefix:

* ``POST /predict?name=&threshold=&overlay=png``, body: the image file. The ``--json`` object of
  ``python -m core.predict`` ("path" is ``name``, or "upload"), or with ``overlay=png`` the overlay
  PNG of the model's default heatmap that ``--heatmap-dir`` writes. ``threshold``: a number in [0, 1] or a preset name,
  as the CLI takes it (default: the CLI's). Concurrent requests are scored together
  (``@serve.batch``: up to :data:`MAX_BATCH_SIZE` images, gathered for at most
  :data:`BATCH_WAIT_S`) by :func:`core.scoring.score_files`, the CLI's own path: the same bytes
  get the same answer here as from the CLI, in whatever batch they land.
* ``POST /result``, body: the image file. What :class:`core.remote.RemoteClassifier` rebuilds the
  app's :class:`~core.classifier.ImageResult` from (:func:`core.remote.result_payload`), computed
  as the app computes it in-process, by ``FractureClassifier.classify`` (whose answer equals the
  batch path's bit for bit: ``core.classifier.MIN_BATCH_ROWS``): the app's answers are the same
  either way. Not batched: the app asks for one upload at a time and wants its full result.
* ``POST /explain?method=&class_index=``, body: a preprocessed model input as a grey PNG
  (:func:`core.remote.model_input_png`). ``{"method", "heatmap"}``, the map as raw float32; by
  default the model's default heatmap for "fractured" (class_index 1). A method this model cannot
  draw, or a class other than 0 or 1, is a 400.
* ``GET /metadata``: the model's metadata (version, thresholds, preprocessing...).
* ``GET /heatmaps``: the model's default heatmap, which ``/predict`` and ``/result`` carry, and the
  methods ``/explain`` draws (:class:`core.remote.ServedHeatmaps`).
* ``GET /stats``: how many batches this replica has scored, and their sizes.

Errors are JSON ``{"error": message}`` (``/predict`` answers an unreadable image with the CLI's
``{"path", "error"}``): 400 for a bad query parameter, 413 for a body over the reader's byte limit
(the app's upload cap), 422 for a body that is not a readable image; never a traceback. Started
from the command line, Ray runs locally unless ``--address`` names a cluster, and the HTTP proxy
listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

import argparse
import asyncio
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve

from core.classifier import FractureClassifier
from core.config import FRACTURED, MODELS_DIR
from core.heatmaps import check_method
from core.imaging import MAX_FILE_BYTES, ImageReadError, read_image
from core.imaging.common import too_many_bytes
from core.remote import ServedHeatmaps, encode_array, result_payload
from core.scoring import ImageBytes, ScoredFile, overlay_png, score_files
from core.thresholds import DEFAULT_PRESET
from serving._ray import ray_connection

MAX_BATCH_SIZE = 16
# Long enough for requests that arrive together to share a pass, short against the ~13 ms one
# image costs on 2 cores: a lone request waits at most this long for company.
BATCH_WAIT_S = 0.01
# Requests one replica holds at once: several batches' worth, so that a batch can fill while the
# previous one runs (Serve's default of 5 would cap every batch at 5).
MAX_ONGOING_REQUESTS = 4 * MAX_BATCH_SIZE
REPLICA_CPUS = 1.0
DEFAULT_NAME = "upload"  # the "path" of the JSON when the request names no file
OVERLAY_FORMATS = ("png",)

http_app = FastAPI(title="Bone fracture detection", docs_url=None, redoc_url=None, openapi_url=None)


class RequestError(ValueError):
    """A request the deployment refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"error": message} if body is None else body


@http_app.exception_handler(RequestError)
async def _refuse(request: Request, error: RequestError) -> JSONResponse:
    return JSONResponse(error.body, status_code=error.status)


async def read_body(request: Request, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The request's body, if within the reader's byte limit (the app's upload cap).

    A larger body is still read to its end, its bytes past the limit dropped as they come, so
    that the client (which sends the whole body before it reads) gets the 413, not a reset
    connection.

    Raises:
        RequestError: 413 for a larger body.
    """
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= max_bytes:
            chunks.append(chunk)
    if size > max_bytes:
        raise RequestError(413, str(too_many_bytes(size, max_bytes, "the request body")))
    return b"".join(chunks)


@serve.deployment(max_ongoing_requests=MAX_ONGOING_REQUESTS, ray_actor_options={"num_cpus": REPLICA_CPUS})
@serve.ingress(http_app)
class FractureDeployment:
    """One replica: the model, loaded once, behind the routes of this module."""

    def __init__(self, model_dir: str = str(MODELS_DIR)):
        self.classifier = FractureClassifier.load(model_dir)
        self.classifier.warm_up()  # the model's default heatmap, which /predict and /result carry
        self.batch_sizes: Counter[int] = Counter()

    @http_app.post("/predict")
    async def predict(self, request: Request, name: str = DEFAULT_NAME, threshold: str = DEFAULT_PRESET,
                      overlay: str | None = None) -> Response:
        decision_threshold = self._threshold(threshold)
        if overlay is not None and overlay not in OVERLAY_FORMATS:
            raise RequestError(400, f"unknown overlay format {overlay!r}; valid: {', '.join(OVERLAY_FORMATS)}")
        scored = await self.score(ImageBytes(name, await read_body(request)))
        if scored.error is not None:  # answered with the CLI's record of an unreadable file
            raise RequestError(422, scored.error, scored.record(decision_threshold))
        if overlay is None:
            return JSONResponse(scored.record(decision_threshold))
        try:
            png = await asyncio.to_thread(overlay_png, scored.result, self.classifier.preprocess_config)
        except ValueError as error:  # an overlay that cannot be drawn is this request's answer, never a 500
            raise RequestError(422, f"its overlay could not be drawn: {error}") from None
        return Response(png, media_type="image/png")

    @http_app.post("/result")
    async def result(self, request: Request) -> JSONResponse:
        data = await read_body(request)
        try:
            result = await asyncio.to_thread(self.classifier.classify, data, heatmap=self.classifier.default_heatmap)
        except ImageReadError as error:
            raise RequestError(422, str(error)) from None
        return JSONResponse(result_payload(result))

    @http_app.post("/explain")
    async def explain(self, request: Request, method: str | None = None, class_index: int = FRACTURED) -> JSONResponse:
        method = self._drawable(method or self.classifier.default_heatmap)
        if class_index not in (0, 1):
            raise RequestError(400, f"class_index must be 0 (not fractured) or 1 (fractured); got {class_index}")
        model_input = self._model_input(await read_body(request))
        heatmaps = await asyncio.to_thread(self.classifier.explainer.explain, model_input[np.newaxis], method,
                                           class_index)
        return JSONResponse({"method": method, "heatmap": encode_array(heatmaps[0])})

    @http_app.get("/metadata")
    async def metadata(self) -> JSONResponse:
        return JSONResponse(dict(self.classifier.metadata.raw))

    @http_app.get("/heatmaps")
    async def heatmaps(self) -> JSONResponse:
        return JSONResponse(ServedHeatmaps.of(self.classifier).payload())

    @http_app.get("/stats")
    async def stats(self) -> JSONResponse:
        """This replica's batches: how many, how many images, the largest, and how many of each size."""
        return JSONResponse({"batches": sum(self.batch_sizes.values()),
                             "images": sum(size * count for size, count in self.batch_sizes.items()),
                             "largest_batch": max(self.batch_sizes, default=0),
                             "sizes": {str(size): count for size, count in sorted(self.batch_sizes.items())}})

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def score(self, sources: list[ImageBytes]) -> list[ScoredFile]:
        """The requests that arrived together, scored in one call of the CLI's path (verdict and the
        model's default heatmap), on a worker thread so that the next batch gathers meanwhile."""
        self.batch_sizes[len(sources)] += 1
        return await asyncio.to_thread(self._scored_together, sources)

    def _scored_together(self, sources: list[ImageBytes]) -> list[ScoredFile]:
        return list(score_files(self.classifier, sources, batch_size=MAX_BATCH_SIZE))

    def _drawable(self, method: str) -> str:
        """``method`` if this model can draw it.

        Raises:
            RequestError: 400 for an unknown method, or one this model cannot draw (the message
                lists those it can).
        """
        try:
            check_method(method)
        except ValueError as error:
            raise RequestError(400, str(error)) from None
        methods = ServedHeatmaps.of(self.classifier).methods
        if method not in methods:
            raise RequestError(400, f"this model cannot draw heatmap {method!r}; valid: {', '.join(methods)}")
        return method

    def _threshold(self, threshold: str) -> float:
        try:
            return self.classifier.thresholds.resolve(threshold)
        except ValueError as error:
            raise RequestError(400, str(error)) from None

    def _model_input(self, png: bytes) -> np.ndarray:
        """uint8 (S, S, 1) from the grey PNG of a model input, read by the one reader.

        8-bit grey is read as value / 255 in float32, which rounds back to the value exactly.
        """
        try:
            grey = read_image(png)
        except ImageReadError as error:
            raise RequestError(422, str(error)) from None
        size = self.classifier.preprocess_config.image_size
        if grey.shape != (size, size):
            raise RequestError(422, f"expected a {size}×{size} px model input; "
                                    f"got {grey.shape[0]}×{grey.shape[1]} px")
        return np.round(grey * 255).astype(np.uint8)[..., np.newaxis]


def build_app(model_dir: str | Path = MODELS_DIR, *, replicas: int = 1, replica_cpus: float = REPLICA_CPUS):
    """The Serve application: ``replicas`` copies of the model in ``model_dir``, each reserving
    ``replica_cpus`` of Ray's CPUs (TensorFlow still uses every core it is given)."""
    return FractureDeployment.options(num_replicas=replicas, ray_actor_options={"num_cpus": replica_cpus}).bind(
        str(model_dir))


def app_builder(args: dict[str, str]):
    """:func:`build_app` from text arguments, for Ray's own launchers: ``serve run
    serving.deployment:app_builder replicas=2`` and a config file's or KubeRay RayService's
    ``import_path: serving.deployment:app_builder`` with ``args``. Keys: ``model_dir``,
    ``replicas``, ``replica_cpus``; any other key is an error, not ignored.

    Raises:
        ValueError: for an unknown key or a value that is not a positive number.
    """
    unknown = sorted(set(args) - {"model_dir", "replicas", "replica_cpus"})
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(unknown)}; valid: model_dir, replicas, replica_cpus")
    try:
        replicas = int(args.get("replicas", 1))
        replica_cpus = float(args.get("replica_cpus", REPLICA_CPUS))
    except (TypeError, ValueError):
        raise ValueError(f"replicas must be a whole number and replica_cpus a number; got {dict(args)}") from None
    if replicas < 1 or not replica_cpus > 0:
        raise ValueError(f"replicas must be at least 1 and replica_cpus above 0; got {replicas} and {replica_cpus}")
    return build_app(args.get("model_dir", MODELS_DIR), replicas=replicas, replica_cpus=replica_cpus)


def start(app, *, host: str, port: int, route_prefix: str = "/", name: str = "fracture"):
    """Starts Serve's HTTP proxy on ``host:port`` and deploys ``app`` under ``route_prefix``;
    returns once every replica has loaded its model. Ray must be initialised."""
    serve.start(http_options={"host": host, "port": port})
    return serve.run(app, name=name, route_prefix=route_prefix)


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m serving.deployment", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1",
                        help="where the HTTP proxy listens (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--replicas", type=int, default=1, help="copies of the model (default 1)")
    parser.add_argument("--replica-cpus", type=float, default=REPLICA_CPUS, help="Ray CPUs each replica reserves")
    parser.add_argument("--address", help="a Ray cluster to join (e.g. auto, or ray://head:10001); "
                                          "default: start a local Ray")
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error(f"--replicas must be at least 1; got {args.replicas}")
    return args


def main(argv=None) -> int:
    args = _parse_args(argv)
    with ray_connection(address=args.address):
        start(build_app(args.model_dir, replicas=args.replicas, replica_cpus=args.replica_cpus),
              host=args.host, port=args.port)
        print(f"serving on http://{args.host}:{args.port} (POST /predict, /result, /explain; GET /metadata, "
              "/stats); Ctrl-C stops", flush=True)
        stop = threading.Event()
        for signal_number in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a process manager's stop
            signal.signal(signal_number, lambda *_: stop.set())
        stop.wait()
        serve.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
