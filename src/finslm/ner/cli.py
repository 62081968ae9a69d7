"""``finslm ner``: token classification from the command line.

finslm ner predict "Acme Corp. hired Jane Doe in Boston."          # entity spans as JSON
finslm ner predict --model exports/ner-minilm --backend onnx-int8 "..."
finslm ner fetch --out data/raw/finer-train.parquet                 # hub:nlpaueb/finer-139
finslm ner soup models/ner-soup runs/s42 runs/s43 runs/s44          # weight-average, val decides
finslm ner export models/ner-soup                                   # -> exports/ner-soup, parity-gated
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from finslm.cli_options import (
    BatchSize,
    Decode,
    ExportOut,
    ParityMetrics,
    TextFile,
    Threads,
    typer_app,
)
from finslm.cli_options import fail as _fail

app = typer_app("Financial named-entity recognition (token classification).")


@app.command()
def predict(
    ctx: typer.Context,
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to tag; '-' reads one text per line from stdin."),
    ] = None,
    model: Annotated[Path, typer.Option("--model", "-m", help="models/<m> or exports/<m>.")] = Path(
        "models/ner-minilm"
    ),
    backend: Annotated[
        str,
        typer.Option("--backend", "-b", help="auto, torch-fp32, onnx-fp32, onnx-opt or onnx-int8."),
    ] = "auto",
    file: TextFile = None,
    threads: Threads = 0,
    batch_size: BatchSize = 32,
    decode: Decode = None,
) -> None:
    """Entity spans per text: type, character offsets (end exclusive), text and score.

    One JSON line per input line, as `finslm predict --task ner` (which also scores whole files
    with --input/--output)."""
    from finslm.cli import check_model_folder, print_entities, read_texts, wanted_lines
    from finslm.tasks import is_token_classifier

    lines = read_texts(texts, file, ctx)
    check_model_folder(model, "ner")
    if not is_token_classifier(model):
        raise _fail(
            f"--model {model}: a sentence classifier, not a token classifier; use `finslm "
            "predict` for it, or pass a token classifier (models/ner-minilm, exports/ner-minilm)"
        )
    wanted = wanted_lines(lines)
    print_entities(lines, wanted, model, backend, threads, "cpu", batch_size, decode)


FETCH_SUFFIXES = (".parquet", ".jsonl")


def check_fetch_out(out: Path) -> list[Path]:
    """Refuse an ``--out`` that ``ner fetch`` could not write, before anything is downloaded:
    a suffix other than .parquet / .jsonl, a folder, a parent that cannot be created or written.
    Creates the missing parent folders (returned, deepest last, so a failed download can remove
    them again)."""
    import tempfile

    suffix = out.suffix.lower()
    if suffix not in FETCH_SUFFIXES:
        raise _fail(
            f"--out {out}: write a {' or '.join(FETCH_SUFFIXES)} file (got {suffix or 'no suffix'})"
        )
    if out.is_dir():
        raise _fail(f"--out {out}: is a folder; pass a file path (e.g. {out / ('finer' + suffix)})")
    created = [p for p in [*reversed(out.parent.parents), out.parent] if not p.exists()]
    existing = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise _fail(f"--out {out}: {existing} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        remove_empty(created)
        where = f": {exc.filename}" if exc.filename else ""
        raise _fail(f"--out {out}: cannot write there ({exc.strerror or exc}{where})") from None
    return created


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest last) that are still empty: undo a mkdir."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


@app.command()
def fetch(
    out: Annotated[Path, typer.Option("--out", "-o", help="Table to write: .parquet or .jsonl.")],
    source: Annotated[str, typer.Option(help="hub:<dataset id>.")] = "hub:nlpaueb/finer-139",
    split: Annotated[str, typer.Option(help="Split to download.")] = "train",
    config: Annotated[str, typer.Option(help="Dataset config folder, if several.")] = "",
) -> None:
    """Download a hub token-classification dataset to a {tokens, tags} table for ner.source.

    Label names are read from the dataset's ClassLabel feature, not assumed."""
    import os

    import pandas as pd

    from finslm.data.errors import DataError
    from finslm.ner.data import read_hub

    created = check_fetch_out(out)  # before the download: a wrong --out costs nothing
    try:
        records = read_hub(source, split, config)
    except DataError as exc:
        remove_empty(created)
        raise _fail(str(exc)) from None
    frame = pd.DataFrame.from_records(records, columns=["tokens", "tags"])
    partial = out.with_name(f".{out.name}.partial")
    try:
        if out.suffix.lower() == ".jsonl":
            frame.to_json(partial, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_parquet(partial, index=False)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _fail(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    typer.echo(f"wrote {len(frame)} sentences from {source} ({split}) to {out}")


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="One text.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="models/<m> (PyTorch).")] = Path(
        "models/ner-minilm"
    ),
    entity: Annotated[int, typer.Option(min=0, help="Which predicted entity (0 = first).")] = 0,
    steps: Annotated[int, typer.Option(min=2, help="Integrated-gradients steps (>= 2).")] = 16,
) -> None:
    """Which words drove one predicted entity (integrated gradients), as JSON."""
    from finslm.cli import check_model_folder
    from finslm.models import ModelError, read_meta
    from finslm.ner.explain import explain_entity
    from finslm.ner.predict import ONNX_KIND, Tagger

    check_model_folder(model, "ner")
    try:
        meta = read_meta(model, ner=True)
        if meta.get("kind") == ONNX_KIND:  # no gradients in an ONNX graph
            source = meta.get("source") or f"models/{meta.get('name') or '<name>'}"
            raise ModelError(
                f"--model {model}: an ONNX export; ner explain needs the PyTorch folder it came "
                f"from: --model {source}"
            )
        if meta.get("kind") == "transformer":
            raise ModelError(
                f"--model {model}: a sentence classifier, not a token classifier; `finslm "
                "explain` explains it"
            )
        tagger = Tagger(model, "torch-fp32")
        result = explain_entity(tagger, text, entity, steps)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    if result.get("truncated"):
        typer.echo(
            f"note: the text is longer than the model reads in one pass ({tagger.max_length} "
            f"tokens): words after word {result['words_read']} cannot move the entity and get "
            "attribution 0",
            err=True,
        )
    typer.echo(json.dumps(result, ensure_ascii=False))


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="A trained token classifier (models/<m>).")],
    out: ExportOut = None,
    prepared: Annotated[Path, typer.Option(help="prepare_ner's folder (val.parquet).")] = Path(
        "data/prepared-ner"
    ),
    params: Annotated[
        Path,
        typer.Option(help="params.yaml whose export.* and ner.* gate apply (defaults if absent)."),
    ] = Path("params.yaml"),
    metrics: ParityMetrics = None,
) -> None:
    """Export any token classifier folder to ONNX (fp32, optimised, INT8), parity-gated.

    Like `dvc repro export_ner@<m>`, for folders ner.models does not list (a soup, a copy)."""
    from finslm.cli_options import params_in_use, run_export
    from finslm.config import ExportConfig, NerConfig, load_export_config, load_ner_config
    from finslm.ner.export import export_ner, exportable_ner_meta
    from finslm.ner.prepare import read_split

    out = out or Path("exports") / model.name

    def export() -> dict:
        exportable_ner_meta(model)  # first: a wrong folder says so before params or data
        if params_in_use(params):
            graph_cfg = load_export_config(params, check_models=False).for_model(model.name)
            cfg = load_ner_config(params)
        else:
            graph_cfg, cfg = ExportConfig(), NerConfig()
        return export_ner(model, out, read_split(prepared, "val"), graph_cfg, cfg, log=typer.echo)

    run_export(export, out, metrics)


@app.command()
def soup(
    out: Annotated[Path, typer.Argument(help="Model folder to write.")],
    ingredients: Annotated[
        list[Path], typer.Argument(help="Trained token classifiers (same checkpoint and labels).")
    ],
    method: Annotated[str, typer.Option(help="greedy (chosen on val) or uniform.")] = "greedy",
    prepared: Annotated[Path, typer.Option(help="prepare_ner's folder (val.parquet).")] = Path(
        "data/prepared-ner"
    ),
) -> None:
    """Average token classifiers' weights into one model (a model soup), chosen on validation.

    Ingredients are ranked and greedily kept by validation entity micro-F1; the result is an
    ordinary models/<m> folder."""
    import logging

    from finslm.data.errors import DataError
    from finslm.models import ModelError, read_meta
    from finslm.ner.evaluate_run import score
    from finslm.ner.predict import Tagger
    from finslm.ner.prepare import read_split
    from finslm.train.soup import make_soup

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        for folder in ingredients:  # a wrong folder is said before any data is read
            read_meta(folder, ner=True)
        val = read_split(prepared, "val")
        # Each ingredient is opened as a Tagger first: a folder that is not one says so.
        result = make_soup(
            ingredients,
            out,
            method=method,
            scorer=lambda p: score(Tagger(p, "torch-fp32"), val, []),
            keys=("entity_micro_f1", "entity_macro_f1"),
        )
    except (DataError, ModelError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"wrote {out}: {len(result['kept'])} of {len(ingredients)} ingredients, val entity "
        f"micro-F1 {result['val']['entity_micro_f1']:.4f}"
    )
