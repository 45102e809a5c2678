"""Fuzz campaigns beyond one process: which example database the fuzz properties share, and `gradspec fuzz`.

A failure hypothesis finds is saved in its example database and replayed first on the next run that uses the
same database. `--fuzz-database` names one with a URL-like value, so that workers, jobs and machines share it:

    DIR                    hypothesis's DirectoryBasedExampleDatabase (a local folder, or one on a shared file system)
    redis://host:port/db   hypothesis.extra.redis.RedisExampleDatabase (also rediss:// and unix://; needs the redis
                           package: pip install 'gradspec[campaign]')
    readonly:VALUE         either of them wrapped in hypothesis's ReadOnlyDatabase: replayed, never written

Given several times, they are joined in hypothesis's MultiplexedDatabase (saved to each, replayed from all): a local
folder plus CI's Redis read-only replays what CI found without writing to it. Each fuzz test (property, engine and
device: the test's name) gets its own place in each database, and in hypothesis's default folder where none is given.
Every property is one nested hypothesis test whose database key (hypothesis's digest of its source) is the same for
all of them, and hypothesis deletes a replayed entry that does not fail: without a place of its own, one property's
or engine's run would erase the others' failures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

OPTION = "--fuzz-database"
REDIS_SCHEMES = ("redis", "rediss", "unix")
READONLY = "readonly:"
EXPECTED = "a folder (created if missing) or redis://host:port/db, optionally after readonly:"
KEY_PREFIX = b"gradspec-fuzz:"  # Redis keys: gradspec-fuzz:<test name>:<hypothesis's key>


class BadDatabase(ValueError):
    """A --fuzz-database value that cannot be used: the message names the option, the value and what was expected."""


@dataclass(frozen=True)
class DatabaseSpec:
    """One --fuzz-database value, parsed: a folder or a Redis URL, and whether it is only read."""

    text: str  # as given, for messages
    kind: str  # "directory" or "redis"
    location: str  # the folder, or the Redis URL
    readonly: bool = False


def parse(text: str) -> DatabaseSpec:
    """The value's kind and location; nothing is opened yet."""
    value = text[len(READONLY):] if text.startswith(READONLY) else text
    if not value.strip():
        raise BadDatabase(f"{OPTION} {text or repr(text)}: empty; expected {EXPECTED}")
    scheme = urlsplit(value).scheme.lower() if "://" in value else ""
    if scheme in REDIS_SCHEMES:
        check_redis_url(text, value, scheme)
        return DatabaseSpec(text, "redis", value, text.startswith(READONLY))
    if scheme:
        raise BadDatabase(f"{OPTION} {text}: unknown scheme {scheme}://; expected {EXPECTED}")
    return DatabaseSpec(text, "directory", value, text.startswith(READONLY))


def check_redis_url(text: str, url: str, scheme: str) -> None:
    """A port that is a number and a database that is one (the redis package would quietly take database 0)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError as exc:
        raise BadDatabase(f"{OPTION} {text}: not a Redis URL ({exc}); expected redis://host:port/db") from None
    if scheme != "unix" and not re.fullmatch(r"/?\d*", parts.path):
        raise BadDatabase(f"{OPTION} {text}: the database {parts.path.lstrip('/')!r} is not a number; "
                          "expected redis://host:port/db")


def check_folder(spec: DatabaseSpec) -> None:
    """A folder that exists, or can be made where its nearest existing parent is a writable folder."""
    path = Path(spec.location).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BadDatabase(f"{OPTION} {spec.text}: not a folder (a file or something else lies there); "
                              f"expected {EXPECTED}")
        if not spec.readonly and not os.access(path, os.W_OK | os.X_OK):
            raise BadDatabase(f"{OPTION} {spec.text}: the folder is not writable; expected a writable folder "
                              f"(or {READONLY}{spec.location} to replay it without saving)")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise BadDatabase(f"{OPTION} {spec.text}: {parent} is not a folder, so the folder cannot be made; "
                          f"expected {EXPECTED}")
    if not spec.readonly and not os.access(parent, os.W_OK | os.X_OK):
        raise BadDatabase(f"{OPTION} {spec.text}: the folder is missing and {parent} is not writable to make it")


def connect(spec: DatabaseSpec):
    """A Redis client for the URL that has answered a PING (so an unreachable server is an error before any run)."""
    try:
        import redis
    except ImportError:
        raise BadDatabase(f"{OPTION} {spec.text}: a Redis database needs the redis package, which is not installed "
                          "(pip install 'gradspec[campaign]')") from None
    try:
        client = redis.Redis.from_url(spec.location, socket_connect_timeout=5, socket_timeout=30)
    except ValueError as exc:
        raise BadDatabase(f"{OPTION} {spec.text}: not a Redis URL ({exc}); expected redis://host:port/db") from None
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        raise BadDatabase(f"{OPTION} {spec.text}: cannot reach Redis ({exc}); expected a running Redis server at "
                          "redis://host:port/db") from None
    return client


@dataclass
class Databases:
    """The chosen example databases of one pytest process, checked and connected once; one database per fuzz test."""

    specs: list[DatabaseSpec]
    clients: dict[str, object] = field(default_factory=dict)  # Redis URL: client

    @classmethod
    def open(cls, values: Sequence[str]) -> Databases:
        databases = cls([parse(value) for value in values])
        for spec in databases.specs:
            if spec.kind == "directory":
                check_folder(spec)
            elif spec.location not in databases.clients:
                databases.clients[spec.location] = connect(spec)
        return databases

    def for_test(self, name: str, default=None):
        """The hypothesis database of the fuzz test `name` (pytest's test name: property[engine-device-dtype]). Where
        no --fuzz-database was given: the test's place in `default` (the active profile's database) where that is a
        folder, else None (`default` as it is)."""
        from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase, ReadOnlyDatabase

        place = place_of(name)
        if not self.specs:
            return DirectoryBasedExampleDatabase(default.path / place) if isinstance(
                default, DirectoryBasedExampleDatabase) else None
        chosen = []
        for spec in self.specs:
            if spec.kind == "directory":
                database = DirectoryBasedExampleDatabase(Path(spec.location).expanduser() / place)
            else:
                from hypothesis.extra.redis import RedisExampleDatabase
                database = RedisExampleDatabase(self.clients[spec.location], key_prefix=KEY_PREFIX + place.encode() + b":")
            chosen.append(ReadOnlyDatabase(database) if spec.readonly else database)
        return chosen[0] if len(chosen) == 1 else MultiplexedDatabase(*chosen)


def place_of(name: str) -> str:
    """A test's place in a database, the same on every machine: its name (not its path, which differs between
    checkouts and installs), as a folder name."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "_"


# -- gradspec fuzz -------------------------------------------------------------------------------------------------


DESCRIPTION = ("Run the fuzz properties (pytest --pyargs gradspec.fuzz) with pytest-xdist workers, for a number of "
               "draws or a time budget, saving failures to an example database that other workers, jobs and machines "
               "replay first. Options not listed here go to pytest as they are (--device, -k, --junitxml, "
               "--hypothesis-profile, ...).")


def add_arguments(parser) -> None:
    """The options of `gradspec fuzz`; any other option goes to pytest as it is."""
    parser.add_argument("--engine", action="append", default=[], metavar="NAME",
                        help="engine(s) to fuzz, as pytest --engine takes them (default: the built-in engines that "
                             "are installed)")
    parser.add_argument("-n", "--workers", default="auto", metavar="N",
                        help="pytest-xdist worker processes: a number, or auto for one per CPU core (default); 0 for "
                             "one pytest process without workers")
    parser.add_argument("--examples", "--fuzz-examples", dest="examples", type=positive_int, default=None, metavar="N",
                        help="random draws per property and engine, in each round (default 100)")
    parser.add_argument("--time-budget", type=seconds, default=None, metavar="SECONDS",
                        help="run rounds of --examples draws until this many seconds have passed or a round fails "
                             "(default: one round)")
    parser.add_argument("--database", "--fuzz-database", dest="databases", action="append", default=[],
                        metavar="URL", help=f"the example database the workers share: {EXPECTED}; repeat to use "
                                            "several (hypothesis's MultiplexedDatabase)")
    parser.add_argument("--staging", "--fuzz-staging", dest="staging", default=None, metavar="DIR",
                        help="where shrunk failing draws are written as case files (default fuzz-staging/)")


def positive_int(text: str) -> int:
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a campaign draws at least 1 example per property")
    return value


def seconds(text: str) -> float:
    from gradspec.plugin import time_limit
    return time_limit(text)


def pytest_command(args, extra: Sequence[str]) -> list[str]:
    """One round: the fuzz properties through pytest, with xdist workers unless -n 0."""
    command = [sys.executable, "-m", "pytest", "--pyargs", "gradspec.fuzz", "-p", "no:cacheprovider"]
    if str(args.workers) not in ("0", ""):
        command += ["-n", str(args.workers)]
    for engine in args.engine:
        command += ["--engine", engine]
    if args.examples is not None:
        command += ["--fuzz-examples", str(args.examples)]
    for database in args.databases:
        command += [OPTION, database]
    if args.staging is not None:
        command += ["--fuzz-staging", args.staging]
    return command + list(extra)


def campaign(args, extra: Sequence[str], clock=time.monotonic) -> int:
    """Check the databases (a bad one is a usage error, exit 2, before anything runs), then run rounds of the fuzz
    properties until the time budget is spent or a round fails; the exit status of the last round."""
    try:
        Databases.open(args.databases)
    except BadDatabase as exc:
        print(f"gradspec fuzz: {exc}", file=sys.stderr)
        return 2
    command = pytest_command(args, extra)
    start, rounds = clock(), 0
    while True:
        rounds += 1
        if args.time_budget is not None:
            print(f"gradspec fuzz: round {rounds}, {clock() - start:.0f} of {args.time_budget:.0f} s spent", flush=True)
        status = subprocess.call(command)
        if status != 0 or args.time_budget is None or clock() - start >= args.time_budget:
            break
    if args.time_budget is not None:
        verdict = "stopped by a failing round" if status else "no failure"
        print(f"gradspec fuzz: {rounds} round(s) in {clock() - start:.0f} s, {verdict}", flush=True)
    return status
