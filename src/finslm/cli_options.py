"""What the typer apps share: one way to build an app, to fail, and the options several commands
take (predict, explain, serve, ner predict, export, ner export).

One definition each, so a flag means the same thing, with the same help, in every command:

    def predict(backend: Backend = "auto", threads: Threads = 0, device: Device = "cpu"): ...
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

BACKENDS_HELP = (
    "auto (the folder's default), torch-fp32, onnx-fp32, onnx-opt, onnx-int8, sklearn; "
    "openvino-fp32, openvino-int8 (pip install 'finslm\\[openvino]'), ct2-int8 ('finslm\\[ct2]')."
)

Backend = Annotated[str, typer.Option("--backend", "-b", help=BACKENDS_HELP)]
Threads = Annotated[int, typer.Option(min=0, help="CPU threads (0: the library default).")]
Device = Annotated[str, typer.Option(help="cpu, cuda, or auto (CUDA when present).")]

# `finslm predict` and `finslm ner predict`.
TextFile = Annotated[
    Path | None, typer.Option("--file", "-f", help="Read one text per line from this file.")
]
BatchSize = Annotated[int, typer.Option(min=1, help="Texts per forward pass.")]
Decode = Annotated[
    str | None,
    typer.Option(help="Token classifiers: viterbi or argmax (default: the model's finslm.json)."),
]


# `finslm export` and `finslm ner export`.
ExportOut = Annotated[
    Path | None, typer.Option(help="Export folder to write (default: exports/<model name>).")
]
ParityMetrics = Annotated[Path | None, typer.Option(help="Write the parity numbers here.")]


def params_in_use(params: Path) -> bool:
    """Whether a command reads ``params``: named on the command line, or the checkout's
    params.yaml. Outside a checkout (no params.yaml) the documented defaults apply."""
    return params.is_file() or params != Path("params.yaml")


def typer_app(help: str) -> typer.Typer:
    """A command group as every finslm CLI is built: help on no arguments, no shell-completion
    commands, plain tracebacks (a bug shows where it is; user errors go through :func:`fail`)."""
    return typer.Typer(
        help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` on stderr; raise the returned Exit (status ``code``)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_export(export: Callable[[], dict[str, Any]], out: Path, metrics: Path | None) -> None:
    """Run ``export()`` (which returns its parity numbers) for ``finslm export`` and ``finslm ner
    export``: the numbers go to ``metrics`` even when the gate fails, errors are one line."""
    from finslm.config import ConfigError
    from finslm.data.errors import DataError
    from finslm.export import ParityError
    from finslm.models import ModelError

    def write(numbers: dict[str, Any]) -> None:
        if metrics:
            metrics.parent.mkdir(parents=True, exist_ok=True)
            metrics.write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")

    try:
        numbers = export()
    except ParityError as exc:
        write(exc.metrics)
        raise fail(str(exc)) from None
    except (ConfigError, DataError, ModelError) as exc:
        raise fail(str(exc)) from None
    write(numbers)
    typer.echo(f"wrote {out}" + (f" and {metrics}" if metrics else ""))
