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


# A model entry's params key, in a message raised below the code that knows the entry's name:
# the checks that need the checkpoint itself (its architecture, its layers) run there. The
# caller that knows the entry (``models.minilm``, ``ner.models.minilm``) puts it in its place
# (:func:`finslm.config.naming_entry`), with the file and line where it can.
ENTRY = "models.<name>"
