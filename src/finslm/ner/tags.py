"""Tag schemes: IO, IOB1, IOB2 and BIOES / BILOU in, IOB2 out; entity spans from IOB2 tags.

Before anything else, :func:`normalise_tag` reads BIOES / BILOU prefixes as IOB2 ones (``S-T``
and ``U-T``, a one-word entity, are ``B-T``; ``E-T`` and ``L-T``, its last word, are ``I-T``:
lossless) and upper-cases a lower-case prefix (``b-PER``, ``o``).

- IO: every entity token is ``I-T`` (two adjacent entities of one type cannot be told apart);
- IOB1: ``I-T`` throughout, ``B-T`` only where an entity follows one of the same type;
- IOB2: every entity starts with ``B-T``.

:func:`to_iob2` converts any of them: an ``I-T`` not continuing a ``T`` entity starts one. For
data declared IOB2 that is an error in the data (an orphan ``I-``), which the cleaning step
repairs or rejects, as ``ner.orphan_i`` says (:func:`orphan_positions`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TAG = re.compile(r"^(?:O|[BI]-[A-Za-z0-9_.:\-]+)$")


_PREFIX = {"b": "B", "i": "I", "s": "B", "u": "B", "e": "I", "l": "I"}


def normalise_tag(tag: str) -> str:
    """``S-T``/``U-T`` -> ``B-T``, ``E-T``/``L-T`` -> ``I-T``, ``b-T`` -> ``B-T``, ``o`` -> ``O``;
    anything else unchanged (and then judged by :func:`is_valid`)."""
    if tag in ("O", "o"):
        return "O"
    if len(tag) > 2 and tag[1] == "-" and tag[0].lower() in _PREFIX:
        return f"{_PREFIX[tag[0].lower()]}-{tag[2:]}"
    return tag


def is_valid(tag: str) -> bool:
    """``O``, ``B-T`` or ``I-T`` with a non-empty type name."""
    return bool(TAG.match(tag))


def split_tag(tag: str) -> tuple[str, str | None]:
    """``B-ORG`` -> ``("B", "ORG")``; ``O`` -> ``("O", None)``."""
    if tag == "O":
        return "O", None
    return tag[0], tag[2:]


def orphan_positions(tags: Sequence[str]) -> list[int]:
    """Indices of ``I-T`` tags that do not continue a ``T`` entity (illegal in IOB2)."""
    out, prev = [], None
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix == "I" and prev != kind:
            out.append(i)
        prev = kind
    return out


def detect_scheme(sentences: Sequence[Sequence[str]]) -> str:
    """``io`` when no ``B-`` occurs, ``iob2`` when every entity starts with ``B-``, else ``iob1``."""
    any_b = any(t.startswith("B-") for tags in sentences for t in tags)
    if not any_b:
        return "io"
    if all(not orphan_positions(tags) for tags in sentences):
        return "iob2"
    return "iob1"


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IO / IOB1 / IOB2 tags -> IOB2: an ``I-T`` that does not continue a ``T`` entity becomes
    ``B-T``; ``B-`` and ``O`` stay."""
    out, prev = [], None
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and prev != kind:
            tag = f"B-{kind}"
        out.append(tag)
        prev = kind
    return out


def select_types(tags: Sequence[str], keep: Sequence[str], rename: dict[str, str]) -> list[str]:
    """Rename types (``rename``, before selection), then map types outside ``keep`` to ``O``
    (``keep`` empty: keep all). Call on IOB2 tags; the result is IOB2 again."""
    out = []
    for tag in tags:
        prefix, kind = split_tag(tag)
        if kind is not None:
            kind = rename.get(kind, kind)
            if keep and kind not in keep:
                out.append("O")
                continue
            tag = f"{prefix}-{kind}"
        out.append(tag)
    return to_iob2(out)


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of IOB2 ``tags`` as ``(type, start, end)`` word indices, ``end`` exclusive.

    Strict: an entity is a ``B-T`` and the ``I-T`` that follow it; a stray ``I-T`` (a model can
    predict one) starts an entity of its own, as a lenient decoder would.
    """
    found: list[tuple[str, int, int]] = []
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, t = split_tag(tag)
        if kind is not None and (prefix != "I" or t != kind):
            found.append((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            kind, start = t, i
    return found


LABEL_SCHEMES = ("iob2", "io")


def label_list(types: Sequence[str], scheme: str = "iob2") -> list[str]:
    """The model's label order: ``O``, then ``B-T``, ``I-T`` for each type in order (``iob2``),
    or ``O`` and one ``I-T`` per type (``io``: an entity is a run of one type)."""
    if scheme == "io":
        return ["O", *(f"I-{t}" for t in types)]
    if scheme != "iob2":
        raise ValueError(f"label scheme {scheme!r}: choose one of {', '.join(LABEL_SCHEMES)}")
    return ["O", *(f"{p}-{t}" for t in types for p in ("B", "I"))]


def to_labels(tags: Sequence[str], scheme: str) -> list[str]:
    """IOB2 tags in a model's label scheme: unchanged for ``iob2``, ``B-T`` -> ``I-T`` for ``io``
    (two adjacent entities of one type merge, as IO data has them already)."""
    if scheme == "io":
        return [f"I-{t[2:]}" if t.startswith("B-") else t for t in tags]
    return list(tags)
