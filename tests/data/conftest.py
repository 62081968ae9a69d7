"""Fixtures for the data-layer tests: invented sentences and small files built in tmp_path.

Every sentence here is invented (fictional companies, years after 2100); never copy text from
the Financial PhraseBank into tests.
"""

from __future__ import annotations

import pandas as pd
import pytest

from finslm.config import DataConfig

_COMPANIES = ("Quillmoor", "Brindlecorp", "Zentavia", "Oskarine Mills", "Vardenholt")
_PHRASES = {
    "negative": "cut its imaginary widget forecast",
    "neutral": "moved its pretend head office",
    "positive": "doubled its fictional gizmo orders",
}


def invented(i: int, label: str = "neutral") -> str:
    """A unique invented sentence for row ``i`` (tokenised like PhraseBank: space before '.')."""
    return f"{_COMPANIES[i % len(_COMPANIES)]} {_PHRASES[label]} for year {2100 + i} ."


def rows_with(counts: dict[str, int]) -> pd.DataFrame:
    """A clean-looking rows frame with ``counts[label]`` unique invented rows per label."""
    records, i = [], 0
    for label, n in counts.items():
        for _ in range(n):
            i += 1
            records.append({"text": invented(i, label), "label": label, "line": i, "source": "t"})
    return pd.DataFrame(records)


def phrasebank_bytes(
    pairs: list[tuple[str, str]], eol: str = "\r\n", enc: str = "latin-1"
) -> bytes:
    """``sentence@label`` lines joined by ``eol`` (with a final line end), encoded."""
    return "".join(f"{text}@{label}{eol}" for text, label in pairs).encode(enc)


@pytest.fixture
def cfg():
    """DataConfig factory with the defaults overridden by keyword."""
    return lambda **kw: DataConfig(**kw)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any real hub call in a test fails loudly; hub tests patch in local fakes."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
