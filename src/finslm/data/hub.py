"""Read a dataset from the Hugging Face hub (``data.source: hub:<dataset id>``); needs a network.

    python stages/prepare.py   # with params data.source=hub:takala/financial_phrasebank

Two cases, neither needs the ``datasets`` package:

* ``hub:takala/financial_phrasebank`` downloads the original zip
  (``data/FinancialPhraseBank-v1.0.zip``) with ``hf_hub_download`` and reads the file that
  ``data.hub_config`` names (``sentences_50agree`` -> ``Sentences_50Agree.txt``, …) from inside
  it with the PhraseBank reader. ``source`` is ``<zip name>/<file name>``.
* Any other id is fetched with ``snapshot_download`` (only its .parquet/.csv/.tsv files) and the
  files for ``data.hub_split`` are read with the table reader, in sorted path order. A file
  belongs to split S when its name is ``S.<ext>`` or starts with ``S-``/``S_``/``S.``, or when a
  folder on its path is named ``S`` — the layouts the hub uses (``data/train-00000-of-00001.parquet``,
  ``train.csv``, ``<config>/train/0000.parquet``). When the matches sit in several folders, the
  one with ``data.hub_config`` on its path wins. ``source`` is the path inside the dataset repo.

Downloads go to the usual hub cache (``HF_HOME``); set ``HF_HUB_OFFLINE=1`` to use only the cache.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd

from finslm.config import ConfigError, DataConfig
from finslm.data.errors import DataError
from finslm.data.phrasebank import read_phrasebank_bytes
from finslm.data.schema import Loaded
from finslm.data.tables import read_table

HUB_PREFIX = "hub:"
PHRASEBANK_ID = "takala/financial_phrasebank"
PHRASEBANK_ZIP = "data/FinancialPhraseBank-v1.0.zip"
PHRASEBANK_CONFIGS: dict[str, str] = {
    "sentences_50agree": "Sentences_50Agree.txt",
    "sentences_66agree": "Sentences_66Agree.txt",
    "sentences_75agree": "Sentences_75Agree.txt",
    "sentences_allagree": "Sentences_AllAgree.txt",
}
TABLE_SUFFIXES: dict[str, str] = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv"}


def dataset_id(source: str) -> str:
    """``hub:owner/name`` -> ``owner/name`` (a bare id is accepted with ``data.format: hub``)."""
    return source.removeprefix(HUB_PREFIX).strip()


def read_hub(cfg: DataConfig) -> Loaded:
    """Download and read ``cfg.source`` from the hub (see the module docstring)."""
    repo_id = dataset_id(cfg.source)
    if repo_id.lower() == PHRASEBANK_ID:
        return read_hub_phrasebank(cfg.hub_config)
    return read_hub_tables(repo_id, cfg)


def read_hub_phrasebank(hub_config: str) -> Loaded:
    """The PhraseBank zip from ``takala/financial_phrasebank``, file chosen by ``hub_config``."""
    if hub_config not in PHRASEBANK_CONFIGS:
        raise ConfigError(
            f"data.hub_config: got {hub_config!r}; allowed values for {PHRASEBANK_ID}: "
            f"{', '.join(PHRASEBANK_CONFIGS)}"
        )
    import huggingface_hub  # lazy: only hub sources pay for the import

    try:
        zip_path = huggingface_hub.hf_hub_download(
            PHRASEBANK_ID, PHRASEBANK_ZIP, repo_type="dataset"
        )
    except Exception as exc:  # network, auth, missing file: all end the same way for the user
        raise _download_error(PHRASEBANK_ID, exc) from exc
    return read_zip_member(Path(zip_path), PHRASEBANK_CONFIGS[hub_config])


def read_zip_member(zip_path: Path, wanted: str) -> Loaded:
    """Read the PhraseBank file named ``wanted`` from anywhere inside the zip."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [
                name
                for name in archive.namelist()
                if PurePosixPath(name).name == wanted and not name.startswith("__MACOSX/")
            ]
            if not members:
                raise DataError(
                    f"{zip_path}: no {wanted} inside the zip (it has: "
                    f"{', '.join(archive.namelist()) or 'nothing'}). Fix: choose another "
                    f"data.hub_config ({', '.join(PHRASEBANK_CONFIGS)})."
                )
            raw = archive.read(members[0])
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{zip_path}: not a valid zip ({exc}). Fix: delete it from the hub cache and retry."
        ) from None
    return read_phrasebank_bytes(raw, f"{zip_path.name}/{wanted}")


def read_hub_tables(repo_id: str, cfg: DataConfig) -> Loaded:
    """A hub dataset's parquet/csv/tsv files for ``cfg.hub_split``, concatenated."""
    import huggingface_hub

    patterns = [f"*{suffix}" for suffix in TABLE_SUFFIXES]  # skip scripts, images, README
    try:
        root = Path(
            huggingface_hub.snapshot_download(repo_id, repo_type="dataset", allow_patterns=patterns)
        )
    except Exception as exc:
        raise _download_error(repo_id, exc) from exc
    files = split_files(root, cfg.hub_split, cfg.hub_config, repo_id)
    parts = [_read_hub_file(root, path, cfg) for path in files]
    return Loaded(
        pd.concat([part.rows for part in parts], ignore_index=True),
        pd.concat([part.rejects for part in parts], ignore_index=True),
    )


def split_files(root: Path, split: str, config: str, repo_id: str) -> list[Path]:
    """The data files under ``root`` that belong to ``split`` (rules in the module docstring)."""
    tables = sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() in TABLE_SUFFIXES
        and ".cache" not in path.relative_to(root).parts
    )
    if not tables:
        raise DataError(
            f"hub:{repo_id}: the dataset has no .parquet/.csv/.tsv files. Fix: download it "
            "yourself and point data.source at a local file."
        )
    matches = [path for path in tables if _in_split(path.relative_to(root), split)]
    if not matches:
        listed = ", ".join(str(path.relative_to(root)) for path in tables[:20])
        raise DataError(
            f"hub:{repo_id}: no file for split {split!r} (data.hub_split); files: {listed}. "
            "Fix: -S data.hub_split=<split>, e.g. the start of one of those file names."
        )
    folders = {path.parent for path in matches}
    if len(folders) > 1:
        chosen = [path for path in matches if config in path.relative_to(root).parts]
        if not chosen:
            names = ", ".join(sorted(str(folder.relative_to(root)) for folder in folders))
            raise DataError(
                f"hub:{repo_id}: split {split!r} has files in several folders ({names}). "
                "Fix: -S data.hub_config=<folder name> to pick one."
            )
        matches = chosen
    return matches


def _in_split(relative: Path, split: str) -> bool:
    return (
        relative.stem == split
        or relative.stem.startswith((f"{split}-", f"{split}_", f"{split}."))
        or split in relative.parts[:-1]
    )


def _read_hub_file(root: Path, path: Path, cfg: DataConfig) -> Loaded:
    """Read one table and name it by its path inside the dataset repo, not the cache path."""
    fmt = TABLE_SUFFIXES[path.suffix.lower()]
    loaded = read_table(path, fmt, cfg.text_column, cfg.label_column)
    name = str(PurePosixPath(*path.relative_to(root).parts))
    return Loaded(loaded.rows.assign(source=name), loaded.rejects.assign(source=name))


# The params key a hub source is set in, and a local file it can point at instead.
SOURCE_EXAMPLES = {
    "data.source": "../shared/data/FinancialPhraseBank-v1.0/Sentences_50Agree.txt",
    "ner.source": "../shared/data/SEC-filings-NER/train/FIN5.txt",
}


def _download_error(repo_id: str, exc: Exception, key: str = "data.source") -> DataError:
    """A failed hub download, explained with what to do offline: point ``key`` (the params
    key that names the source: ``data.source``, or ``ner.source`` for token classification)
    at a local file."""
    example = SOURCE_EXAMPLES.get(key)
    hint = f" (e.g. -S {key}={example})" if example else ""
    reason = " ".join(str(exc).split())  # one line: the hub's messages run over several
    return DataError(
        f"hub:{repo_id}: download from the Hugging Face hub failed: {type(exc).__name__}: "
        f"{reason.rstrip('.')}. Fix: check the network and the dataset id, or download the "
        f"data and point {key} at the local file{hint}."
    )
