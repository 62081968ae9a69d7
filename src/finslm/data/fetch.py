"""Download a hub dataset once into a local table, so the DVC pipeline can track it.

    finslm fetch --out data/raw/phrasebank_50agree.csv    # data.source from params.yaml

``dvc repro`` cannot use ``data.source: hub:<id>`` directly: ``prepare`` declares the source as a
file dependency, which DVC hashes, and a hub id is not a file. ``fetch`` reads the hub dataset
with the same reader ``prepare`` uses (``data.hub_config``, ``data.hub_split``) and writes its
rows, with the configured ``data.text_column`` / ``data.label_column`` names and the raw labels
(``data.label_map`` still applies), to ``--out``; point ``data.source`` at that file. Lines the
reader could not parse are counted and written beside it (``<out stem>.rejects.csv``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from finslm.config import DataConfig
from finslm.data.errors import DataError
from finslm.data.hub import TABLE_SUFFIXES, read_hub
from finslm.data.loaders import is_hub


@dataclasses.dataclass(frozen=True)
class Fetched:
    out: Path
    rows: int
    rejects: int
    rejects_path: Path | None


def fetch(cfg: DataConfig, out: Path) -> Fetched:
    """Read the hub dataset ``cfg.source`` and write it to ``out`` (.csv, .tsv or .parquet)."""
    if not is_hub(cfg):
        raise DataError(
            f"data.source {cfg.source!r} is not a hub dataset: fetch downloads hub:<dataset id> "
            "sources only (a local file needs no fetch)"
        )
    suffix = out.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{out}: write a {', '.join(TABLE_SUFFIXES)} file (got {suffix or 'none'})")
    loaded = read_hub(cfg)
    columns = ["text", "label"] + (["agreement"] if "agreement" in loaded.rows else [])
    table = loaded.rows[columns].rename(
        columns={"text": cfg.text_column, "label": cfg.label_column}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(table, out, suffix)
    rejects_path = None
    if len(loaded.rejects):
        rejects_path = out.with_name(f"{out.stem}.rejects.csv")
        loaded.rejects.to_csv(rejects_path, index=False)
    return Fetched(out, len(table), len(loaded.rejects), rejects_path)


def _write(table: pd.DataFrame, out: Path, suffix: str) -> None:
    if suffix == ".parquet":
        table.to_parquet(out, index=False)
    else:
        table.to_csv(out, index=False, sep="\t" if suffix == ".tsv" else ",")
