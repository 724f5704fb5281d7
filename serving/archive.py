"""Archive scoring on Ray Data: every image of a folder or a list, scored by a pool of actors.

    python -m serving.archive [PATH ...] [--list FILE] --output OUT.parquet|OUT.csv
                              [--threshold T|screening|balanced|specific] [--overlay-dir DIR]
                              [--workers N] [--batch-size B] [--address ADDR] [--model-dir DIR]

PATH is an image file or a folder, listed as ``python -m core.predict`` lists its arguments
(:func:`core.batch_files.expand_inputs`: a folder stands for the image files under it, recursively; a
file named is scored whatever its name). ``--list FILE`` names one PATH per line. Relative paths
are taken from the current folder and reported as given.

Each of ``--workers`` Ray actors loads the model once and scores batches of files with
:func:`core.scoring.score_files`, the path of ``python -m core.predict``: every row holds exactly
the CLI's ``--json`` answer for its file (``path``, ``probability_fractured``, ``decision`` and
``threshold``, ``looks_like_radiograph``, ``unlike_training_data``, ``heatmap_peak_x`` and ``_y``),
or, for a file that could not be read, its ``error`` and nothing else. The job never stops on one
bad file. Rows are sorted by path, folder by folder as the CLI sorts a folder, whatever order
the actors finish in; the output file appears only once complete. In the CSV, text that a
spreadsheet would run as a formula starts with ``'`` (:func:`core.reports.spreadsheet_safe`);
Parquet keeps it as it is. A path that is not valid UTF-8 is written with its odd bytes escaped
(``\\xff``).

``--overlay-dir`` also writes each readable image's overlay of the model's default heatmap, under the
name ``python -m core.predict --heatmap-dir`` gives it for the same files in the same (sorted) order
(``<stem>_<method>.png``).

Locally the command starts its own Ray with one CPU per worker (and TensorFlow on one thread in
each); ``--address`` joins an existing cluster instead, whose every node must have the project
installed and see the images, the model and the overlay folder at the same paths. Exit status:
0 when every file was read, 1 when any could not be, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from core.artifacts import load_thresholds
from core.config import MODELS_DIR
from core.batch_files import Input, OutputFolderError, expand_inputs, make_output_folder, unique_overlay_name
from core.reports import spreadsheet_safe
from core.terminal_text import terminal_safe
from core.thresholds import DEFAULT_PRESET, PRESET_NAMES
from serving._archive_worker import SCORED_SCHEMA, ArchiveWorker, overlay_staging_name
from serving._ray import ray_connection

OUTPUT_FORMATS = (".parquet", ".csv")
WORKER_ONLY_COLUMNS = ("index", "heatmap_method")  # what the job needs of the workers, not in the rows
ROW_SCHEMA = pa.schema([pa.field("path", pa.string()),
                        *(field for field in SCORED_SCHEMA if field.name not in WORKER_ONLY_COLUMNS)])
DEFAULT_WORKERS = 2
CPUS_PER_WORKER = 1
# Files per call of an actor: several of score_files' network batches, so that its readers keep
# the network busy across them, and few enough calls that Ray's per-call cost is lost in the work.
DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class ArchiveSummary:
    """What a job did: how many files it scored, how many of them could not be read, and where
    the rows are."""

    files: int
    unreadable: int
    output: Path
    seconds: float


def list_inputs(paths: Sequence[str], list_files: Sequence[str | os.PathLike] = ()) -> list[Input]:
    """The files to score, as the CLI lists ``paths`` followed by the lines of each list file
    (:func:`core.batch_files.expand_inputs`); a file is neither opened nor checked here.

    Raises:
        OSError: if a list file cannot be read.
    """
    arguments = list(paths)
    for list_file in list_files:
        lines = Path(list_file).read_bytes().split(b"\n")
        arguments += [os.fsdecode(line.removesuffix(b"\r")) for line in lines if line.strip()]
    return expand_inputs(arguments)


def column_text(path: str) -> str:
    """``path`` as it is written in the output: as given, with the bytes of a name that is not
    valid UTF-8 escaped (``\\xff``), which Parquet and CSV could not hold otherwise."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _path_order(item: Input) -> list[str]:
    """Sorts by path, folder by folder, as the CLI sorts the files of a folder."""
    return column_text(item.path).split(os.sep)


def score_archive(inputs: Sequence[Input], output: Path, *, threshold: float, workers: int = DEFAULT_WORKERS,
                  batch_size: int = DEFAULT_BATCH_SIZE, model_dir: Path = MODELS_DIR,
                  overlay_dir: Path | None = None) -> ArchiveSummary:
    """Scores ``inputs`` on the connected Ray with a pool of ``workers`` actors and writes the rows.

    Args:
        inputs: the files, as :func:`list_inputs` gives them (one that already has an error,
            such as a folder without images, becomes its row as it is).
        output: a ``.parquet`` or ``.csv`` file (written whole, then moved into place).
        threshold: the decision threshold, already resolved.
        workers: actors in the pool, each with the model loaded once and one CPU.
        batch_size: files per call of an actor.
        model_dir: the model every actor loads.
        overlay_dir: where to write an overlay PNG per readable image, or None.
    """
    started = time.perf_counter()
    ordered = sorted(inputs, key=_path_order)
    with _staging_folder(overlay_dir) as staging:
        table = _scored_table(ordered, threshold, workers, batch_size, model_dir, staging)
        if staging is not None:
            _name_overlays(ordered, table, staging, overlay_dir)
    table = table.drop_columns(["heatmap_method"])
    _write_rows(table, output)
    return ArchiveSummary(len(table), len(table) - table["error"].null_count, output, time.perf_counter() - started)


@contextmanager
def _staging_folder(overlay_dir: Path | None) -> Iterator[Path | None]:
    """A hidden folder in ``overlay_dir`` for the workers' overlays until they are named, removed
    on the way out (None without an overlay folder)."""
    if overlay_dir is None:
        yield None
        return
    staging = overlay_dir / f".archive-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _scored_table(ordered: list[Input], threshold: float, workers: int, batch_size: int, model_dir: Path,
                  staging: Path | None) -> pa.Table:
    """The rows of ``ordered``, in its order: path first, then what the workers said."""
    listed_errors = [{"index": index, "error": item.error} for index, item in enumerate(ordered) if item.error]
    items = [{"index": index, "location": os.fsencode(os.path.abspath(item.path))}
             for index, item in enumerate(ordered) if item.error is None]
    batches = [pa.Table.from_pylist(listed_errors, schema=SCORED_SCHEMA)]
    if items:
        batches += _worker_batches(items, threshold, workers, batch_size, model_dir, staging)
    # Actors finish in any order; the rows are put back in the listing's order here, and there
    # must be exactly one per file.
    table = pa.concat_tables(batches).sort_by("index")
    if table["index"].to_pylist() != list(range(len(ordered))):
        raise RuntimeError(f"the workers returned {len(table) - len(listed_errors)} rows for {len(items)} files")
    table = table.drop_columns(["index"])
    return table.add_column(0, "path", pa.array([column_text(item.path) for item in ordered], pa.string()))


def _worker_batches(items: list[dict], threshold: float, workers: int, batch_size: int, model_dir: Path,
                    staging: Path | None) -> list[pa.Table]:
    import ray

    # A block per batch, and at least one per worker, so that every actor gets work.
    blocks = max(math.ceil(len(items) / batch_size), min(len(items), workers))
    scored = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        ArchiveWorker, batch_size=batch_size, batch_format="numpy", num_cpus=CPUS_PER_WORKER,
        compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"model_dir": str(model_dir), "threshold": threshold,
                               "overlay_staging": None if staging is None else str(staging),
                               "tensorflow_threads": CPUS_PER_WORKER})
    return list(scored.iter_batches(batch_format="pyarrow", batch_size=None))


def _name_overlays(ordered: list[Input], table: pa.Table, staging: Path, overlay_dir: Path) -> None:
    """Moves each overlay from its staging name to the name the CLI gives it.

    The CLI numbers a name already taken by an earlier readable file (``x_fracturemap.png``,
    ``x_2_fracturemap.png``), so the names are given here, in the rows' order, once every file is read.
    """
    taken: set[str] = set()
    rows = zip(ordered, table["error"].to_pylist(), table["heatmap_method"].to_pylist())
    for index, (item, error, method) in enumerate(rows):
        if error is None:
            os.replace(staging / overlay_staging_name(index),
                       overlay_dir / unique_overlay_name(item.path, taken, method))


def _write_rows(table: pa.Table, output: Path) -> None:
    partial = output.with_name(f".{output.name}.{uuid.uuid4().hex}.partial")
    try:
        if output.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, partial)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(_spreadsheet_safe_text(table), partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _spreadsheet_safe_text(table: pa.Table) -> pa.Table:
    """The table with its free text (file names, error messages) made safe to open in a spreadsheet."""
    for name in ("path", "error"):
        cells = [None if cell is None else spreadsheet_safe(cell) for cell in table[name].to_pylist()]
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(cells, pa.string()))
    return table


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m serving.archive", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", metavar="PATH", help="image files, or folders of them")
    parser.add_argument("--list", action="append", default=[], type=Path, metavar="FILE",
                        help="a file naming one PATH per line (may be repeated)")
    parser.add_argument("--output", type=Path, required=True, help="the rows: a .parquet or .csv file")
    parser.add_argument("--threshold", default=DEFAULT_PRESET,
                        help=f"a number in [0, 1] or one of {', '.join(PRESET_NAMES)} (default: {DEFAULT_PRESET})")
    parser.add_argument("--overlay-dir", type=Path,
                        help="write an overlay PNG of the model's default heatmap per readable image here "
                             "(<stem>_<method>.png)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"Ray actors, each loading the model once (default: {DEFAULT_WORKERS})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"files per call of an actor (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--address", help="join this Ray cluster instead of starting a local Ray")
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    return parser, parser.parse_args(argv)


def _check_usage(parser: argparse.ArgumentParser, args) -> None:
    if args.output.suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--output {terminal_safe(str(args.output))}: unknown format "
                     f"{terminal_safe(repr(args.output.suffix))}; valid: {', '.join(OUTPUT_FORMATS)}")
    for option, value in (("--workers", args.workers), ("--batch-size", args.batch_size)):
        if value < 1:
            parser.error(f"{option} must be at least 1; got {value}")


def _make_folders(parser: argparse.ArgumentParser, args) -> None:
    """Creates the output's folder and ``--overlay-dir``; one that cannot be made is bad usage."""
    for option, folder in (("--output", args.output.parent), ("--overlay-dir", args.overlay_dir)):
        if folder is None:
            continue
        try:
            make_output_folder(folder)
        except OutputFolderError as error:
            parser.error(f"{option} {terminal_safe(str(error.folder))}: {error.reason}")


def main(argv=None) -> int:
    parser, args = _parse_args(argv)
    _check_usage(parser, args)
    try:
        threshold = load_thresholds(args.model_dir).resolve(args.threshold)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        parser.error(terminal_safe(str(error)))
    try:
        inputs = list_inputs(args.paths, args.list)
    except OSError as error:
        parser.error(f"--list {terminal_safe(os.fsdecode(error.filename or ''))}: {error.strerror or error}")
    if not inputs:
        parser.error("no files to score: give image files, folders or --list FILE")
    _make_folders(parser, args)
    with ray_connection(address=args.address, num_cpus=args.workers * CPUS_PER_WORKER):
        summary = score_archive(inputs, args.output, threshold=threshold, workers=args.workers,
                                batch_size=args.batch_size, model_dir=args.model_dir, overlay_dir=args.overlay_dir)
    print(f"scored {summary.files} files ({summary.unreadable} unreadable) in {summary.seconds:.1f} s "
          f"-> {summary.output}", file=sys.stderr)
    return 1 if summary.unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
