"""HTML building blocks shared by the two report pages (``reports/index.html`` from
:mod:`finslm.report` and ``reports/explain/`` from :mod:`finslm.explain.page`): escaping,
number formatting and image data URIs. Both pages are self-contained files (inline CSS, images as
data URIs, no JavaScript), so nothing here fetches anything."""

from __future__ import annotations

import base64
import html
import math
from typing import Any


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML elements and attribute values."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals ("–" for missing/NaN, no "-0.000"); other values escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        text = f"{value:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    return esc(value)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
