"""What the pages import before the model loads: the first visitor's wait starts here."""

import json
import subprocess
import sys

from core.config import PROJECT_DIR

HEAVY = ("tensorflow", "keras", "sklearn", "matplotlib", "scipy.optimize")


def test_the_shared_page_modules_import_no_heavy_library():
    # A fresh interpreter: this test session has long imported all of them.
    probe = ("import json, sys, ui.state, ui.widgets; "
             f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
