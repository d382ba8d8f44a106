"""One exception type for bad input, so the workflow can print one clear line and stop."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: names the file (or config key) and the problem. A ValueError, so code
    that validates values keeps catching it."""

    def __init__(self, where: str | Path, problem: str, key: str | None = None) -> None:
        self.where = str(where)
        self.key = key
        self.problem = problem
        location = f"{self.where} [{key}]" if key else self.where
        super().__init__(f"{location}: {problem}")
