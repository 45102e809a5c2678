"""What gradspec reads and writes must be plain files: never a device, a FIFO, a folder, nor one of the run's inputs.

Opening a FIFO blocks forever, reading /dev/zero never ends, and replacing /dev/full or a
case file with a report destroys what was there. Each check says which path and why.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path


class BadPath(ValueError):
    """A path gradspec will not read or write, with the reason."""


def readable_file(path: str | Path, what: str, limit: int = 64 * 1024**2) -> Path:
    """`path` if it is a regular file of at most `limit` bytes (an input: expectations, a report to render)."""
    path = Path(path)
    try:
        status = path.stat()
    except OSError as exc:
        raise BadPath(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(status.st_mode):
        raise BadPath(f"{path}: the {what} must be a regular file, not {_kind(status.st_mode)}")
    if status.st_size > limit:
        raise BadPath(f"{path}: the {what} is {status.st_size} bytes, over the {limit}-byte limit")
    return path


def writable_outputs(outputs: dict[str, str | None], inputs: Iterable[str | Path] = (), what: str = "a report") -> None:
    """Check the report paths of a run before it starts, creating nothing: each is a regular file or a new name
    in a folder that exists or can be made, no two coincide, and none is an input of the run (or inside an input
    folder with a case file's suffix). `what` names the output in messages."""
    seen: dict[Path, str] = {}
    resolved_inputs = [Path(p).resolve() for p in inputs]
    for option, given in outputs.items():
        if not given:
            continue
        path = Path(given)
        resolved = path.resolve()
        if resolved in seen:
            raise BadPath(f"{option} {given}: the same file as {seen[resolved]}: each output needs its own path")
        seen[resolved] = f"{option} {given}"
        for source in resolved_inputs:
            inside_folder = source.is_dir() and source in resolved.parents and resolved.suffix in (".yaml", ".yml")
            if resolved == source or inside_folder:
                raise BadPath(f"{option} {given}: is an input of this run ({source}); {what} would replace it")
        try:
            status = path.stat()
        except FileNotFoundError:
            _check_folder(path, option)
            continue
        except OSError as exc:
            raise BadPath(f"{option} {given}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(status.st_mode):
            raise BadPath(f"{option} {given}: {what} must be written to a regular file, not {_kind(status.st_mode)}")
        if not os.access(path, os.W_OK):
            raise BadPath(f"{option} {given}: the file is not writable")


def _check_folder(path: Path, option: str) -> None:
    folder = path.parent
    while not folder.exists():  # made when the report is written
        folder = folder.parent
    if not folder.is_dir():
        raise BadPath(f"{option} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadPath(f"{option} {path}: cannot write in {folder}")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename over it: a kill mid-write leaves the old file or the new one. A symbolic
    link is followed, so the file it names gets the text and the link stays."""
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
