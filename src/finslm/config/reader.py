"""Reading ``params.yaml``: the one YAML reader (:func:`read_params`), the quick profile laid
over the full recipe (:func:`apply_profile`), the models other stages derive, and the
file-and-line prefix every ``load_*`` error gets (:func:`names_the_line`)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from finslm.config.base import ConfigError, yaml_load
from finslm.errors import ENTRY, FinslmError

# A message that starts with the dotted params key it is about: "models.minilm.lr: ...".
_KEY_AT_START = re.compile(r"^([A-Za-z_][\w-]*(?:\.[\w@-]+)*)(?:\[\d+\])?: ")
_UNKNOWN_KEY = re.compile(r"unknown key\(s\) ([\w@-]+)")


def _line_of(path: Path, keys: list[str]) -> int | None:
    """1-based line of the deepest of ``keys`` (a params path) that the YAML file spells out."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    for key in keys:
        found = None
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == key), None)
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
    return line


def names_the_line(load: Callable[..., Any]) -> Callable[..., Any]:
    """``load(path, ...)`` whose ConfigError starts with ``<path>:<line>:`` where the key it
    names is written (the unknown key itself for "unknown key(s)"), so an editor jumps there."""
    import functools

    @functools.wraps(load)
    def wrapper(path: str | Path = "params.yaml", *args: Any, **kwargs: Any) -> Any:
        try:
            return load(path, *args, **kwargs)
        except ConfigError as exc:
            located = _locate(str(exc), Path(path), kwargs.get("profile", "auto"))
            if located is None:
                raise
            raise ConfigError(located) from None

    return wrapper


def _locate(message: str, path: Path, view: str = "auto") -> str | None:
    """``message`` (one that starts with the params key it is about) prefixed with
    ``<path>:<line>:`` (or ``<path>:``); None for a message that names no key first."""
    match = _KEY_AT_START.match(message)
    if message.startswith(str(path)) or match is None:
        return None
    keys = match.group(1).split(".")
    unknown = _UNKNOWN_KEY.match(message, match.end())
    keys += [unknown.group(1)] if unknown else []
    if _set_by_overlay(path, keys, view):  # the quick profile's value: point there
        message, keys = f"{QUICK}.{message}", [QUICK, *keys]
    elif view == "full" and _in_force(path) == QUICK:
        message += FULL_RECIPE_NOTE
    elif view == QUICK and _in_force(path) != QUICK:
        message += QUICK_RECIPE_NOTE
    line = _line_of(path, keys)
    return f"{path}:{line}: {message}" if line else f"{path}: {message}"


@contextlib.contextmanager
def naming_entry(entry: str, path: str | Path | None = None) -> Iterator[None]:
    """Inside, an error that says :data:`finslm.errors.ENTRY` (``models.<name>``, raised where a
    check needs the checkpoint and the entry's name is not known) says ``entry`` instead
    (``models.minilm``, ``ner.models.minilm``); with ``path`` (the params file the settings came
    from) also its file and line where the message starts with the key. The same exception,
    re-raised.

    No ``path`` where the settings were changed on top of the file (``finslm ablate --set``):
    the file's line would not be where the value came from."""
    try:
        yield
    except FinslmError as exc:
        message = str(exc)
        if ENTRY not in message:
            raise
        message = message.replace(ENTRY, entry)
        if path is not None:
            message = _locate(message, Path(path)) or message
        exc.args = (message,)
        raise


# Appended to an error in the full recipe found while the quick profile is in force.
FULL_RECIPE_NOTE = (
    " (in the full recipe: the quick profile overrides it on the embedded sample, but any other "
    "data.source runs it)"
)


QUICK_RECIPE_NOTE = " (with the quick profile laid over the file, as on the embedded sample)"


def _raw_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _in_force(path: Path) -> str:
    return profile_in_force(_raw_file(path))


def _set_by_overlay(path: Path, keys: list[str], view: str) -> bool:
    """Whether params ``keys`` (``models.minilm.epochs``) got their value from the ``quick``
    section in the ``view`` a loader read (``auto``: the profile in force)."""
    if view == "full" or (view == "auto" and _in_force(path) != QUICK):
        return False
    node: Any = _raw_file(path).get(QUICK)
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def read_params(path: str | Path = "params.yaml", profile: str = "auto") -> dict[str, Any]:
    """The one YAML reader: ``params.yaml`` as a mapping (``{}`` when empty), with the
    ``quick`` profile applied when it is in force (:func:`apply_profile`). ``profile``
    ``full`` or ``quick`` reads that recipe whichever is in force (:func:`load_params` checks
    both)."""
    from finslm.config.params import KNOWN_SECTIONS  # the registry imports every section

    path = Path(path)
    try:
        raw = yaml_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from the repository root") from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(KNOWN_SECTIONS)})")
    for section, value in raw.items():
        if section not in KNOWN_SECTIONS:
            import difflib

            close = difflib.get_close_matches(str(section), KNOWN_SECTIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            line = _line_of(path, [str(section)])
            raise ConfigError(
                f"{path}:{line}: unknown section {section!r}; {hint}known sections: "
                f"{', '.join(KNOWN_SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(
                f"{path}: section {section!r} is {value!r}, not a mapping of keys; give its "
                f"keys (see src/finslm/config/) or delete the line to use the defaults"
            )
    if profile == "full":
        _check_overlay(raw)
        return raw
    return apply_profile(raw, force=profile == QUICK)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """``<path>:<line>:<column>: <problem>`` (the form an editor jumps to) for a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return f"{path}: not valid YAML: {exc}"
    context = getattr(exc, "context", None)
    where = f" ({context})" if context else ""
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}{where}"


SAMPLE_SOURCE = "data/sample/sentences.csv"  # the embedded sample (DataConfig.source's default)
QUICK = "quick"  # the params section that the quick profile lays over the others


def profile_in_force(raw: dict[str, Any]) -> str:
    """``quick`` or ``full`` for raw params: ``data.profile``, where ``auto`` means quick on the
    embedded sample and full on anything else."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    profile = data.get("profile", "auto")
    if profile not in ("auto", "quick", "full"):
        return "full"  # build() reports the bad value, naming data.profile
    if profile == "auto":
        source = Path(str(data.get("source", SAMPLE_SOURCE))).as_posix().removeprefix("./")
        return "quick" if source == SAMPLE_SOURCE else "full"
    return profile


def profile_note(raw: dict[str, Any]) -> str | None:
    """A line for commands outside ``dvc repro`` (ablate, tune, cv) that read the params as the
    pipeline does: what the quick profile changes when it is in force, else None."""
    if profile_in_force(raw) != QUICK or not raw.get(QUICK):
        return None
    return (
        "the quick profile is in force (data.source is the embedded sample, or data.profile: "
        "quick): params.yaml's quick section replaces some settings (fewer epochs and seeds); "
        "data.profile: full (-S or in params.yaml) runs the recipe as written"
    )


def _check_overlay(raw: dict[str, Any]) -> None:
    """The ``quick`` section's shape, whichever profile is in force: a mapping of sections
    that exist (a misspelled one would otherwise be merged in and never read)."""
    from finslm.config.params import SECTIONS

    overlay = raw.get(QUICK)
    if overlay is None:
        return
    if not isinstance(overlay, dict):
        raise ConfigError(f"{QUICK}: expected a mapping of params sections, got {overlay!r}")
    allowed = ("models", *SECTIONS)
    for section in overlay:
        if section not in allowed:
            import difflib

            close = difflib.get_close_matches(str(section), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{QUICK}.{section}: not a params section; {hint}the quick profile can set "
                f"{', '.join(allowed)}"
            )


def apply_profile(raw: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """``raw`` with the ``quick`` section merged over the other sections when the quick
    profile is in force (or ``force``); the ``quick`` section itself is kept (DVC tracks it as
    a param)."""
    _check_overlay(raw)
    overlay = raw.get(QUICK)
    if not (force or profile_in_force(raw) == QUICK) or not overlay:
        return raw

    def merge(base: Any, over: dict[str, Any], key: str) -> dict[str, Any]:
        if base is None:
            base = {}
        if not isinstance(base, dict):
            raise ConfigError(f"{key}: the quick profile sets keys under it, but it is {base!r}")
        out = dict(base)
        for name, value in over.items():
            where = f"{key}.{name}"
            if isinstance(value, dict) and name != "label_map":  # a mapping param is replaced
                if key == f"{QUICK}.models" and name not in (raw.get("models") or {}):
                    missing = "" if raw.get("models") else " (the file has no models section)"
                    raise ConfigError(
                        f"{where}: no model {name!r} under models{missing}; remove it from "
                        "the quick profile or add the model"
                    )
                out[name] = merge(base.get(name), value, where)
            else:
                out[name] = value
        return out

    merged = dict(raw)
    for section, value in overlay.items():
        where = f"{QUICK}.{section}"
        if section == QUICK or not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a params section (a mapping), got {value!r}")
        merged[section] = merge(raw.get(section), value, where)
    return merged


# Transformer folders other stages derive from a trained one: params section -> name suffix
# (finetune.model: minilm -> models/minilm-targeted; prune.model: minilm -> models/minilm-pruned).
DERIVED_SUFFIXES = {"finetune": "targeted", "prune": "pruned"}


def derived_models(raw: dict[str, Any]) -> dict[str, str]:
    """``{derived name: base model}`` for the sections of ``raw`` params that are present."""
    out = {}
    for section, suffix in DERIVED_SUFFIXES.items():
        params = raw.get(section)
        base = params.get("model") if isinstance(params, dict) else None
        if isinstance(base, str) and base:
            out[f"{base}-{suffix}"] = base
    distill = raw.get("distill")
    students = distill.get("students") if isinstance(distill, dict) else None
    for name, settings in (students if isinstance(students, dict) else {}).items():
        teacher = (settings or {}).get("teacher")
        if isinstance(teacher, str) and teacher:
            out[name] = teacher  # distill@<name> writes models/<name>, a transformer
    return out


def require_transformer(raw: dict[str, Any], name: str, key: str, why: str) -> None:
    """Raise a ConfigError naming ``key`` unless ``name`` is a transformer under ``models``."""
    models = raw.get("models") or {}
    kind = (models.get(name) or {}).get("kind")
    if kind != "transformer":
        what = "is not under models" if name not in models else f"has kind {kind!r}"
        transformers = [n for n, m in models.items() if (m or {}).get("kind") == "transformer"]
        raise ConfigError(
            f"{key}: {name!r} {what}; {why} (transformers here: {', '.join(transformers) or 'none'})"
        )
