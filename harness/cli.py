"""The `gradspec` command: run the shipped corpus, validate case files and list them by area and rule.

`gradspec run [PYTEST OPTIONS]` runs the corpus that ships inside the package (no checkout
needed) through pytest with gradspec's plugin: `gradspec run --engine mypkg.adapter:MyAdapter
--gradspec-report report.json`; every option of `pytest cases` works here.

`gradspec validate [PATH ...]` checks every case file and prints one precise error per
broken file (exit 1 if any). `gradspec list [PATH ...]` prints the cases with the rules
they cite and the capabilities they need. `gradspec report REPORT.json` renders a JSON
report (from `pytest cases --gradspec-report PATH`) as Markdown; `gradspec diff OLD NEW`
says what newly fails, what got fixed and what else changed (exit 1 on new failures);
`gradspec export CASE.yaml` writes the case as a standalone torch script for a bug report;
`gradspec faults [PATH ...]` plants a violation of each MUST rule in the reference engine
and says which cases catch it (exit 1 if a rule's violation would pass); `gradspec versions
REPORT.json ...` builds the matrix of one engine's releases (`make versions`) and exits 1
on a difference that spec/versions.yaml does not explain. `gradspec expectations REPORT.json
[-o FILE]` writes the expectation file of a run's failures, a reason placeholder on each line;
`gradspec ci-workflow [-o FILE]` writes a GitHub Actions workflow for an engine's repository.
`gradspec fuzz [--engine E] [-n N] [--examples N | --time-budget S] [--database URL]` runs a fuzz campaign
(gradspec.fuzz.campaign): the fuzz properties with pytest-xdist workers sharing hypothesis's example database.
Running the cases is pytest's job: `pytest cases --engine NAME`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from gradspec import __version__, contracts
from gradspec.language.errors import CaseFileError
from gradspec.language.loader import find_case_files, load_case
from gradspec.paths import BadPath


def case_files(paths: Iterable[str]) -> list[Path]:
    """The case files under the given folders (as pytest collects them) and every file given by name, sorted."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(find_case_files(path))
        elif path.exists():
            found.add(path)
        else:
            raise FileNotFoundError(f"{raw}: no such file or folder")
    return sorted(found)


def load_all(paths: Sequence[str]) -> tuple[list, int]:
    """Every case under `paths`, printing one precise error per broken file; and how many were broken."""
    cases, broken = [], 0
    for path in case_files(paths):
        try:
            cases.append(load_case(path))
        except CaseFileError as exc:
            broken += 1
            print(exc, file=sys.stderr)
        else:
            for note in cases[-1].advice:
                print(f"{path}: warning: {note}", file=sys.stderr)
    return cases, broken


def validate(paths: Sequence[str]) -> int:
    cases, broken = load_all(paths)
    print(f"{len(cases)} valid, {broken} invalid case file(s)")
    return 1 if broken else 0


def list_cases(paths: Sequence[str]) -> int:
    by_area: dict[str, list] = defaultdict(list)
    for case in load_all(paths)[0]:
        by_area[case.area].append(case)
    rules = contracts.rules()
    for area in sorted(by_area):
        print(f"{area or '.'}/")
        for case in sorted(by_area[area], key=lambda c: c.id):
            print(f"  {case.id}: {case.title}")
            print(f"    rules: {', '.join(case.rules)}   needs: {', '.join(sorted(case.capabilities))}")
    cited = {rule for cases in by_area.values() for case in cases for rule in case.rules}
    must = [rule for rule, entry in rules.items() if entry.level == "MUST"]
    print(f"{sum(map(len, by_area.values()))} cases; {len([r for r in must if r in cited])}/{len(must)} MUST rules cited")
    return 0


def engines(names: Sequence[str]) -> int:
    """Each registered engine (or each one named): version, devices, dtypes, capabilities, and why it cannot run."""
    from gradspec.running.interpreter import effective_capabilities
    from gradspec.running.registry import EngineNotFound, load_adapter, registered

    broken = 0
    for name in names or sorted(registered()):
        try:
            adapter = load_adapter(name)
        except EngineNotFound as exc:
            broken += 1
            print(f"{name}: {exc}")
            continue
        reason = adapter.unavailable_reason()
        print(f"{name}: {adapter.version() if reason is None else 'not runnable here: ' + reason}")
        devices = []
        for device in adapter.devices:
            why = None if reason else adapter.device_unavailable_reason(device)
            devices.append(device if why is None else f"{device} (not here: {why})")
        print(f"  devices: {', '.join(devices)}   dtypes: {', '.join(adapter.dtypes)}")
        lacking = sorted(set(contracts.capabilities()) - effective_capabilities(adapter))
        print(f"  capabilities: {', '.join(sorted(adapter.capabilities)) or 'none'}")
        print(f"  lacks: {', '.join(lacking) or 'nothing'}")
        _print_lacking_ops(adapter, reason)
    return 1 if broken else 0


def _print_lacking_ops(adapter: type, unavailable: str | None) -> None:
    """Each op the engine lacks, with the reason (Adapter.lacking_ops: declared ones and its op table's gaps)."""
    if unavailable is None:
        device = next((d for d in adapter.devices if adapter.device_unavailable_reason(d) is None), adapter.devices[0])
        try:
            lacking = adapter(device, adapter.dtypes[0]).lacking_ops()
        except Exception as exc:  # noqa: BLE001 - an adapter that cannot be made says so, and the others still print
            print(f"  lacks ops: unknown (making the adapter raised {type(exc).__name__}: {exc})")
            return
    else:  # its op table is known only where the engine can be imported
        lacking = adapter.declared_lacking_ops()
    print(f"  lacks ops: {len(lacking) or 'none'}")
    for op, why in lacking.items():
        print(f"    {op}: {why}")
    once = adapter.once_differentiable_ops
    if once:
        print(f"  ops without a second derivative: {len(once)}")
        for op, why in sorted(once.items()):
            print(f"    {op}: {why}")
    tolerates = adapter.fuzz_tolerates
    if tolerates:
        print(f"  differences the sequence fuzzer tolerates: {len(tolerates)}")
        for name, case in sorted(tolerates.items()):
            print(f"    {name}: recorded by {case}")


def check_faults(paths: Sequence[str], coverage_path: str | None = None) -> int:
    """Per MUST rule (and convention with a planted fault), the cases that fail when the reference engine is made to
    break it (gradspec.faults); with `coverage_path`, that per case as JSON, for reports to read."""
    from gradspec.faults import FAULTS, REALISTIC, catching_cases, coverage_data, rule_coverage

    cases, broken = load_all(paths)
    if coverage_path is not None:
        Path(coverage_path).write_text(json.dumps(coverage_data(cases), indent=1, sort_keys=True) + "\n")
        print(f"wrote the cases' fault coverage to {coverage_path}")
    uncovered = 0
    for rule, entry in rule_coverage(cases).items():
        if entry["level"] != "MUST" and rule not in FAULTS:
            continue
        fault = FAULTS[rule].description if rule in FAULTS else "no fault planted"
        if entry["caught_by"]:
            print(f"{rule:<10} caught by {len(entry['caught_by'])} of {len(entry['cited_by'])} case(s) when {fault}")
        else:
            uncovered += 1
            print(f"{rule:<10} NOT CAUGHT by its {len(entry['cited_by'])} case(s) when {fault}")
    missed = 0
    for fault in REALISTIC:
        caught = catching_cases(fault, cases)
        missed += not caught
        verdict = f"caught by {len(caught)} case(s)" if caught else "NOT CAUGHT"
        print(f"{fault.rule:<10} {verdict} when {fault.description} (realistic)")
    print(f"{uncovered} rule(s) whose violation no case catches, {missed} realistic fault(s) no case catches")
    return 1 if uncovered or missed or broken else 0


def versions(paths: Sequence[str], markdown_path: str | None) -> int:
    """The versions matrix of per-release reports; a report's fuzz run is read from REPORT.fuzz.xml beside it."""
    from gradspec.reports.versions import build, fuzz_counts, render_markdown, unexplained

    reports, fuzz = [], {}
    for path in paths:
        data = read_report(path)
        reports.append(data)
        junit = Path(path).with_suffix(".fuzz.xml")
        if junit.exists():
            for engine, info in data["engines"].items():
                fuzz[f"{engine} {info['version']}"] = fuzz_counts(junit)
    matrix = build(reports, fuzz)
    text = render_markdown(matrix)
    if markdown_path:
        Path(markdown_path).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    missing = unexplained(matrix)
    if missing:
        print(f"{len(missing)} difference(s) that spec/versions.yaml does not explain", file=sys.stderr)
    return 1 if missing else 0


class NotAReport(ValueError):
    """A file that is not a readable report matching spec/report.schema.json."""


def read_report(path: str) -> dict:
    import json

    import jsonschema
    from gradspec.paths import readable_file
    from gradspec.reports.report import report_problem

    try:
        data = json.loads(readable_file(path, "report").read_text(encoding="utf-8"))
        jsonschema.validate(data, contracts.report_schema())
    except (OSError, ValueError, RecursionError, jsonschema.ValidationError) as exc:  # BadPath is a ValueError
        lines = str(exc).splitlines() or [type(exc).__name__]
        raise NotAReport(f"{path}: not a gradspec report: {lines[0]}") from None
    problem = report_problem(data)  # what the schema cannot say: a graph's edges name its nodes
    if problem:
        raise NotAReport(f"{path}: not a gradspec report: {problem}")
    return data


def write_output(option: str, path: str, text: str, inputs: Sequence[str] = (), what: str = "the output") -> None:
    """Write a command's output file whole (paths.write_atomically), after checking the path as a run checks its
    reports (a folder, a device, a FIFO or an input of the command is refused): BadPath or OSError say why."""
    from gradspec import paths

    paths.writable_outputs({option: path}, inputs, what)
    try:
        paths.write_atomically(Path(path), text)
    except OSError as exc:
        raise paths.BadPath(f"{option} {path}: cannot write {what}: {exc.strerror or exc}") from None


def report(path: str, markdown_path: str | None, html_path: str | None) -> int:
    """Check a JSON report against spec/report.schema.json and render it as Markdown and/or HTML."""
    from gradspec import paths
    from gradspec.reports import html, markdown

    data = read_report(path)
    outputs = {"--html": html_path, "--markdown": markdown_path}
    paths.writable_outputs(outputs, [path], "the rendered report")  # both checked before either is written
    if html_path:
        write_output("--html", html_path, html.render(data), [path], "the rendered report")
    if markdown_path:
        write_output("--markdown", markdown_path, markdown.render(data), [path], "the rendered report")
    if not (html_path or markdown_path):
        sys.stdout.write(markdown.render(data))
    return 0


def diff(before: str, after: str) -> int:
    """Print what changed between two reports; exit 1 when something newly fails, is no longer judged, or is missing."""
    from gradspec.reports.report_diff import compare, failing, render

    groups = compare(read_report(before), read_report(after))
    sys.stdout.write(render(groups))
    return 1 if failing(groups) else 0


def export(path: str, device: str, dtype: str, output: str | None) -> int:
    """Write a case as a standalone torch script (for a bug report upstream)."""
    from gradspec.reports.export import to_torch_script

    try:
        script = to_torch_script(load_case(path), device=device, dtype=dtype)
    except CaseFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    if output:
        write_output("-o", output, script, [path], "the script")
    else:
        sys.stdout.write(script)
    return 0


def write_expectations(path: str, output: str | None) -> int:
    """The expectation file of a run's failures (running.expectations.from_report); unexpected passes are left out."""
    from gradspec.running.expectations import from_report

    text, dropped = from_report(read_report(path), source=Path(path).name)
    for note in dropped:
        print(f"gradspec: {note}", file=sys.stderr)
    if output:
        write_output("-o", output, text, [path], "the expectation file")
    else:
        sys.stdout.write(text)
    return 0


def ci_workflow(output: str | None) -> int:
    """The GitHub Actions workflow gradspec ships for an engine's repository (gradspec/ci/github-actions.yml)."""
    from gradspec.corpus import ci_workflow_file

    text = ci_workflow_file().read_text(encoding="utf-8")
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def ops(markdown: bool) -> int:
    """Each vocabulary op with its adapter signature and NumPy spelling; with `markdown`, docs/ops.md itself."""
    from gradspec import ops_guide

    sys.stdout.write(ops_guide.markdown() if markdown else ops_guide.text())
    return 0


def run(pytest_args: Sequence[str]) -> int:
    """pytest over the shipped corpus, with the given options."""
    import pytest
    from gradspec.corpus import cases_folder

    # gradspec is imported already (this command is part of it), so pytest cannot rewrite the plugin's asserts;
    # it has none to rewrite, and says so in a warning that would only confuse.
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    folder = cases_folder()
    args = [shipped_case(arg, folder) for arg in pytest_args]
    # a shipped case named (as reports' rerun commands name them) runs alone, not with the whole corpus
    corpus = [] if any(names_shipped_case(arg, folder) for arg in args) else [str(folder)]
    return int(pytest.main([*corpus, "-p", "no:cacheprovider", *quiet, *args]))


def names_shipped_case(arg: str, folder: Path) -> bool:
    """Whether a command-line argument is a case file of the shipped corpus, or a node id in one."""
    path = arg.partition("::")[0]
    if arg.startswith("-") or not path.endswith(".yaml") or not Path(path).is_file():
        return False
    return folder.resolve() in Path(path).resolve().parents


def shipped_case(arg: str, folder: Path) -> str:
    """`cases/x.yaml::run` (a report's case id) as the shipped case's node id, where no such file is here;
    any other argument as it is."""
    path, sep, run_name = arg.partition("::")
    if arg.startswith("-") or not path.endswith(".yaml") or Path(path).exists():
        return arg
    shipped = folder / path.removeprefix("cases/")
    return f"{shipped}{sep}{run_name}" if shipped.is_file() else arg


def build_parser() -> argparse.ArgumentParser:
    """The command line of every subcommand but `run`'s options, which are pytest's (tests check commands with it)."""
    parser = argparse.ArgumentParser(prog="gradspec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"gradspec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the shipped corpus through pytest; every option after `run` is pytest's "
                                    "(--engine, --device, --dtype, --expectations, --gradspec-report, -k, ...)")
    from gradspec.fuzz import campaign
    fuzz = commands.add_parser("fuzz", allow_abbrev=False, description=campaign.DESCRIPTION,
                               help="a fuzz campaign: the fuzz properties with pytest-xdist workers, for a number of "
                                    "draws or a time budget, sharing an example database (a folder or Redis); other "
                                    "options go to pytest")
    campaign.add_arguments(fuzz)
    for name, help_text in (("validate", "check case files; exit 1 if any is invalid"),
                            ("list", "list cases by area with their rules and capabilities"),
                            ("faults", "plant a violation of each MUST rule in the reference engine; exit 1 "
                                       "if no case catches one")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("paths", nargs="*", help="case files or folders (default: the shipped corpus)")
        if name == "faults":
            command.add_argument("--write-coverage", metavar="PATH",
                                 help="also write which rules' faults each case catches, as JSON (the shipped corpus's "
                                      "is spec/fault_coverage.json, which reports read)")
    listing = commands.add_parser("engines", help="registered engines: version, devices, dtypes, capabilities, "
                                                 "and why any cannot run here")
    listing.add_argument("names", nargs="*", help="engine names or package.module:Class (default: every registered one)")
    render = commands.add_parser("report", help="render a JSON report as Markdown or HTML")
    render.add_argument("report", help="a JSON report written by pytest --gradspec-report")
    render.add_argument("--markdown", metavar="PATH", help="write Markdown here (default: standard output)")
    render.add_argument("--html", metavar="PATH", help="write a self-contained HTML page here")
    compare = commands.add_parser("diff", help="compare two reports; exit 1 if anything newly fails")
    compare.add_argument("before", help="the earlier JSON report")
    compare.add_argument("after", help="the later JSON report")
    matrix = commands.add_parser("versions", help="the versions matrix of per-release reports; exit 1 on an "
                                                  "unexplained difference")
    matrix.add_argument("reports", nargs="+", help="one JSON report per engine release")
    matrix.add_argument("--markdown", metavar="PATH", help="write Markdown here (default: standard output)")
    script = commands.add_parser("export", help="write a case as a standalone torch script that raises on "
                                                "non-conformance")
    script.add_argument("case", help="a case file")
    script.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    script.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    script.add_argument("-o", "--output", metavar="PATH", help="write the script here (default: standard output)")
    known = commands.add_parser("expectations", help="write the expectation file of a run's failures, with a reason "
                                                    "placeholder per line that --strict-expectations refuses")
    known.add_argument("report", help="a JSON report written by --gradspec-report")
    known.add_argument("-o", "--output", metavar="PATH", help="write the file here (default: standard output)")
    guide = commands.add_parser("ops", help="the op vocabulary as adapters receive it, with each op's NumPy spelling")
    guide.add_argument("--markdown", action="store_true", help="the adapter guide docs/ops.md, in Markdown")
    workflow = commands.add_parser("ci-workflow", help="write a GitHub Actions workflow that runs gradspec on an "
                                                       "engine's repository")
    workflow.add_argument("-o", "--output", metavar="PATH",
                          help="write it here, e.g. .github/workflows/gradspec.yml (default: standard output)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:  # everything after `run` belongs to pytest, options included
        return run(argv[1:])
    if argv[:1] == ["fuzz"]:  # its own options, and pytest's (-k, --device, --junitxml, ...) passed on
        from gradspec.fuzz import campaign
        args, pytest_args = build_parser().parse_known_args(argv)
        return campaign.campaign(args, pytest_args)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "export":
            return export(args.case, args.device, args.dtype, args.output)
        if args.command == "report":
            return report(args.report, args.markdown, args.html)
        if args.command == "diff":
            return diff(args.before, args.after)
        if args.command == "engines":
            return engines(args.names)
        if args.command == "versions":
            return versions(args.reports, args.markdown)
        if args.command == "expectations":
            return write_expectations(args.report, args.output)
        if args.command == "ci-workflow":
            return ci_workflow(args.output)
        if args.command == "ops":
            return ops(args.markdown)
        from gradspec.corpus import cases_folder
        paths = args.paths or [str(cases_folder())]
        if args.command == "faults":
            return check_faults(paths, args.write_coverage)
        return {"validate": validate, "list": list_cases}[args.command](paths)
    except NotAReport as exc:
        print(f"gradspec: {exc}", file=sys.stderr)
        return 2
    except BadPath as exc:  # an output that is a folder, a device or an input; or that could not be written
        print(f"gradspec: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"gradspec: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
