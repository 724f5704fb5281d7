"""Speed benchmark of the shipped model's path from an upload to a verdict and a heatmap.

    .venv/bin/python -m bench [--quick] [--no-browser] [--no-training] [--out results.json]

Every figure is measured next to its naive baseline in the same run (``model.predict``, a
tf-keras-vis visualiser rebuilt per call, the previous overlay and PNG encoder), because shared
machines are noisy and only ratios compare between runs. See docs/performance.md.
"""
