"""Documented commands cannot rot: the cheap shell examples in README.md and docs/**/*.md run here.

The extractor reads fenced ```bash / ```sh / ```shell blocks (continuation lines joined,
comments dropped) and inline code spans of tables and prose, and keeps only an explicit
allow-list:

- every ``-S`` override a ``dvc exp run`` line or an inline span shows is applied to a copy of
  params.yaml with DVC's own override code (``dvc.utils.hydra``: Hydra sweeps expanded as
  ``--queue`` does, each combination applied as ``dvc exp run`` applies it) and the result is
  loaded with every params loader, without running a training;
- ``finslm predict`` lines run through the CLI on a tiny model, laid out as the pipeline lays
  its models out (``models/minilm``, ``exports/minilm``) in a scratch folder.

Anything else (trainings, ``dvc repro``, ``git``) is skipped: it is too slow or needs state.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from finslm.config import (
    ConfigError,
    load_benchmark_config,
    load_explain_config,
    load_export_config,
    load_finetune_config,
    load_params,
)
from tests.dvc_repo import ROOT

FENCE = re.compile(r"^```(\w*)\s*$")
SHELL = {"bash", "sh", "shell", "console"}
INLINE = re.compile(r"`([^`\n]+)`")
RUN_PREFIXES = ("finslm predict",)  # the allow-list of commands run as they are written
# Placeholders, not values: `-S key=value`, `-S data.source=…`, `<model>`.
PLACEHOLDER = re.compile(r"…|\.\.\.|<[^>]*>|^key=value$")
# A doc line holding this marker is not checked (an example that is meant to fail).
SKIP_MARK = "docs-test: skip"
# Makefile variables whose defaults are `-S` grids (README "Experiments" runs them).
MAKE_GRIDS = ("EXP_GRID", "EXP_GRID_BASELINE", "PRUNE_GRID")


def doc_files(root: Path = ROOT) -> list[Path]:
    return [
        p for p in [root / "README.md", *sorted((root / "docs").glob("**/*.md"))] if p.is_file()
    ]


def shell_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, command)`` of every fenced shell block; ``\\`` continuations joined."""
    out: list[tuple[int, str]] = []
    in_block, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line.strip())
        if fence:
            in_block = not in_block and fence.group(1) in SHELL
            pending = ""
            continue
        if not in_block:
            continue
        stripped = line.strip().removeprefix("$ ")
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        command = (pending + stripped).strip()
        pending = ""
        if command:
            out.append((start, command))
    return out


def inline_spans(text: str) -> list[tuple[int, str]]:
    """Inline code spans outside fenced blocks (tables, prose)."""
    out, in_block = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line.strip()):
            in_block = not in_block
            continue
        if not in_block:
            out += [(number, span) for span in INLINE.findall(line)]
    return out


def words(command: str) -> list[str]:
    """Shell words up to the first pipe/redirect/``&&``, comments dropped."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars="|&;<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: not a command we can run
        return []
    for i, token in enumerate(tokens):
        if token and set(token) <= set("|&;<>"):
            return tokens[:i]
    return tokens


def set_params(tokens: list[str]) -> list[str]:
    """The values of ``-S``/``--set-param`` options, also inside ``make VAR="-S …"`` grids."""
    out, it = [], iter(tokens)
    for token in it:
        if token in ("-S", "--set-param"):
            value = next(it, None)
            if value is not None:
                out.append(value)
        elif token.startswith("--set-param="):
            out.append(token.split("=", 1)[1])
        elif token.split("=", 1)[0] in MAKE_GRIDS and "=" in token:
            out += set_params(words(token.split("=", 1)[1]))
    return out


def makefile_grids(path: Path = ROOT / "Makefile") -> list[tuple[str, list[str]]]:
    """``(where, [-S values])`` of the Makefile's default grids (``EXP_GRID ?= -S …``)."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name, sep, value = line.partition("?=")
        if sep and name.strip() in MAKE_GRIDS and value.strip():
            out.append((f"Makefile:{number}", set_params(words(value))))
    return out


def checkable(values: list[str]) -> bool:
    return bool(values) and not any(PLACEHOLDER.search(v) for v in values)


def piped_from_cat(command: str) -> tuple[str | None, str]:
    """``cat FILE | rest`` -> ``(FILE, rest)``; anything else -> ``(None, command)``."""
    head, bar, rest = command.partition("|")
    tokens = words(head)
    if bar and len(tokens) == 2 and tokens[0] == "cat":
        return tokens[1], rest.strip()
    return None, command


def documented() -> tuple[list, list]:
    """``(overrides, predicts)``: ``(where, [-S values])`` and ``(where, stdin file, argv)``."""
    overrides, predicts = makefile_grids(), []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        name = path.relative_to(ROOT)
        for number, command in shell_lines(text):
            if SKIP_MARK in lines[number - 1]:
                continue
            stdin, command = piped_from_cat(command)
            tokens = words(command)
            where = f"{name}:{number}"
            if tokens[:1] in (["dvc"], ["make"]) and checkable(set_params(tokens)):
                overrides.append((where, set_params(tokens)))
            elif any(" ".join(tokens).startswith(p) for p in RUN_PREFIXES):
                predicts.append((where, stdin, tokens[1:]))
        for number, span in inline_spans(text):
            if SKIP_MARK in lines[number - 1]:
                continue
            values = set_params(words(span))
            if checkable(values):
                overrides.append((f"{name}:{number}", values))
    return overrides, predicts


OVERRIDES, PREDICTS = documented()


def test_the_docs_have_examples_to_check():
    # Guards the extractor: the README shows both kinds (if it stops, this says so).
    assert len(OVERRIDES) >= 5 and PREDICTS
    shown = [v for _, values in OVERRIDES for v in values]
    assert any("label_map" in v for v in shown)  # issue #26 item 2
    assert any("lr=" in v for v in shown)  # issue #26 item 1


def apply_documented(overrides: list[str], folder: Path) -> list[Path]:
    """params.yaml copies, one per sweep combination, with ``overrides`` applied as DVC does."""
    from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

    combos = get_hydra_sweeps({"params.yaml": overrides})
    out = []
    for i, combo in enumerate(combos):
        path = folder / f"params{i}.yaml"
        shutil.copy(ROOT / "params.yaml", path)
        apply_overrides(path, combo["params.yaml"])
        out.append(path)
    return out


@pytest.mark.parametrize("overrides", [v for _, v in OVERRIDES], ids=[w for w, _ in OVERRIDES])
def test_documented_set_params_apply_and_load(tmp_path, overrides):
    try:
        paths = apply_documented(overrides, tmp_path)
    except Exception as exc:  # DVC's InvalidArgumentError: the documented -S does not apply
        cause = exc.__cause__ or exc
        pytest.fail(f"-S {' -S '.join(overrides)}: DVC cannot apply it: {cause}")
    for path in paths:
        try:
            load_params(path)
            load_export_config(path)
            load_benchmark_config(path)
            load_explain_config(path)
            load_finetune_config(path)
        except ConfigError as exc:
            pytest.fail(f"-S {' -S '.join(overrides)}: params do not load: {exc}")


def test_dvc_written_exponent_is_read_as_a_number(tmp_path):
    # The documented grid value: DVC writes `lr: 5e-05`, which must load as a float.
    (path,) = apply_documented(["models.minilm.lr=5e-5"], tmp_path)
    assert "5e-05" in path.read_text()
    assert load_params(path).models["minilm"].lr == pytest.approx(5e-5)


def test_label_map_form_the_docs_show_works(tmp_path):
    (path,) = apply_documented(
        ["++data.label_map={0: negative, 1: neutral, 2: positive}"], tmp_path
    )
    assert load_params(path).data.label_map == {"0": "negative", "1": "neutral", "2": "positive"}


@pytest.fixture
def pipeline_layout(tmp_path, tiny_classifier, tiny_export, tiny_tagger_layout, monkeypatch):
    """A scratch folder where models/minilm and exports/minilm are the tiny models (and
    models/ner-minilm, exports/ner-minilm a tiny tagger)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "exports").mkdir()
    (tmp_path / "models/minilm").symlink_to(tiny_classifier, target_is_directory=True)
    (tmp_path / "exports/minilm").symlink_to(tiny_export[0], target_is_directory=True)
    ner_model, ner_export = tiny_tagger_layout
    (tmp_path / "models/ner-minilm").symlink_to(ner_model, target_is_directory=True)
    (tmp_path / "exports/ner-minilm").symlink_to(ner_export, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _inputs_for(argv: list[str], folder: Path) -> None:
    """Create any input file a documented command reads, with invented sentences."""
    for flag in ("--file", "-f", "--input", "-i"):
        if flag in argv[:-1]:
            path = folder / argv[argv.index(flag) + 1]
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".csv":
                path.write_text("text\nSales rose.\nOrders fell.\n", encoding="utf-8")
            elif path.suffix == ".parquet":
                import pandas as pd

                pd.DataFrame({"text": ["Sales rose.", "Orders fell."]}).to_parquet(path)
            else:
                path.write_text("Sales rose.\nOrders fell.\n", encoding="utf-8")


@pytest.mark.parametrize(("stdin", "argv"), [p[1:] for p in PREDICTS], ids=[p[0] for p in PREDICTS])
def test_documented_predict_commands_run(pipeline_layout, stdin, argv):
    from typer.testing import CliRunner

    from finslm.cli import app

    _inputs_for(argv, pipeline_layout)
    text = "Sales rose.\nOrders fell.\n" if stdin or "-" in argv else None
    result = CliRunner().invoke(app, argv, input=text)
    assert result.exit_code == 0, f"finslm {' '.join(argv)}:\n{result.output}"


def test_the_label_hint_in_errors_is_a_working_set_param(tmp_path):
    # The unknown-label note that prepare prints suggests a -S form: it must apply too.
    import pandas as pd

    from finslm.data.clean import _notes

    (note,) = _notes(pd.Series(["0", "1"]), pd.Series([True, True]))  # both unknown labels
    values = set_params(words(note[note.index("-S ") :]))
    assert values and values[0].startswith("++data.label_map=")
    (path,) = apply_documented(values, tmp_path)
    assert load_params(path).data.label_map == {"0": "negative", "1": "neutral", "2": "positive"}
