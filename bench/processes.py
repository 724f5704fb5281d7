"""Figures about whole processes: cold starts, the streamlit server in a browser, training."""

from __future__ import annotations

from pathlib import Path

from bench import startup
from bench.report import figure, measure, once
from bench.timing import summary


def cold_start(paths: list[Path], runs: int) -> tuple[list[dict], dict]:
    """Our script and the naive one, taking turns, each in a fresh interpreter."""
    ours, naive = [], []
    for run in range(runs):
        ours.append(startup.run_script(startup.OURS, paths[run]))
        naive.append(startup.run_script(startup.NAIVE, paths[run]))

    def stat(events, name, key="since_launch"):
        return summary([event[name][key] for event in events])

    figures = [
        figure("cold_verdict", "cold process -> first verdict (s)",
               measure("python -c: import core, load, classify", stat(ours, "verdict"), "s"),
               (measure("naive: keras load_model + model.predict", stat(naive, "verdict"), "s"),)),
        figure("cold_heatmap", "cold process -> verdict + heatmap PNG (s)",
               measure("ours, Grad-CAM in the same pass + overlay PNG", stat(ours, "heatmap"), "s"),
               (measure("naive: + tf-keras-vis rebuilt + mpl + PIL", stat(naive, "heatmap"), "s"),)),
        figure("cold_rss", "cold process peak RSS (MiB)",
               measure("ours (to verdict + heatmap)", stat(ours, "heatmap", "peak_rss_mb"), "MiB"),
               (measure("naive", stat(naive, "heatmap", "peak_rss_mb"), "MiB"),)),
    ]
    return figures, {"ours": ours, "naive": naive}


def browser(paths: list[Path], warm_uploads: int, in_process_ms: float) -> tuple[list[dict], dict]:
    """`streamlit run` to the first verdict, warm uploads and the server's memory."""
    result = startup.browser_figures(paths, warm_uploads)
    watched = result["with_file_watcher"]

    def part(what, seconds):  # a breakdown row: shown beside the figure, no ratio
        return measure(what, once(seconds), "s", comparable=False)

    figures = [
        figure("streamlit_first_answer", "streamlit run -> first verdict shown (s)",
               measure("as configured: start, page, upload, verdict", once(result["first_verdict_s"]), "s"),
               (part("  of which: server healthy", result["healthy_s"]),
                part("  of which: uploader shown", result["uploader_shown_s"]),
                part("  and the heatmap shown too", result["first_heatmap_s"]),
                part("with the file watcher on (auto)", watched["first_verdict_s"]),
                part("  of which: uploader shown", watched["uploader_shown_s"]),
                part("  and the heatmap shown too", watched["first_heatmap_s"]))),
        figure("browser_warm", "warm upload -> verdict + heatmap (browser)",
               measure("Chromium, loopback", summary([s * 1e3 for s in result["warm_upload_s"]])),
               (measure("same path in-process (whole path p50)", {"p50": in_process_ms, "p95": None, "n": None},
                        comparable=False),)),
        figure("server_rss", "streamlit server peak RSS (MiB)",
               measure("VmHWM after the uploads above", once(result["server_peak_rss_mb"]), "MiB")),
    ]
    return figures, result


def training(data_dir: Path, metadata: dict, per_class: int) -> tuple[list[dict], dict]:
    from bench.training import epoch_seconds

    result = epoch_seconds(data_dir, metadata, per_class)
    full = {"p50": result["extrapolated_full_epoch_s"], "p95": None, "n": None}
    shipped = {"p50": result["shipped_s_per_epoch"], "p95": None, "n": None}
    figures = [
        figure("train_epoch", f"training: 1 epoch on {result['n_train']} images (s)",
               measure("training.train_v1, epoch 2 (epoch 1 traces)", once(result["steady_epoch_s"]), "s"),
               (measure("epoch 1, with tracing", once(result["first_epoch_s"]), "s", comparable=False),)),
        figure("train_epoch_full", "training: 1 epoch, full train split (s)",
               measure(f"EXTRAPOLATED × {result['full_train']}/{result['n_train']}", full, "s"),
               (measure("shipped model's own log (fit_seconds/epochs)", shipped, "s", comparable=False),)),
    ]
    return figures, result
