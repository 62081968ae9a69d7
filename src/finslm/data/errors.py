"""The one exception the data layer raises for bad input.

A ``DataError`` message is meant to be read by the person who ran ``dvc repro``: it names the
file, the line where there is one, what is wrong, and what to do about it. Stage entry points
print it without a traceback.
"""

from __future__ import annotations

from finslm.errors import FinslmError


class DataError(FinslmError, ValueError):
    """A data source cannot be read or used; the message names the file, line, problem and fix."""
