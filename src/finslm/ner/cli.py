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

    lines = read_texts(texts, file)
    check_model_folder(model, "ner")
    if not is_token_classifier(model):
        raise _fail(
            f"--model {model}: a sentence classifier, not a token classifier; use `finslm "
            "predict` for it, or pass a token classifier (models/ner-minilm, exports/ner-minilm)"
        )
    wanted = wanted_lines(lines)
    print_entities(lines, wanted, model, backend, threads, "cpu", batch_size, decode)


@app.command()
def fetch(
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet or JSONL table to write.")],
    source: Annotated[str, typer.Option(help="hub:<dataset id>.")] = "hub:nlpaueb/finer-139",
    split: Annotated[str, typer.Option(help="Split to download.")] = "train",
    config: Annotated[str, typer.Option(help="Dataset config folder, if several.")] = "",
) -> None:
    """Download a hub token-classification dataset to a {tokens, tags} table for ner.source.

    Label names are read from the dataset's ClassLabel feature, not assumed."""
    import pandas as pd

    from finslm.data.errors import DataError
    from finslm.ner.data import read_hub

    try:
        records = read_hub(source, split, config)
    except DataError as exc:
        raise _fail(str(exc)) from None
    frame = pd.DataFrame.from_records(records, columns=["tokens", "tags"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".jsonl":
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(out, index=False)
    typer.echo(f"wrote {len(frame)} sentences from {source} ({split}) to {out}")


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="One text.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="models/<m> (PyTorch).")] = Path(
        "models/ner-minilm"
    ),
    entity: Annotated[int, typer.Option(min=0, help="Which predicted entity (0 = first).")] = 0,
    steps: Annotated[int, typer.Option(help="Integrated-gradients steps.")] = 16,
) -> None:
    """Which words drove one predicted entity (integrated gradients), as JSON."""
    from finslm.models import ModelError
    from finslm.ner.explain import explain_entity
    from finslm.ner.predict import Tagger

    try:
        result = explain_entity(Tagger(model, "torch-fp32"), text, entity, steps)
    except ModelError as exc:
        raise _fail(str(exc)) from None
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
    from finslm.ner.export import export_ner
    from finslm.ner.prepare import read_split

    out = out or Path("exports") / model.name

    def export() -> dict:
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
            read_meta(folder)
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
