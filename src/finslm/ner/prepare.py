"""``prepare_ner``: read, clean, split and window the NER sources into Parquet splits.

Order matters: cleaning and deduplication first, then the splits (whole sentences, so the
no-overlap check means something), then windows of over-long sentences (a sentence's windows
always share its split). ``train + val + test + rejects == sentences read`` is reported.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from finslm.config import NerConfig
from finslm.data.errors import DataError
from finslm.ner.data import (
    Cleaned,
    assert_no_overlap,
    clean,
    document_split,
    drop_overlap,
    has_entity,
    read_sentences,
    stratified_split,
    windows,
)
from finslm.ner.tags import split_tag

SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


def _clean(cfg: NerConfig, source: str, split: str, types: list[str]) -> tuple[Cleaned, int]:
    """(cleaned, sentences read) of one source; a DataError naming it when nothing is usable."""
    sentences = read_sentences(source, cfg.format, split, cfg.hub_config)
    cleaned = clean(
        sentences,
        scheme=cfg.scheme,
        orphan_i=cfg.orphan_i,
        entity_types=types,
        label_map=cfg.label_map,
    )
    if cleaned.rows.empty:
        name = f"{source} ({split} split)" if source.startswith("hub:") else source
        if not sentences:
            raise DataError(
                f"{name}: no sentence in the file (empty, or only blank lines). Fix: point it "
                "at a CoNLL file (token first, tag last, a blank line between sentences), "
                "JSONL or Parquet (docs/ner.md, Data formats)."
            )
        first = "; ".join(
            f"line {r.line}: {r.reason} ({r.detail})" for r in cleaned.rejects.head(3).itertuples()
        )
        raise DataError(
            f"{name}: no usable sentence ({len(sentences)} read, rejects: {cleaned.counts}); "
            f"the first: {first}. Fix the file, or ner.format / ner.scheme (docs/ner.md, "
            "Data formats)."
        )
    return cleaned, len(sentences)


def _check_types(cfg: NerConfig, cleaned: Cleaned) -> None:
    """Every chosen entity type occurs in ``ner.source``: a misspelled one would turn the real
    type's tags into O and train a head for a type that has no example."""
    found = cleaned.types_found
    for kind in cfg.entity_types:
        if kind not in found:
            import difflib

            close = difflib.get_close_matches(kind, found, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DataError(
                f"ner.entity_types: {kind!r} has no entity in ner.source ({cfg.source}); "
                f"{hint}types found there (after ner.label_map): {', '.join(found) or 'none'}. "
                "Fix the spelling, or leave the type out of ner.entity_types."
            )


def prepare(cfg: NerConfig) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, Any]]:
    """(splits, rejects, report) for ``cfg``; raises DataError naming the file when unusable."""
    types = list(cfg.entity_types)
    main, n_main = _clean(cfg, cfg.source, cfg.hub_split, types)
    _check_types(cfg, main)
    if not types:  # every type found in the training data, in order of appearance
        types = list(dict.fromkeys(split_tag(t)[1] for s in main.rows.tags for t in s if t != "O"))
        if not types:
            raise DataError(
                f"ner.source ({cfg.source}): no entity in any usable sentence, so there is no "
                f"entity type to learn (rejects: {main.counts}). Fix: check the tag column "
                "(the last one) and the rejects file; tags are O, B-T / I-T (IOB), or S-/E-/U-/L- "
                "(BIOES / BILOU)."
            )
    elif dropped := [t for t in main.types_found if t not in types]:
        log.warning(
            "ner.source has entity types not in ner.entity_types: %s; their %d tokens are "
            "read as O. To keep them, list them in ner.entity_types, or set it to [] (every "
            "type found)",
            ", ".join(dropped),
            main.counts.get("retyped_tokens", 0),
        )
    rejects = [main.rejects.assign(file="source")]
    counts = {"source": {"read": n_main, "scheme": main.scheme, **main.counts}}
    test_source = cfg.test_source or (cfg.source if cfg.source.startswith("hub:") else "")
    if test_source == cfg.source and not test_source.startswith("hub:"):
        test_source = ""  # the same file: hold out a share of it (DVC refuses an empty path)
    if test_source:
        test_split = cfg.hub_test_split if test_source.startswith("hub:") else "test"
        test, n_test = _clean(cfg, test_source, test_split, types)
        counts["test_source"] = {"read": n_test, "scheme": test.scheme, **test.counts}
        rejects.append(test.rejects.assign(file="test_source"))
        rest, dropped = drop_overlap(main.rows, test.rows)
        if rest.empty:
            raise DataError(
                f"ner.source ({cfg.source}): all {len(dropped)} usable sentences also occur in "
                f"ner.test_source ({test_source}). Fix: point ner.test_source at a separate "
                "file, or at ner.source itself to hold out ner.test_size of it."
            )
        counts["source"]["overlap_with_test"] = len(dropped)
        rejects.append(dropped.assign(file="source"))
        test_rows = test.rows
    else:
        rest, test_rows = stratified_split(main.rows, cfg.test_size, cfg.seed, "ner.test_size")
    if cfg.val_by == "document":
        train, val = document_split(rest, cfg.val_size, cfg.seed)
    else:
        train, val = stratified_split(rest, cfg.val_size, cfg.seed, "ner.val_size")
    splits = {"train": train, "val": val, "test": test_rows}
    assert_no_overlap(splits)
    report: dict[str, Any] = {"entity_types": types, "sources": counts, "splits": {}}
    for name in SPLITS:
        whole = splits[name]
        cut, n_cut = windows(whole, cfg.max_words)
        splits[name] = cut
        report["splits"][name] = {
            "sentences": len(whole),
            "with_entity": int(has_entity(whole).sum()) if len(whole) else 0,
            "windowed_sentences": n_cut,
            "windows": len(cut),
            "documents": len(set(zip(whole["source"], whole["document"], strict=True))),
            "tokens": int(sum(len(t) for t in cut.tokens)),
            "entities": {
                t: int(sum(tag == f"B-{t}" for tags in cut.tags for tag in tags)) for t in types
            },
        }
    all_rejects = pd.concat(rejects, ignore_index=True)
    report["rejects"] = {
        str(k): int(v) for k, v in all_rejects["reason"].value_counts().sort_index().items()
    }
    kept = sum(report["splits"][s]["sentences"] for s in SPLITS)
    report["accounting"] = {
        "read": n_main + counts.get("test_source", {}).get("read", 0),
        "kept": kept,
        "rejected": len(all_rejects),
    }
    return splits, all_rejects, report


def write_splits(splits: dict[str, pd.DataFrame], rejects: pd.DataFrame, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    rejects.to_parquet(out / "rejects.parquet", index=False)


def write_labels(report: dict, out: Path) -> None:
    """``labels.json``: the entity types (label order) the training stage builds its head from."""
    import json

    (out / "labels.json").write_text(
        json.dumps({"entity_types": report["entity_types"]}, indent=2) + "\n", encoding="utf-8"
    )


def read_split(folder: Path, name: str) -> pd.DataFrame:
    path = Path(folder) / f"{name}.parquet"
    if not path.is_file():
        raise DataError(f"{path}: missing; run `dvc repro prepare_ner` first")
    frame = pd.read_parquet(path)
    frame["tokens"] = frame["tokens"].map(list)
    frame["tags"] = frame["tags"].map(list)
    return frame
