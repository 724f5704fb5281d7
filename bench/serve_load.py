"""Many HTTP clients at once: the Ray Serve deployment against a plain one-process server, same run.

    .venv/bin/python -m bench.serve_load [--clients 50] [--per-client 10] [--timeout 300]
                                         [--data-dir DIR] [--out FILE.json]

``--clients`` threads of this process each post ``--per-client`` images, one after another, to
``POST /predict`` on 127.0.0.1 and time each answer. Two servers are loaded in turn, each with
the same images, clients and requests:

* **Ray Serve**: ``serving.deployment`` on a local Ray of 2 CPUs, one replica, which scores the
  requests that arrive together in one batch (``@serve.batch``).
* **In-process**: one Python process of its own holding one shared classifier behind the standard
  library's threaded HTTP server, each request scored on its own thread by the same
  ``core.scoring.score_files`` call and answered with the same JSON. An HTTP server, not the client
  threads calling ``score_files`` directly, so that both sides pay for HTTP and JSON and the figures
  differ by the serving alone; in a process of its own, so that the 50 client threads do not share
  its interpreter lock, as they do not share Serve's.

Bounded in count (clients × per-client requests) and in time: no request is sent after
``--timeout`` seconds from the start of a server's run, and each waits at most
:data:`REQUEST_TIMEOUT_S` for its answer; what was not sent or not answered is counted and said.
Prints, per server, p50 and p95 latency (post to full answer), throughput (answers per second of
the run's wall time), errors and Serve's batch sizes, and checks that both servers gave every
image the same JSON. The images are FracAtlas test radiographs from ``--data-dir`` where present,
else generated ones (said in the output). Figures from a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.app_harness import free_port
from bench.data import BenchImages, bench_images
from bench.timing import summary
from training.config import DEFAULT_DATA_DIR

REQUEST_TIMEOUT_S = 60.0
DISTINCT_IMAGES = 50  # enough that concurrent clients rarely post the same bytes
SERVER_START_TIMEOUT_S = 300.0
ROUTE = "/predict"


@dataclass(frozen=True)
class Request:
    client: int
    name: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    name: str
    latency_s: float | None  # None: not answered
    record: dict | None = None
    error: str | None = None


@dataclass(frozen=True)
class LoadRun:
    server: str
    wall_s: float
    outcomes: tuple[Outcome, ...]
    not_sent: int  # requests the time bound cut off
    batch_sizes: dict | None = None  # Serve only: its /stats

    def answered(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.latency_s is not None]

    def figures(self) -> dict:
        answered = self.answered()
        latencies_ms = [outcome.latency_s * 1e3 for outcome in answered]
        return {"server": self.server, "answered": len(answered), "errors": len(self.outcomes) - len(answered),
                "not_sent": self.not_sent, "wall_s": round(self.wall_s, 2),
                "throughput_per_s": round(len(answered) / self.wall_s, 2) if self.wall_s else None,
                "latency_ms": summary(latencies_ms) if latencies_ms else None, "batches": self.batch_sizes}


def requests_for(images: BenchImages, clients: int, per_client: int) -> list[list[Request]]:
    """Each client's requests: the images in turn, each client starting at its own place."""
    return [[Request(client, images.names[(client * per_client + index) % len(images)],
                     images.files[(client * per_client + index) % len(images)]) for index in range(per_client)]
            for client in range(clients)]


def load(url: str, plan: list[list[Request]], timeout_s: float) -> tuple[float, list[Outcome], int]:
    """Every client's requests, the clients all at once; ``(wall seconds, outcomes, not sent)``."""
    deadline = time.perf_counter() + timeout_s
    start = threading.Barrier(len(plan) + 1)

    def client(requests: list[Request]) -> tuple[list[Outcome], int]:
        start.wait()
        outcomes = []
        for position, request in enumerate(requests):
            if time.perf_counter() >= deadline:
                return outcomes, len(requests) - position
            outcomes.append(post(url, request))
        return outcomes, 0

    with ThreadPoolExecutor(len(plan)) as pool:
        futures = [pool.submit(client, requests) for requests in plan]
        start.wait()
        began = time.perf_counter()
        results = [future.result() for future in futures]
        wall_s = time.perf_counter() - began
    return wall_s, [outcome for outcomes, _ in results for outcome in outcomes], sum(cut for _, cut in results)


def post(url: str, request: Request) -> Outcome:
    query = urllib.parse.urlencode({"name": request.name})
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}{ROUTE}?{query}", data=request.data, method="POST"),
                                    timeout=REQUEST_TIMEOUT_S) as response:
            record = json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as error:
        return Outcome(request.name, None, error=f"{type(error).__name__}: {error}")
    return Outcome(request.name, time.perf_counter() - began, record)


# --- the in-process server --------------------------------------------------------------------------

class _PredictHandler(BaseHTTPRequestHandler):
    """``POST /predict?name=``: the same JSON as the deployment's, from ``score_files`` on this thread."""

    def do_POST(self):
        from core.scoring import ImageBytes, score_files

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        name = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("name", ["upload"])[0]
        scored = next(score_files(self.server.classifier, [ImageBytes(name, body)]))
        answer = json.dumps(scored.record(self.server.threshold)).encode()
        self.send_response(200 if scored.error is None else 422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # no access log: the file names would fill the output


class _ClassifierServer(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 would drop the connections of 50 clients at once
    daemon_threads = True


def serve_in_process(port: int, ready) -> None:
    """The in-process server's body (a child process): loads the model, serves until killed."""
    from core.classifier import FractureClassifier
    from core.thresholds import DEFAULT_PRESET

    server = _ClassifierServer(("127.0.0.1", port), _PredictHandler)
    server.classifier = FractureClassifier.load()
    server.classifier.warm_up()
    server.threshold = server.classifier.thresholds.resolve(DEFAULT_PRESET)
    ready.set()
    server.serve_forever()


def run_in_process(plan: list[list[Request]], timeout_s: float) -> LoadRun:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no TensorFlow state from here
    ready, port = context.Event(), free_port()
    process = context.Process(target=serve_in_process, args=(port, ready), name="in-process-server", daemon=True)
    process.start()
    try:
        if not ready.wait(SERVER_START_TIMEOUT_S):
            raise RuntimeError(f"the in-process server did not start within {SERVER_START_TIMEOUT_S:g} s")
        wall_s, outcomes, not_sent = load(f"http://127.0.0.1:{port}", plan, timeout_s)
    finally:
        process.terminate()
        process.join(10)
    return LoadRun("in-process (threaded HTTP server, one classifier)", wall_s, tuple(outcomes), not_sent)


# --- Ray Serve ---------------------------------------------------------------------------------------

def run_serve(plan: list[list[Request]], timeout_s: float) -> LoadRun:
    from ray import serve

    from serving._ray import ray_connection
    from serving.deployment import MAX_BATCH_SIZE, build_app, start

    port = free_port()
    with ray_connection(num_cpus=2):
        start(build_app(), host="127.0.0.1", port=port, name="serve-load")
        try:
            url = f"http://127.0.0.1:{port}"
            wall_s, outcomes, not_sent = load(url, plan, timeout_s)
            with urllib.request.urlopen(f"{url}/stats", timeout=REQUEST_TIMEOUT_S) as response:
                batches = json.loads(response.read())
        finally:
            serve.shutdown()
    return LoadRun(f"Ray Serve (1 replica, @serve.batch up to {MAX_BATCH_SIZE})", wall_s, tuple(outcomes),
                   not_sent, batches)


# --- the report --------------------------------------------------------------------------------------

def disagreements(runs: list[LoadRun]) -> list[str]:
    """Images whose JSON differs between the servers (or within one): none when batching changes nothing."""
    answers: dict[str, set[str]] = {}
    for run in runs:
        for outcome in run.answered():
            answers.setdefault(outcome.name, set()).add(json.dumps(outcome.record, sort_keys=True))
    return sorted(name for name, records in answers.items() if len(records) > 1)


def print_report(results: dict) -> None:
    print(f"\n{results['clients']} clients × {results['per_client']} requests each, on 127.0.0.1; "
          f"images: {results['images']}; load average at start {results['load_average_at_start']}")
    print(f"{'server':<55} {'answered':>8} {'errors':>6} {'not sent':>8} {'p50 ms':>8} {'p95 ms':>8} {'per s':>7}")
    for run in results["runs"]:
        latency = run["latency_ms"] or {}
        p50, p95 = latency.get("p50"), latency.get("p95")
        print(f"{run['server']:<55} {run['answered']:>8} {run['errors']:>6} {run['not_sent']:>8} "
              f"{p50 or float('nan'):>8.0f} {p95 or float('nan'):>8.0f} {run['throughput_per_s'] or 0:>7.1f}")
        if run["batches"]:
            print(f"  Serve's batches: {run['batches']['batches']} for {run['batches']['images']} images "
                  f"(largest {run['batches']['largest_batch']}; sizes {run['batches']['sizes']})")
    print(f"images whose JSON differs between the servers: {results['disagreements'] or 'none'}")
    for error in results["first_errors"]:
        print(f"  error: {error}")
    print("p50/p95: post to full answer; per s: answers per second of wall time. On a shared machine the "
          "figures are indicative only.")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients (default 50)")
    parser.add_argument("--per-client", type=int, default=10, help="requests each client sends (default 10)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds after which no request is sent, per server (default 300)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="FracAtlas folder; generated images are used where it is absent")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.per_client < 1 or args.timeout <= 0:
        parser.error("--clients and --per-client must be at least 1, and --timeout positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    images = bench_images(args.data_dir, min(DISTINCT_IMAGES, args.clients * args.per_client))
    plan = requests_for(images, args.clients, args.per_client)
    results = {"command": " ".join(["python -m bench.serve_load", *(sys.argv[1:] if argv is None else argv)]),
               "clients": args.clients, "per_client": args.per_client, "images": images.source,
               "load_average_at_start": [round(value, 1) for value in os.getloadavg()]}
    runs = []
    for name, run in (("Ray Serve", run_serve), ("in-process", run_in_process)):
        print(f"loading {name} …", flush=True)
        runs.append(run(plan, args.timeout))
    results["runs"] = [run.figures() for run in runs]
    results["disagreements"] = disagreements(runs)
    results["first_errors"] = sorted({outcome.error for run in runs for outcome in run.outcomes if outcome.error})[:5]
    results["load_average_at_end"] = [round(value, 1) for value in os.getloadavg()]
    print_report(results)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    complete = all(run["answered"] == args.clients * args.per_client for run in results["runs"])
    return 0 if complete and not results["disagreements"] else 1


if __name__ == "__main__":
    sys.exit(main())
