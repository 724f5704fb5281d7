"""How a training command ends: what the trainers' ``main`` functions share."""

from __future__ import annotations

import argparse
import sys


def run_training_cli(train_function, args: argparse.Namespace) -> int:
    """Runs ``train_function(args)``: a missing file or a bad value is an exit-2 message, not a traceback."""
    try:
        train_function(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
