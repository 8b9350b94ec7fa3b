"""Errors the `daemon-guard` command reports in one line: bad input exits 2, anything else is a bug (exit 1)."""

from __future__ import annotations


class InputError(Exception):
    """Input the command cannot use: `where` names the file (and the field), `problem` says what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem

    def line(self) -> str:
        """The message on one line, whatever the problem's text held."""
        return " ".join(str(self).split())
