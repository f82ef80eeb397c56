"""The starmesh exception hierarchy.

Every error that starmesh raises on purpose derives from :class:`StarmeshError`, so callers (and the
CLI) can catch one type. Where callers expect a built-in type, the class subclasses it too.
Messages say what is wrong, show the bad value and give the fix.
"""

from __future__ import annotations


class StarmeshError(Exception):
    """Base class of all starmesh errors."""


class ScenarioError(StarmeshError, ValueError):
    """A scenario is invalid: unknown key, out-of-range value, unknown preset or name.

    Parameters
    ----------
    field : str
        Dotted path of the offending field, e.g. ``"constellation.preset"``.
    message : str
        What is wrong and how to fix it.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Errors cross process boundaries (worker processes, Dask): rebuild from the arguments.
        return (type(self), (self.field, self.message))


class TLEFormatError(StarmeshError, ValueError):
    """A TLE/3LE or OMM file holds a malformed record.

    Parameters
    ----------
    path : str
        The file (or ``"<string>"``).
    line : int
        1-based line number of the offending line (OMM: record number).
    reason : str
        What is wrong with it.
    """

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return (type(self), (self.path, self.line, self.reason))


class UnknownSiteError(ScenarioError):
    """A city or site name that no data set knows."""


class NoRouteError(StarmeshError):
    """No route exists between two endpoints at one time (scalar APIs only)."""


class RunFolderError(StarmeshError):
    """The output folder cannot be used (exists and is not empty, not writable, locked)."""


class RunLockedError(RunFolderError):
    """Another process is writing the run folder."""


class BudgetError(StarmeshError):
    """A run would need more steps, memory or disk than this machine has (or than allowed)."""
