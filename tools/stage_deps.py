"""Each DVC stage's code dependencies, computed from what its script imports.

``dvc repro`` reruns a stage when one of its declared ``deps`` changes, so a module a stage
imports but does not declare is a stale result waiting to happen. This tool reads every stage's
``cmd`` in ``dvc.yaml`` (``python stages/<script>.py …``), follows the script's ``finslm``
imports through the library — module-level and function-level, since a lazy import still runs
— and adds the data files a module names (``recommendations.schema.json`` beside
``explain/analysis.py``). That closure is what the stage must declare.

    python tools/stage_deps.py            # check: list what dvc.yaml lacks or has in excess
    python tools/stage_deps.py --write    # rewrite each stage's code deps from the closure

``--write`` keeps every non-code dep (data, models, params files) and replaces the code ones
with the closure: a package folder when the stage needs every file in it, single files
otherwise. ``tests/test_stage_deps.py`` fails, naming stage and file, when dvc.yaml falls behind.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = "src"
PACKAGE = "finslm"
_SCRIPT = re.compile(r"\bpython\s+(stages/[\w/]+\.py)")
_CODE_PREFIXES = ("stages/", f"{SRC}/")


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """``finslm.a.b`` -> ``src/finslm/a/b.py`` or ``src/finslm/a/b/__init__.py`` (relative)."""
    base = Path(SRC, *module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / candidate).is_file():
            return candidate
    return None


def _imported_modules(tree: ast.AST, module: str | None) -> set[str]:
    """Every ``finslm`` module an AST imports, with the packages Python runs on the way."""
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and module:  # relative: resolve against this module's package
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            # `from finslm.a import b` imports finslm.a, and finslm.a.b when b is a module.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            parts = name.split(".")
            if parts[0] != PACKAGE:
                continue
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def _data_files(path: Path, source: str, root: Path) -> set[Path]:
    """Non-Python files beside a module that the module names in a string literal."""
    folder = root / path.parent
    return {
        path.parent / f.name
        for f in folder.iterdir()
        if f.is_file() and f.suffix != ".py" and f"{f.name}" in source
    }


def _file_imports(path: Path, module: str | None, root: Path) -> tuple[set[Path], list[str]]:
    """The data files a module names and the ``finslm`` modules it imports (sorted)."""
    source = (root / path).read_text(encoding="utf-8")
    data = _data_files(path, source, root) if module else set()
    return data, sorted(_imported_modules(ast.parse(source, str(path)), module))


def closure(script: str | Path, root: Path = ROOT, cache: dict | None = None) -> set[Path]:
    """Project files (relative paths) that running ``script`` imports or reads, script included.

    ``cache`` (a dict the caller keeps) shares parsed modules between the stages of one check:
    every stage reaches the same library modules, and parsing them once per stage was most of
    the tool's run time."""
    script = Path(script)
    cache = {} if cache is None else cache
    seen: set[Path] = {script}
    queue: list[tuple[Path, str | None]] = [(script, None)]
    while queue:
        path, module = queue.pop()
        key = (root, path, module)
        if key not in cache:
            cache[key] = _file_imports(path, module, root)
        data, names = cache[key]
        seen |= data
        for name in names:
            file = module_file(name, root)
            if file is not None and file not in seen:
                seen.add(file)
                queue.append((file, name))
    return seen


def stage_scripts(dvc_yaml: dict) -> dict[str, str]:
    """Stage name -> the ``stages/*.py`` script its ``cmd`` runs."""
    scripts = {}
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        cmd = body["cmd"] if isinstance(body["cmd"], str) else " ".join(body["cmd"])
        match = _SCRIPT.search(cmd)
        if match:
            scripts[name] = match.group(1)
    return scripts


def declared(stage: dict) -> list[str]:
    body = stage.get("do", stage)
    return [str(d) for d in body.get("deps", [])]


def covered(file: Path, deps: Iterable[str]) -> bool:
    """Whether a declared dep (the file itself or a folder above it) covers ``file``."""
    text = file.as_posix()
    return any(text == d.rstrip("/") or text.startswith(d.rstrip("/") + "/") for d in deps)


def compact(files: set[Path], root: Path = ROOT) -> list[str]:
    """The closure as dvc.yaml deps: a package folder where every file in it is needed."""
    out: list[str] = []
    remaining = set(files)
    packages = sorted(
        {f.parent for f in files if (root / f.parent / "__init__.py").is_file()},
        key=lambda p: len(p.parts),
    )
    for pkg in packages:
        if covered(pkg, out):
            continue
        members = {p.relative_to(root) for p in (root / pkg).rglob("*") if _is_source(p)}
        if members and members <= files:
            out.append(pkg.as_posix())
            remaining -= members
    out += sorted(f.as_posix() for f in remaining if not covered(f, out))
    scripts = sorted(d for d in out if d.startswith("stages/"))
    return scripts + sorted(d for d in out if not d.startswith("stages/"))


def _is_source(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"


def problems(root: Path = ROOT) -> list[str]:
    """One line per code file a stage needs but does not declare, or declares but never uses."""
    import yaml

    spec = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    out = []
    cache: dict = {}
    for name, script in stage_scripts(spec).items():
        deps = declared(spec["stages"][name])
        needed = closure(script, root, cache)
        for file in sorted(needed):
            if not covered(file, deps):
                out.append(f"{name}: imports {file} but dvc.yaml does not declare it")
        code = [d for d in deps if d.startswith(_CODE_PREFIXES)]
        for dep in code:
            if not any(covered(f, [dep]) for f in needed):
                out.append(f"{name}: declares {dep} but never imports it")
    return out


def write(root: Path = ROOT) -> int:
    """Rewrite every stage's code deps in dvc.yaml from its closure; returns stages changed."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = root / "dvc.yaml"
    spec = yaml.load(path.read_text(encoding="utf-8"))
    changed = 0
    cache: dict = {}
    for name, script in stage_scripts(spec).items():
        body = spec["stages"][name].get("do", spec["stages"][name])
        old = [str(d) for d in body["deps"]]
        other = [d for d in body["deps"] if not str(d).startswith(_CODE_PREFIXES)]
        new = compact(closure(script, root, cache), root)
        if new + [str(d) for d in other] != old:
            body["deps"].clear()
            body["deps"].extend([*new, *other])
            changed += 1
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(spec, fh)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    args = parser.parse_args(argv)
    if args.write:
        print(f"dvc.yaml: code deps of {write()} stage(s) rewritten from their imports")
    found = problems()
    for line in found:
        print(line)
    if found:
        print("fix: python tools/stage_deps.py --write", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
