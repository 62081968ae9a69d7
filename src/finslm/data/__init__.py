"""The data layer: load any supported source, clean it with every drop counted, split it.

    >>> from finslm.data import prepare, read_split
    >>> prepare(cfg, Path("data/prepared"), Path("metrics/data.json"),
    ...         Path("data/prepared/rejects.csv"))
    >>> train = read_split(Path("data/prepared/train.parquet"))

Modules: ``encoding`` (bytes -> text, line ends), ``phrasebank`` (``sentence@label`` files and
folders), ``tables`` (CSV/TSV/Parquet), ``hub`` (Hugging Face hub), ``loaders`` (pick by
format), ``clean`` (normalise, reject, report), ``split`` (stratified train/val/test),
``prepare`` (the stage core). Errors about the input are ``DataError``.
"""

from finslm.data.clean import clean, dedup_key, normalise_label
from finslm.data.encoding import decode_bytes, split_lines
from finslm.data.errors import DataError
from finslm.data.hub import read_hub
from finslm.data.loaders import load, resolve_format
from finslm.data.phrasebank import parse_phrasebank, read_phrasebank, read_phrasebank_folder
from finslm.data.prepare import prepare, read_split
from finslm.data.schema import REASONS, Loaded
from finslm.data.split import SPLITS, check_disjoint, split
from finslm.data.tables import read_table
from finslm.textnorm import normalise_text, repair_mojibake

__all__ = [
    "REASONS",
    "SPLITS",
    "DataError",
    "Loaded",
    "check_disjoint",
    "clean",
    "decode_bytes",
    "dedup_key",
    "load",
    "normalise_label",
    "normalise_text",
    "parse_phrasebank",
    "prepare",
    "read_hub",
    "read_phrasebank",
    "read_phrasebank_folder",
    "read_split",
    "read_table",
    "repair_mojibake",
    "resolve_format",
    "split",
    "split_lines",
]
