"""The pieces every params section is built from: :class:`ConfigError`, the YAML loader
(:func:`yaml_load`), the :class:`Section` base with its ``need`` checks, and :func:`build`,
which turns a params mapping into a checked dataclass."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

import yaml

from finslm.errors import FinslmError


class ConfigError(FinslmError, ValueError):
    """A params.yaml value is missing, unknown or out of range; the message says which and why
    (and, raised through a ``load_*`` function, the file and line: :func:`names_the_line`)."""


# What every seed key must be: a seed numpy takes (default_rng, RandomState, sklearn).
SEED_RULE = "between 0 and 2**32 - 1 (a numpy seed)"


def is_seed(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32


# need(cond, key, what[, value]): raise ``<prefix>.<key>: got <value>; must be <what>``.
Need = Callable[..., None]
_UNSET = object()


def checker(obj: Any, prefix: str) -> Need:
    def need(cond: bool, key: str, what: str, value: Any = _UNSET) -> None:
        if not cond:
            got = getattr(obj, key) if value is _UNSET else value
            raise ConfigError(f"{prefix}.{key}: got {got!r}; must be {what}")

    return need


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: ~10x faster
    """PyYAML's safe loader, reading floats as YAML 1.2 does.

    PyYAML follows YAML 1.1, where a float needs a dot: ``5e-05`` (what ``dvc exp run -S
    lr=5e-5`` writes back) would be the string "5e-05". This adds the 1.2 forms (``5e-05``,
    ``1E+3``) so a number is a number whichever YAML dialect wrote the file.
    """


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A YAML mapping, refusing a key written twice: PyYAML would keep the last silently, so a
    second ``data:`` block would replace the first one's settings without a word."""
    first: dict[str, yaml.Node] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            seen = first.setdefault(str(key_node.value), key_node)
            if seen is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r} (first at line "
                    f"{seen.start_mark.line + 1}); keep one and merge their settings",
                    key_node.start_mark,
                )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text as params.yaml is read everywhere (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of every params section: one validation style for all of them.

    A subclass's :meth:`check` states its ranges and cross-field rules with ``need``; it runs on
    construction under the class's ``SECTION`` name (``prune.ffn_keep: got 0; must be …``),
    and for a model entry (no fixed name) from :func:`build` under ``models.<name>``.
    """

    SECTION: ClassVar[str] = ""

    def __post_init__(self):
        if self.SECTION:
            self.check(checker(self, self.SECTION))

    def check(self, need: Need) -> None:
        """Ranges and cross-field rules beyond the field types (checked by :func:`build`)."""


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """Return ``value`` coerced to ``annotation`` or raise a ConfigError naming ``key``."""
    origin = get_origin(annotation)
    if origin is Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            raise ConfigError(
                f"{key}: got {value!r}; allowed values: {', '.join(map(str, allowed))}"
            )
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        for k, v in value.items():
            if v is None or isinstance(v, dict | list) or not str(v).strip():
                raise ConfigError(f"{key}: {k!r} maps to {v!r}; give a name")
        return {str(k): str(v) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = get_args(annotation)
        return [_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (Union, types.UnionType):
        arms = get_args(annotation)
        for arm in arms:
            try:
                return _check_type(value, arm, key)
            except ConfigError:
                continue
        names = " or ".join(getattr(a, "__name__", str(a)) for a in arms)
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    if isinstance(annotation, type) and issubclass(annotation, Section):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of settings, got {value!r}")
        return build(annotation, value, key)  # a nested block (models.<m>.lora)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def build(cls: type, raw: dict[str, Any] | None, prefix: str):
    """Build dataclass ``cls`` from a params mapping, rejecting unknown keys and bad values."""
    raw = dict(raw or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        import difflib

        close = [c for u in unknown for c in difflib.get_close_matches(str(u), names, n=1)]
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"{prefix}: unknown key(s) {', '.join(map(str, unknown))}; {hint}"
            f"known keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: _check_type(v, hints[k], f"{prefix}.{k}") for k, v in raw.items()}
    obj = cls(**kwargs)  # a Section with a fixed name checks itself here
    if not cls.SECTION:
        obj.check(checker(obj, prefix))
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def need_names(need: Need, key: str, value: list) -> None:
    """A list of distinct, non-empty names (types are checked by :func:`build`)."""
    need(all(isinstance(v, str) and v for v in value), key, "a list of names")
    need(len(set(value)) == len(value), key, "a list without repeats")
