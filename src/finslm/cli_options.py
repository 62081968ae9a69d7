"""Typer options that several commands share (predict, explain, serve, ner predict).

One definition each, so a flag means the same thing, with the same help, in every command:

    def predict(backend: Backend = "auto", threads: Threads = 0, device: Device = "cpu"): ...
"""

from __future__ import annotations

from typing import Annotated

import typer

BACKENDS_HELP = "auto (the folder's default), torch-fp32, onnx-fp32, onnx-opt, onnx-int8, sklearn."

Backend = Annotated[str, typer.Option("--backend", "-b", help=BACKENDS_HELP)]
Threads = Annotated[int, typer.Option(help="CPU threads (0: the library default).")]
Device = Annotated[str, typer.Option(help="cpu, cuda, or auto (CUDA when present).")]
