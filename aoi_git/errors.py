"""One user-facing error type; the CLI edge turns it into one line and exit status 1."""

from __future__ import annotations


class AoiError(Exception):
    """A problem the user can fix: the message says what is wrong and how to fix it."""

    exit_code = 1


class ValidationFailed(AoiError):
    """One or more org files are invalid; `problems` holds `path:line: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class IllegalTransition(AoiError):
    pass


class ConcurrentUpdate(AoiError):
    """The branch moved while we committed and the rebuilt change no longer applies."""
