"""Errors about case files, always naming the file, line and column, and what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CaseFileError(Exception):
    """A case file is not valid. str() gives `path:line:col: message`."""

    def __init__(self, path: str, line: int | None, column: int | None, message: str):
        self.path, self.line, self.column, self.message = path, line, column, message
        super().__init__(self.format())

    def format(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class CaseFileErrors(CaseFileError):
    """Every problem found in one case file; str() gives a `path:line:col: message` line for each."""

    def __init__(self, problems: list[CaseFileError]):
        self.problems = problems
        first = problems[0]
        super().__init__(first.path, first.line, first.column, first.message)

    def format(self) -> str:
        for problem in self.problems:
            problem.path = self.path  # which a caller may have made relative
        return "\n".join(problem.format() for problem in self.problems)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the nearest valid word, or '' when nothing is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
