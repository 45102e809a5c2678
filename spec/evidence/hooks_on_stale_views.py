"""HOOK-1: a hook can be registered on a view whose base was updated in place since (the view's history is made
again, VIEW-4). Run in a child process, since PyTorch crashes there (repro_hook_on_stale_view.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gradspec.spec.evidence import experiment


@experiment("HOOK-1", claim="registering a hook on a view of a leaf updated in place under no_grad works, as on any tensor")
def hook_on_a_view_of_an_updated_leaf():
    script = Path(__file__).with_name("repro_hook_on_stale_view.py")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    return [("exit code of 3000 rounds of view, in-place update under no_grad, register_hook", run.returncode, 0)]
