"""Load ``data.source`` in whatever format it is, as rows plus load-time rejects.

    >>> from finslm.config import DataConfig
    >>> loaded = load(DataConfig(source="data/sample/sentences.csv"))
    >>> loaded.rows.head()       # text, label, line, source [, agreement]
    >>> loaded.rejects           # malformed lines, with line numbers

``data.format: auto`` decides: ``hub:`` prefix -> hub; a folder -> PhraseBank folder (with an
``agreement`` column); ``.txt`` -> PhraseBank ``sentence@label``; ``.csv``, ``.tsv``,
``.parquet`` -> table with ``data.text_column`` / ``data.label_column``; ``.jsonl`` -> one JSON
object a line, with those keys.
"""

from __future__ import annotations

from pathlib import Path

from finslm.config import DataConfig
from finslm.data.errors import DataError
from finslm.data.hub import HUB_PREFIX, read_hub
from finslm.data.phrasebank import read_phrasebank, read_phrasebank_folder
from finslm.data.schema import Loaded
from finslm.data.tables import read_table

SUFFIX_FORMATS: dict[str, str] = {
    ".txt": "phrasebank",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
}
SUPPORTED = (
    "a PhraseBank .txt (sentence@label), a PhraseBank folder, .csv, .tsv, .parquet, .jsonl, "
    "or hub:<dataset id>"
)
REAL_PHRASEBANK = "../shared/data/FinancialPhraseBank-v1.0/Sentences_50Agree.txt"


def resolve_format(source: str, fmt: str, path: Path | None) -> str:
    """The format to read: ``hub``, ``folder``, ``phrasebank``, ``csv``, ``tsv``, ``parquet`` or
    ``jsonl``."""
    if fmt == "hub" or (fmt == "auto" and source.startswith(HUB_PREFIX)) or path is None:
        return "hub"
    if path.is_dir():
        if fmt not in ("auto", "phrasebank"):
            raise DataError(
                f"{path}: is a folder, but data.format is {fmt!r}. Fix: point data.source at a "
                f"file, or use data.format=auto for a PhraseBank folder."
            )
        return "folder"
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(no suffix)'!r}. Supported: {SUPPORTED}. "
            f"Fix: convert the file, or set data.format (phrasebank, csv, tsv, parquet, jsonl, hub)."
        )
    return SUFFIX_FORMATS[suffix]


def is_hub(cfg: DataConfig) -> bool:
    """Whether ``cfg`` names a hub dataset rather than a local path."""
    return cfg.format == "hub" or (cfg.format == "auto" and cfg.source.startswith(HUB_PREFIX))


def source_path(cfg: DataConfig, root: Path = Path(".")) -> Path | None:
    """``data.source`` as a path under ``root`` (``None`` for hub sources)."""
    if is_hub(cfg):
        return None
    path = Path(cfg.source).expanduser()
    return path if path.is_absolute() else root / path


def load(cfg: DataConfig, root: Path = Path(".")) -> Loaded:
    """Read ``cfg.source`` (relative paths are under ``root``) into rows and rejects."""
    path = source_path(cfg, root)
    if path is None:
        return read_hub(cfg)
    if not path.exists():
        raise DataError(
            f"data.source={cfg.source!r}: file not found ({path}). Fix: point it at your data, "
            f"e.g. the Financial PhraseBank: -S data.source={REAL_PHRASEBANK}"
        )
    fmt = resolve_format(cfg.source, cfg.format, path)
    if fmt == "folder":
        return read_phrasebank_folder(path)
    if fmt == "phrasebank":
        return read_phrasebank(path)
    return read_table(path, fmt, cfg.text_column, cfg.label_column)
