"""The ``finslm`` command line.

    finslm predict "Operating profit rose to EUR 13.1 mn."
    finslm predict "Sales fell." --model exports/minilm            # ONNX INT8 (the export default)
    finslm predict "Sales fell." --model models/minilm --backend torch-fp32
    cat headlines.txt | finslm predict -                            # one text per line
    finslm predict --file headlines.txt --json                      # JSON lines, for scripts
    finslm diff-report main HEAD        # params/metrics/plots diff -> reports/diff.md
    finslm fetch --out data/raw/phrasebank.csv   # hub:<id> data.source -> a local table
    finslm ablate rdrop --set rdrop_alpha=1.0 --baseline mean   # a recipe lever over 3 seeds
    finslm soup models/minilm-soup models/a models/b models/c   # weight-average fine-tuned models

Prints each text's label and class probabilities as a table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Small, fast financial-sentiment models: predict with a trained finslm model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    """finslm: financial sentiment (negative / neutral / positive)."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _read_texts(texts: list[str] | None, file: Path | None) -> list[str]:
    lines: list[str] = []
    for text in texts or []:
        if text == "-":
            lines += sys.stdin.read().splitlines()
        else:
            lines.append(text)
    if file is not None:
        try:
            lines += file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise _fail(f"--file {file}: cannot read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise _fail(
                f"--file {file}: not UTF-8 text; convert it (e.g. iconv -f latin1)"
            ) from None
    return [line.strip() for line in lines if line.strip()]


@app.command()
def predict(
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to classify; '-' reads one text per line from stdin."),
    ] = None,
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="A finslm model folder: models/<name> (PyTorch, TF-IDF; an ONNX backend looks in "
            "exports/<name>) or exports/<name> (ONNX).",
        ),
    ] = Path("models/minilm"),
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            "-b",
            help="auto (the folder's default), torch-fp32, onnx-fp32, onnx-opt, onnx-int8, sklearn.",
        ),
    ] = "auto",
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read one text per line from this file.")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads (0: the library default).")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, or auto (CUDA when present).")] = "cpu",
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 32,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
) -> None:
    """Classify texts and print each one's label and probabilities."""
    from finslm.models import META_FILE, ModelError
    from finslm.predict import BACKENDS, load_predictor

    lines = _read_texts(texts, file)
    if not lines:
        raise _fail('no text given; pass "some text", - (stdin, one per line) or --file PATH')
    if backend != "auto" and backend not in BACKENDS:
        raise _fail(f"--backend {backend!r}: unknown; choose auto, {', '.join(BACKENDS)}")
    if not model.is_dir():
        raise _fail(
            f"--model {model}: no such folder. Train one (`dvc repro train@minilm`), export it "
            "(`dvc repro export@minilm` -> exports/minilm), or point --model at a model folder"
        )
    if not (model / META_FILE).is_file():
        raise _fail(
            f"--model {model}: not a finslm model folder (no {META_FILE}); pass a folder written "
            "by `dvc repro train@<name>` (models/<name>) or export@<name> (exports/<name>)"
        )
    try:
        predictor = load_predictor(model, backend, threads=threads, device=device)
        proba = predictor.predict_proba(lines, batch_size=batch_size)
    except ModelError as exc:
        raise _fail(str(exc)) from None

    labels = predictor.labels
    if as_json:
        for text, row in zip(lines, proba, strict=True):
            record = {
                "text": text,
                "label": labels[int(row.argmax())],
                "probabilities": {
                    label: round(float(p), 6) for label, p in zip(labels, row, strict=True)
                },
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{predictor.name}  ({model})", title_justify="left")
    table.add_column("text", overflow="fold", ratio=1)
    table.add_column("label", style="bold")
    for label in labels:
        table.add_column(f"p({label})", justify="right")
    style = {"negative": "red", "neutral": "yellow", "positive": "green"}
    for text, row in zip(lines, proba, strict=True):
        label = labels[int(row.argmax())]
        table.add_row(
            text,
            f"[{style.get(label, 'bold')}]{label}[/]",
            *(f"{p:.3f}" for p in row),
        )
    Console().print(table)


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="The sentence to explain.")],
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            "-M",
            help="shap, lime, ig or attention; repeat for several (default: all four).",
        ),
    ] = None,
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="A trained transformer folder (models/<name>)."),
    ] = Path("models/minilm"),
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            "-b",
            help="Predictor for SHAP/LIME: auto (ONNX INT8 if exported, else PyTorch), "
            "onnx-int8, onnx-opt, onnx-fp32, torch-fp32. IG and attention always use PyTorch.",
        ),
    ] = "auto",
    export: Annotated[
        Path | None,
        typer.Option(help="Folder with the ONNX graphs (default: exports/<model folder name>)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="Class to explain (default: the predicted one)."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the explanation as an HTML page.")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads (0: the library default).")] = 0,
) -> None:
    """Show which words drive the model's decision, coloured per method."""
    from finslm.config import EXPLAIN_METHODS, ExplainConfig
    from finslm.explain.attributions import MethodSettings
    from finslm.explain.console import explain_text, print_explanation
    from finslm.labels import LABELS
    from finslm.models import META_FILE, ModelError

    methods = list(dict.fromkeys(method or EXPLAIN_METHODS))
    bad = [m for m in methods if m not in EXPLAIN_METHODS]
    if bad:
        raise _fail(f"--method {bad[0]!r}: unknown; choose {', '.join(EXPLAIN_METHODS)}")
    backends = ("auto", "onnx-int8", "onnx-opt", "onnx-fp32", "torch-fp32")
    if backend not in backends:
        raise _fail(f"--backend {backend!r}: unknown; choose {', '.join(backends)}")
    if target is not None and target not in LABELS:
        raise _fail(f"--target {target!r}: unknown; choose {', '.join(LABELS)}")
    if not text.strip():
        raise _fail("nothing to explain: the text is empty")
    if not (model / META_FILE).is_file():
        raise _fail(
            f"--model {model}: not a finslm model folder (no {META_FILE}); train one with "
            "`dvc repro train@minilm` or point --model at models/<name>"
        )
    settings = MethodSettings.from_config(ExplainConfig())
    try:
        explanation, used = explain_text(
            text, model, methods, backend, export, target, settings, threads
        )
    except (ModelError, ValueError) as exc:
        raise _fail(str(exc)) from None
    from rich.console import Console

    console = Console()
    console.print(f"[dim]{model} · SHAP/LIME on {used}[/]")
    print_explanation(explanation, methods, console)
    if html is not None:
        from html import escape

        from finslm.explain.page import render_sentences_page

        record = explanation.to_record()
        page = render_sentences_page(
            [record], methods, title=f"Why {model.name} says {explanation.predicted}",
            subtitle=escape(f"{model} · SHAP/LIME on {used} · IG and attention on torch-fp32"),
        )  # fmt: skip
        try:
            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise _fail(f"--html {html}: cannot write ({exc.strerror})") from None
        console.print(f"wrote {html}")


@app.command()
def fetch(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Table to write: .csv, .tsv or .parquet.")
    ],
    source: Annotated[
        str | None,
        typer.Option(help="hub:<dataset id> (default: data.source in params.yaml)."),
    ] = None,
    params: Annotated[Path, typer.Option(help="Params file for the data.* settings.")] = Path(
        "params.yaml"
    ),
) -> None:
    """Download a hub dataset (data.source: hub:<id>) to a local table the pipeline can track."""
    import dataclasses

    from finslm.config import ConfigError, load_params
    from finslm.data.errors import DataError
    from finslm.data.fetch import fetch as fetch_table

    try:
        cfg = load_params(params).data
        if source is not None:
            cfg = dataclasses.replace(cfg, source=source)
        result = fetch_table(cfg, out)
    except (ConfigError, DataError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {result.rows} rows from {cfg.source} to {out}")
    if result.rejects:
        typer.echo(f"{result.rejects} unreadable lines rejected: {result.rejects_path}")
    typer.echo(
        f"next: dvc add {out}   # version it\n"
        f"      dvc exp run -S data.source={out} -S data.format=auto"
    )


@app.command()
def ablate(
    name: Annotated[str, typer.Argument(help="Name of this recipe: <out>/<name>.json.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value on top of models.<model> (repeatable)."),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "42,43,44",
    model: Annotated[str, typer.Option(help="Transformer entry of params.yaml models.")] = "minilm",
    threads: Annotated[int, typer.Option(help="torch CPU threads (same count, same weights).")] = 1,
    baseline: Annotated[
        str | None, typer.Option(help="Another ablation's name: add paired differences.")
    ] = None,
    prepared: Annotated[Path, typer.Option(help="Folder of the prepared splits.")] = Path(
        "data/prepared"
    ),
    out: Annotated[Path, typer.Option(help="Where results go.")] = Path("metrics/ablation"),
    keep_models: Annotated[
        Path | None, typer.Option(help="Also save each seed's model to <dir>/<name>/seed<k>.")
    ] = None,
    params: Annotated[Path, typer.Option(help="Params file.")] = Path("params.yaml"),
    ingredients_from: Annotated[
        str | None,
        typer.Option(help="Soup recipes: average this ablation's kept models, do not retrain."),
    ] = None,
) -> None:
    """Train one recipe over several seeds (selection on val); report val and test, mean ± std."""
    import logging

    from finslm.ablation import parse_overrides, run_ablation
    from finslm.config import ConfigError
    from finslm.data.errors import DataError
    from finslm.models import ModelError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise _fail(
            f"--seeds {seeds!r}: expected comma-separated integers, e.g. 42,43,44"
        ) from None
    try:
        result = run_ablation(
            name,
            parse_overrides(overrides or []),
            seed_list,
            model=model,
            params_path=params,
            prepared=prepared,
            out=out,
            threads=threads,
            baseline=baseline,
            keep_models=keep_models,
            ingredients_from=ingredients_from,
        )
    except (ConfigError, DataError, ModelError) as exc:  # a bad checkpoint, or TAPT on non-BERT
        raise _fail(str(exc)) from None
    val, test = result["summary"]["val"], result["summary"]["test"]
    typer.echo(
        f"{name}: val acc {val['accuracy']['mean']:.4f} F1 {val['macro_f1']['mean']:.4f} | "
        f"test acc {test['accuracy']['mean']:.4f} F1 {test['macro_f1']['mean']:.4f} "
        f"({len(result['per_seed'])} seeds) -> {out / f'{name}.json'}"
    )


@app.command("ablate-table")
def ablate_table(
    names: Annotated[
        list[str] | None, typer.Argument(help="Ablations in row order (default: all).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder of ablation results.")] = Path(
        "metrics/ablation"
    ),
) -> None:
    """Print the markdown ablation table of `finslm ablate` results."""
    from finslm.ablation import table
    from finslm.config import ConfigError

    try:
        typer.echo(table(out, names), nl=False)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def soup(
    out: Annotated[Path, typer.Argument(help="Model folder to write.")],
    ingredients: Annotated[
        list[Path], typer.Argument(help="Trained model folders (same checkpoint and head).")
    ],
    method: Annotated[str, typer.Option(help="greedy (chosen on val) or uniform.")] = "greedy",
    val: Annotated[Path, typer.Option(help="Validation split that decides.")] = Path(
        "data/prepared/val.parquet"
    ),
) -> None:
    """Average fine-tuned models' weights into one model (a model soup, chosen on validation)."""
    import logging

    from finslm.data import DataError, read_split
    from finslm.models import ModelError
    from finslm.train.soup import make_soup

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        df = read_split(val)
        result = make_soup(ingredients, out, df.text.tolist(), df.label.tolist(), method)
    except (DataError, ModelError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"wrote {out}: {len(result['kept'])} of {len(ingredients)} ingredients, "
        f"val accuracy {result['val']['accuracy']:.4f}, macro-F1 {result['val']['macro_f1']:.4f}"
    )


@app.command("diff-report")
def diff_report(
    a_rev: Annotated[str, typer.Argument(help="Old git revision: a branch, tag or commit.")],
    b_rev: Annotated[
        str | None, typer.Argument(help="New git revision (default: the workspace).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Markdown report; plots go to <stem>-plots/.")
    ] = Path("reports/diff.md"),
    plots: Annotated[bool, typer.Option(help="Also render the plots diff.")] = True,
) -> None:
    """Markdown report of the params, metrics and plots that differ between two revisions."""
    from finslm.prdiff import DiffError, write_report

    try:
        path = write_report(a_rev, b_rev, Path("."), out, plots=plots)
    except DiffError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {path}")


# Token classification (financial NER): finslm ner predict "…", finslm ner fetch (docs/ner.md).
def _ner_app() -> typer.Typer:
    from finslm.ner.cli import app as ner_app

    return ner_app


app.add_typer(_ner_app(), name="ner")


if __name__ == "__main__":
    app()
