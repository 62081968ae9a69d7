"""The one base class of the errors a user can fix.

A wrong params value (:class:`finslm.config.ConfigError`), an unreadable data file
(:class:`finslm.data.DataError`), a missing or damaged model folder
(:class:`finslm.models.ModelError`), an export that breaks its parity gate
(:class:`finslm.export.ParityError`): each message names the file, key or line, what is wrong and
the fix. Stage scripts and the CLI print such an error as one line and exit non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FinslmError(Exception):
    """A problem with the user's input or setup; the message says what and how to fix it."""
