"""The GitHub Actions workflow shipped for an engine's repository, and what the wheel needs for the commands the README
documents (issue 25, items 12 and 14): every gradspec and pytest command line in it goes through the real parsers."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from gradspec import __version__
from gradspec.cli import build_parser
from gradspec.cli import main as cli
from gradspec.corpus import cases_folder, ci_workflow_file

from .conftest import REPO


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(ci_workflow_file().read_text(encoding="utf-8"))


def steps(workflow: dict) -> list[dict]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def command_lines(workflow: dict) -> list[list[str]]:
    """Each gradspec or pytest command of the run steps, split as the shell splits it, with the workflow's `env`
    values in place of its variables."""
    found = []
    for step in steps(workflow):
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            line = re.sub(r"\$\{?(\w+)\}?", lambda m: workflow["env"].get(m[1], m[0]), line)
            words = shlex.split(line, comments=True)
            if words[:1] == ["gradspec"] or words[:3] == ["python", "-m", "pytest"]:
                found.append(words)
    return found


def option_value(words: list[str], option: str) -> str:
    return words[words.index(option) + 1]


def test_the_workflow_sets_up_runs_caches_uploads_and_summarizes(workflow):
    assert set(workflow) >= {"name", "env", "jobs"} and {"push", "pull_request"} <= set(workflow.get(True) or workflow["on"])
    uses = [step["uses"].split("@")[0] for step in steps(workflow) if "uses" in step]
    assert uses == ["actions/checkout", "actions/setup-python", "actions/cache", "actions/upload-artifact"]
    assert workflow["env"]["GRADSPEC_REQUIREMENT"] == f"gradspec=={__version__}"  # the corpus its expectations fit
    install = next(step["run"] for step in steps(workflow) if "pip install" in step.get("run", ""))
    assert "$ENGINE_INSTALL" in install and "$GRADSPEC_REQUIREMENT" in install

    commands = command_lines(workflow)
    corpus = next(words for words in commands if words[:2] == ["gradspec", "run"])
    fuzz = next(words for words in commands if "gradspec.fuzz" in words)
    # gated on the expectation file, strictly
    assert {"--engine", "--expectations", "--strict-expectations", "--gradspec-report", "--gradspec-markdown"} <= set(corpus)
    assert option_value(fuzz, "--engine") == option_value(corpus, "--engine") == workflow["env"]["ADAPTER"]
    assert option_value(corpus, "--expectations") == workflow["env"]["EXPECTATIONS"]
    # the hypothesis database the fuzz step uses is the folder the cache keeps
    cache = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == option_value(fuzz, "--fuzz-database") and cache["with"]["restore-keys"]
    assert "${{ github.run_id }}" in cache["with"]["key"]  # a cache entry is never overwritten: a new key each run
    # the Markdown summary goes to the job page, and every report into the artifact, even when a step failed
    markdown = option_value(corpus, "--gradspec-markdown")
    summary = next(step for step in steps(workflow) if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert f"cat {markdown} >> \"$GITHUB_STEP_SUMMARY\"" in summary["run"] and "cancelled()" in summary["if"]
    upload = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/upload-artifact"))
    folder = upload["with"]["path"].rstrip("/") + "/"
    for path in (option_value(corpus, "--gradspec-report"), markdown, option_value(fuzz, "--fuzz-staging"),
                 option_value(fuzz, "--junitxml")):
        assert path.startswith(folder), path
    assert "cancelled()" in upload["if"]


def test_every_command_of_the_workflow_parses_with_gradspecs_real_options(workflow, pytester):
    """`gradspec run` and `python -m pytest` lines through pytest's parser with gradspec's plugin (and xdist's, a
    dependency), the other gradspec commands through gradspec's own: an option that does not exist fails here."""
    commands = command_lines(workflow)
    assert len(commands) >= 3
    for words in commands:
        if words[:2] == ["gradspec", "run"]:
            config = pytester.parseconfig(str(cases_folder()), *words[2:])
            assert config.getoption("--strict-expectations") and config.getoption("numprocesses") == 2
        elif words[0] == "python":
            config = pytester.parseconfig(*words[3:])
            assert config.getoption("--fuzz-database") and config.getoption("--fuzz-examples") is not None
        else:
            build_parser().parse_args(words[1:])
    with pytest.raises(pytest.UsageError):  # the check is a real one
        pytester.parseconfig(str(cases_folder()), "--gradspec-no-such-option")


def test_gradspec_ci_workflow_writes_the_shipped_file(tmp_path, capsys):
    target = tmp_path / ".github" / "workflows" / "gradspec.yml"
    assert cli(["ci-workflow", "-o", str(target)]) == 0
    assert target.read_text() == ci_workflow_file().read_text()
    assert cli(["ci-workflow"]) == 0
    assert capsys.readouterr().out == ci_workflow_file().read_text()


def test_pytest_xdist_is_a_dependency_of_the_wheel():
    """`gradspec run ... -n 2` is documented for the installed package: the wheel must bring xdist."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert any(requirement.startswith("pytest-xdist") for requirement in project["project"]["dependencies"])
    assert "gradspec.ci" in project["tool"]["setuptools"]["packages"]
    assert "*.yml" in project["tool"]["setuptools"]["package-data"]["gradspec.ci"]
