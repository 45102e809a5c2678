"""Import an adapter that gradspec does not ship in a process of its own first, so that one that segfaults, exits or
hangs at import is a usage error saying so, not a dead or stalled pytest.

pytest's process imports every chosen adapter (their names, devices and capabilities decide the test ids), and a crash
there can only be survived if a child process met it first. The probe costs a Python start-up plus the adapter's own
import, once per pytest process (0.4 s for an adapter over the reference engine, 2.3 s for one over torch, measured on
2 busy cores), so gradspec's own adapters, whose imports are its own code and the engines', are not probed.
An adapter that merely raises at import needs no probe: load_adapter turns that into EngineNotFound with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from gradspec.running.isolation import STARTUP_TIMEOUT, describe_exit
from gradspec.running.registry import EngineNotFound, registered

FINISHED = "gradspec: adapter import finished"
PROBE = f"""
import sys
sys.path[:] = sys.argv[2:]
from gradspec.running.registry import load_adapter
try:
    load_adapter(sys.argv[1])
except BaseException:  # pytest's process imports it again and says why
    pass
print({FINISHED!r}, flush=True)
"""


def shipped(name: str) -> bool:
    """Whether `name` is one of gradspec's own adapters (an entry point or a module of the gradspec package); an
    unknown name is left to load_adapter, which says so."""
    if ":" in name:
        module = name.partition(":")[0]
    else:
        entry_point = registered().get(name)
        if entry_point is None:
            return True
        module = entry_point.value.partition(":")[0]
    return module.strip() == "gradspec" or module.strip().startswith("gradspec.")


def check(name: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Raise EngineNotFound, on one line, if importing the adapter `name` kills, ends or stalls its process."""
    if shipped(name):
        return
    probe = subprocess.Popen([sys.executable, "-c", PROBE, name, *sys.path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        output, _ = probe.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(probe)
        raise EngineNotFound(f"cannot load adapter {name!r}: importing it did not finish within {timeout:g} s "
                             "(it hangs); its process was killed") from None
    if FINISHED in output.decode(errors="replace").splitlines():
        return
    raise EngineNotFound(f"cannot load adapter {name!r}: the process importing it ended "
                         f"({describe_exit(probe.returncode)}) before the import finished")


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()
