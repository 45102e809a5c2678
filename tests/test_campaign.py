"""Fuzz campaigns (gradspec.fuzz.campaign, `gradspec fuzz`): processes that share nothing but hypothesis's example
database, a folder or a real Redis server, replay each other's failures first.

The planted engine below has a fault no case was written for; the first process finds it with a full budget, and a
second one with a budget of one draw, which finds nothing on its own (checked), fails with the same shrunk draw.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradspec import cli
from gradspec.fuzz import campaign
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    InMemoryExampleDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

from .conftest import REPO
from .test_fuzz import SmallVocabulary


class SinOffBy1e4(SmallVocabulary):
    """A planted engine bug: sin (value and derivative) is 1e-4 too large, relative; found by finite differences."""

    name = "sin-off-by-1e-4"

    def apply(self, op, args, kwargs):
        result = super().apply(op, args, kwargs)
        return result * (1 + 1e-4) if op == "sin" else result


PLANTED = "tests.test_campaign:SinOffBy1e4"
HEALTHY = "tests.test_fuzz:SmallVocabulary"
PROPERTY = "first_order_gradients_match_finite_differences"  # the one property these runs select, with -k


def fuzz(folder: Path, engine: str, examples: int, *databases: str, command: tuple[str, ...] = ("pytest",),
         extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, list[Path]]:
    """One worker process of its own, in its own folder (so it shares nothing but the databases): the property on
    `engine` with `examples` draws. Its result, and the case files it staged."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / "staging"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # for the tests' engines
    if command == ("pytest",):
        argv = [sys.executable, "-m", "pytest", "--pyargs", "gradspec.fuzz", "-p", "no:cacheprovider",
                "--fuzz-examples", str(examples), "--fuzz-staging", str(staging)]
        argv += [word for database in databases for word in ("--fuzz-database", database)]
    else:
        argv = [sys.executable, "-m", "gradspec.cli", *command, "--examples", str(examples), "--staging", str(staging)]
        argv += [word for database in databases for word in ("--database", database)]
    argv += ["--engine", engine, "-k", PROPERTY, "-q", *extra]
    run = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    return run, sorted((staging / "cases").glob("*.yaml"))


def failed_with_one_case(run: subprocess.CompletedProcess, staged: list[Path]) -> Path:
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    assert "OracleMismatch" in run.stdout and "1 failed" in run.stdout, run.stdout[-3000:]
    assert len(staged) == 1, staged
    return staged[0]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def planted_failure(tmp_path_factory) -> tuple[Path, Path]:
    """A folder database in which the first worker saved the planted fault's shrunk draw; and the case it staged."""
    root = tmp_path_factory.mktemp("first-worker")
    run, staged = fuzz(root / "worker", PLANTED, 200, str(root / "database"), extra=("--hypothesis-profile", "ci"))
    return root / "database", failed_with_one_case(run, staged)


def test_one_draw_alone_does_not_find_the_planted_fault(tmp_path):
    """So a second worker that fails with that budget has replayed the database, not drawn the failure by chance
    (hypothesis's first draw is its simplest, which has no sin)."""
    run, staged = fuzz(tmp_path / "worker", PLANTED, 1, str(tmp_path / "empty-database"))
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:]
    assert staged == []


def test_a_failure_saved_in_a_shared_folder_is_replayed_first_by_another_worker(planted_failure, tmp_path):
    database, found = planted_failure
    shared = tmp_path / "shared"
    shutil.copytree(database, shared)
    # Another engine's run of the same property on the same database passes and erases nothing: every fuzz test has
    # its own place there (the properties' hypothesis keys are all the same, and hypothesis deletes what it replays
    # without a failure).
    before = files(shared)
    run, staged = fuzz(tmp_path / "healthy", HEALTHY, 20, str(shared))
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:]
    assert {k: v for k, v in files(shared).items() if k in before} == before
    run, staged = fuzz(tmp_path / "second", PLANTED, 1, str(shared))
    replayed = failed_with_one_case(run, staged)
    assert (replayed.name, replayed.read_text()) == (found.name, found.read_text())  # the same shrunk draw


def test_a_read_only_shared_folder_is_replayed_and_left_as_it_was(planted_failure, tmp_path):
    """A developer's recipe: a local folder plus CI's database read-only (hypothesis's Multiplexed and ReadOnly)."""
    database, found = planted_failure
    shared, local = tmp_path / "shared", tmp_path / "local"
    shutil.copytree(database, shared)
    before = files(shared)
    run, staged = fuzz(tmp_path / "developer", PLANTED, 1, str(local), f"readonly:{shared}")
    replayed = failed_with_one_case(run, staged)
    assert replayed.read_text() == found.read_text()
    assert files(shared) == before  # read, never written
    assert files(local)  # the failure is saved where the developer's runs write


# -- a real Redis server ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    """Debian's redis-server on a free loopback port, in a folder of its own, without persistence; stopped after."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)")
    redis = pytest.importorskip("redis", reason="the redis package is not installed (pip install 'gradspec[campaign]')")
    for _attempt in range(3):  # another process may take the free port between the probe and the server's start
        port = free_port()
        process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                    "no", "--dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while process.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        else:
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
            continue
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            client.close()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        return
    pytest.fail(f"redis-server did not start on a loopback port: {output[-2000:]}")


def stored(url: str) -> dict[bytes, set[bytes]]:
    import redis
    client = redis.Redis.from_url(url)
    try:
        return {key: client.smembers(key) for key in client.keys("*") if client.type(key) == b"set"}
    finally:
        client.close()


def test_a_failure_saved_in_redis_is_replayed_first_by_a_campaign_elsewhere(redis_url, tmp_path):
    """The first worker (pytest, full budget) saves the shrunk draw in Redis, in its test's place; `gradspec fuzz` with
    two xdist workers and one draw replays it first."""
    run, staged = fuzz(tmp_path / "first", PLANTED, 200, redis_url, extra=("--hypothesis-profile", "ci"))
    found = failed_with_one_case(run, staged)
    place = campaign.KEY_PREFIX + f"test_{PROPERTY}_sin-off-by-1e-4-cpu-float64:".encode()
    assert stored(redis_url) and all(key.startswith(place) for key in stored(redis_url))
    run, staged = fuzz(tmp_path / "second", PLANTED, 1, redis_url, command=("fuzz", "-n", "2"))
    replayed = failed_with_one_case(run, staged)
    assert "bringing up nodes" in run.stdout  # pytest-xdist's workers
    assert (replayed.name, replayed.read_text()) == (found.name, found.read_text())


def test_the_redis_database_is_hypothesiss_own_with_a_place_per_test(redis_url):
    from hypothesis.extra.redis import RedisExampleDatabase
    databases = campaign.Databases.open([redis_url, f"readonly:{redis_url}"])
    database = databases.for_test("test_x[torch-cpu-float64]")
    assert isinstance(database, MultiplexedDatabase)
    writable, readonly = database._wrapped
    assert isinstance(writable, RedisExampleDatabase) and isinstance(readonly, ReadOnlyDatabase)
    database.save(b"key", b"value")
    assert stored(redis_url) == {b"gradspec-fuzz:test_x_torch-cpu-float64:key": {b"value"}}


# -- usage errors before anything runs ----------------------------------------------------------------------------


def test_a_file_where_the_database_folder_should_be_is_a_usage_error(pytester, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = pytester.runpytest("--pyargs", "gradspec.fuzz", "--fuzz-database", str(tmp_path / "a-file"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--fuzz-database {tmp_path / 'a-file'}: not a folder*expected a folder*"])
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


def test_an_unreachable_redis_server_is_a_usage_error(pytester):
    pytest.importorskip("redis", reason="the redis package is not installed (pip install 'gradspec[campaign]')")
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = pytester.runpytest("--pyargs", "gradspec.fuzz", "--fuzz-database", url)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--fuzz-database {url}: cannot reach Redis (*); expected a running Redis server*"])


@pytest.mark.parametrize(("value", "message"), [
    ("s3://bucket/examples", "--fuzz-database s3://bucket/examples: unknown scheme s3://; expected a folder (created if "
                             "missing) or redis://host:port/db, optionally after readonly:"),
    ("", "--fuzz-database '': empty; expected a folder (created if missing) or redis://host:port/db, optionally "
         "after readonly:"),
    ("readonly:", "--fuzz-database readonly:: empty; expected a folder*"),
    ("redis://127.0.0.1:6379/one", "--fuzz-database redis://127.0.0.1:6379/one: the database 'one' is not a number; "
                                   "expected redis://host:port/db"),
    ("redis://127.0.0.1:port/0", "--fuzz-database redis://127.0.0.1:port/0: not a Redis URL (*); "
                                 "expected redis://host:port/db"),
])
def test_values_that_name_no_database_are_refused_with_what_was_expected(value, message):
    with pytest.raises(campaign.BadDatabase) as info:
        campaign.Databases.open([value])
    assert fnmatch.fnmatchcase(str(info.value), message), str(info.value)


def test_redis_without_the_redis_package_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis raises ImportError
    with pytest.raises(campaign.BadDatabase, match=r"--fuzz-database redis://127\.0\.0\.1:1/0: a Redis database needs "
                                                   r"the redis package.*gradspec\[campaign\]"):
        campaign.Databases.open(["redis://127.0.0.1:1/0"])


def test_gradspec_fuzz_refuses_a_bad_database_before_running_anything(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("pytest ran despite the bad database"))
    assert cli.main(["fuzz", "--database", str(tmp_path / "a-file")]) == 2
    assert f"gradspec fuzz: --fuzz-database {tmp_path / 'a-file'}: not a folder" in capsys.readouterr().err


# -- the campaign command ------------------------------------------------------------------------------------------


def test_gradspec_fuzz_builds_one_pytest_command_and_passes_other_options_on(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command: calls.append(command) or 0)
    assert cli.main(["fuzz", "--engine", "torch", "-n", "3", "--examples", "7", "--database", "db", "--database",
                     "readonly:shared", "--staging", "out", "--device", "cpu", "-k", "kinks"]) == 0
    (command,) = calls
    assert command[:7] == [sys.executable, "-m", "pytest", "--pyargs", "gradspec.fuzz", "-p", "no:cacheprovider"]
    words = command[7:]
    assert words == ["-n", "3", "--engine", "torch", "--fuzz-examples", "7", "--fuzz-database", "db",
                     "--fuzz-database", "readonly:shared", "--fuzz-staging", "out", "--device", "cpu", "-k", "kinks"]
    calls.clear()
    assert cli.main(["fuzz", "-n", "0"]) == 0
    assert "-n" not in calls[0]  # no workers: one pytest process


def test_a_time_budget_runs_rounds_until_it_is_spent_or_a_round_fails(monkeypatch, capsys):
    now = [0.0]
    statuses = iter([0, 0, 0, 0, 0])

    def round_of_40_seconds(command):
        now[0] += 40
        return next(statuses)

    monkeypatch.setattr(subprocess, "call", round_of_40_seconds)
    args = argparse.Namespace(engine=[], workers="auto", examples=10, time_budget=100.0, databases=[], staging=None)
    assert campaign.campaign(args, [], clock=lambda: now[0]) == 0
    assert now[0] == 120  # rounds start at 0, 40 and 80 s; the budget is spent at 120
    assert "3 round(s) in 120 s, no failure" in capsys.readouterr().out
    now[0], statuses = 0.0, iter([0, 1, 0])
    assert campaign.campaign(args, [], clock=lambda: now[0]) == 1
    assert "2 round(s) in 80 s, stopped by a failing round" in capsys.readouterr().out


def test_a_database_value_names_a_folder_or_redis_and_may_be_read_only(tmp_path):
    assert campaign.parse("db") == campaign.DatabaseSpec("db", "directory", "db")
    assert campaign.parse("readonly:redis://h:1/2") == campaign.DatabaseSpec("readonly:redis://h:1/2", "redis",
                                                                             "redis://h:1/2", readonly=True)
    database = campaign.Databases.open([str(tmp_path / "a")]).for_test("test_y[jax-cpu-float64]")
    assert database == DirectoryBasedExampleDatabase(tmp_path / "a" / "test_y_jax-cpu-float64")
    # none given: the test's place in the profile's folder (hypothesis's default, .hypothesis/examples), else as it is
    default = DirectoryBasedExampleDatabase(tmp_path / "default")
    assert campaign.Databases.open([]).for_test("test_y[jax-cpu-float64]", default) == DirectoryBasedExampleDatabase(
        tmp_path / "default" / "test_y_jax-cpu-float64")
    assert campaign.Databases.open([]).for_test("test_y[jax-cpu-float64]", None) is None  # e.g. the ci profile's
    assert campaign.Databases.open([]).for_test("test_y", InMemoryExampleDatabase()) is None
