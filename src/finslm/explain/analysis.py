"""Error analysis on the validation split, and the recommendations file the targeted fine-tune reads.

    >>> frame = prediction_frame(val.text, val.label, proba, labels)   # one row per sentence
    >>> sample = stratified_sample(frame, size=100, seed=42)            # what gets explained
    >>> rec = recommendations(frame, records, labels, model="minilm", backend="onnx-int8",
    ...                       token_method="shap")
    >>> validate_recommendations(rec)                                   # against the JSON schema

The recommendations file (``analysis/<model>.json``) is documented field by field in
``recommendations.schema.json`` next to this module. In short:

- ``target_classes``: classes whose validation F1 is below the macro-F1, worst first, each with a
  suggested sampling ``weight`` (``macro_f1 / f1``, clipped to [1, 3]);
- ``confusions``: (true, predicted) pairs with their counts, most frequent first;
- ``confidence_threshold``: the lowest confidence at which the predictions at or above it reach
  ``target_accuracy`` on validation; below it the model is unreliable (route to review, or
  emphasise such examples in fine-tuning);
- ``token_patterns``: words that carry misclassifications according to the most faithful
  attribution method and whose validation sentences go wrong clearly more often than average,
  with how often they occur and how error-prone they are;
- ``calibration`` (ECE, reliability bins), ``misclassified`` and ``low_confidence`` examples.

Validation data only: nothing here reads the test split.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from finslm.errors import FinslmError
from finslm.evaluation import classification_metrics
from finslm.explain.words import is_content, split_words

SCHEMA_VERSION = 1
# Function words never count as patterns: they are in most sentences, so they collect
# attribution and a slightly raised error rate (longer sentences) without telling the
# fine-tune anything it can act on. scikit-learn's English list (318 words).
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS)
SCHEMA_FILE = "recommendations.schema.json"


def prediction_frame(
    texts: Iterable[str], y_true: Iterable[str], proba: np.ndarray, labels: Sequence[str]
) -> pd.DataFrame:
    """One row per sentence: text, label, predicted, confidence (max probability), correct."""
    proba = np.asarray(proba, dtype=np.float64)
    frame = pd.DataFrame({"text": [str(t) for t in texts], "label": [str(y) for y in y_true]})
    frame["predicted"] = [labels[i] for i in proba.argmax(axis=1)]
    frame["confidence"] = proba.max(axis=1)
    frame["correct"] = frame["label"] == frame["predicted"]
    for i, label in enumerate(labels):
        frame[f"p_{label}"] = proba[:, i]
    return frame


def stratified_sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Up to ``size`` rows spread evenly over the (true label, correct?) strata.

    Each non-empty stratum gets an equal share; a stratum smaller than its share (errors usually
    are) gives all its rows, and what it leaves over is shared among the others. Rows keep their
    frame index; column ``stratum`` names the stratum ("negative/correct", ...).
    """
    rng = np.random.default_rng(seed)
    groups = {
        f"{label}/{'correct' if ok else 'error'}": group.index.to_numpy()
        for (label, ok), group in frame.groupby(["label", "correct"], sort=True)
    }
    quota = dict.fromkeys(groups, 0)
    left = min(int(size), len(frame))
    while left > 0:
        open_ = [g for g in groups if quota[g] < len(groups[g])]
        share = max(1, left // len(open_))
        for g in open_:
            take = min(share, len(groups[g]) - quota[g], left)
            quota[g] += take
            left -= take
            if left == 0:
                break
    picked, strata = [], []
    for g, index in groups.items():
        chosen = rng.choice(index, size=quota[g], replace=False) if quota[g] else []
        picked.extend(sorted(chosen))
        strata.extend([g] * quota[g])
    sample = frame.loc[picked].copy()
    sample["stratum"] = strata
    return sample


def confusion_pairs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Off-diagonal (true, predicted) pairs, most frequent first; ``rate`` = share of the true class."""
    support = frame["label"].value_counts()
    errors = frame[~frame["correct"]]
    counts = Counter(zip(errors["label"], errors["predicted"], strict=True))
    return [
        {"true": t, "predicted": p, "count": int(n), "rate": round(n / int(support[t]), 4)}
        for (t, p), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Expected calibration error over ``n_bins`` equal-width confidence bins, and the bins.

    ECE = sum over bins of (bin share) * |accuracy - mean confidence|; the bins are the
    reliability diagram's bars.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; confidence is >= 1/n_labels so bin 0's open end is moot.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins, ece, mce = [], 0.0, 0.0
    for i in range(n_bins):
        inside = which == i
        count = int(inside.sum())
        conf = float(confidence[inside].mean()) if count else None
        acc = float(correct[inside].mean()) if count else None
        if count:
            gap = abs(acc - conf)
            ece += count / max(len(confidence), 1) * gap
            mce = max(mce, gap)
        bins.append(
            {
                "lower": round(float(edges[i]), 4),
                "upper": round(float(edges[i + 1]), 4),
                "count": count,
                "confidence": None if conf is None else round(conf, 4),
                "accuracy": None if acc is None else round(acc, 4),
            }
        )
    return {"ece": round(ece, 4), "mce": round(mce, 4), "n_bins": n_bins, "bins": bins}


def confidence_threshold(
    confidence: np.ndarray, correct: np.ndarray, target_accuracy: float
) -> dict[str, Any]:
    """The lowest confidence ``t`` such that predictions with confidence >= t reach the target.

    Maximises coverage at the target accuracy (selective prediction). When no threshold reaches
    it, ``value`` is 1.0 and coverage 0: nothing is reliable enough.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    n = len(confidence)
    order = np.argsort(-confidence, kind="stable")
    conf_sorted, ok_sorted = confidence[order], correct[order]
    cum_ok = np.cumsum(ok_sorted)
    value, kept = 1.0, 0
    for m in range(n, 0, -1):  # largest coverage first; only cut between distinct confidences
        if m < n and conf_sorted[m] == conf_sorted[m - 1]:
            continue
        if cum_ok[m - 1] / m >= target_accuracy:
            value, kept = float(conf_sorted[m - 1]), m
            break
    above = correct[confidence >= value] if kept else np.array([], dtype=bool)
    below = correct[confidence < value] if kept else correct
    return {
        "value": round(value, 4),
        "target_accuracy": float(target_accuracy),
        "coverage": round(kept / n, 4) if n else 0.0,
        "accuracy_above": round(float(above.mean()), 4) if above.size else None,
        "accuracy_below": round(float(below.mean()), 4) if below.size else None,
        "n_below": int(below.size),
    }


def target_classes(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Classes with F1 below the macro-F1, worst first, with a sampling weight in [1, 3]. A class
    with no validation row (support 0) has no F1 to judge and is never a target."""
    macro = float(metrics["macro_f1"])
    out = []
    for label, m in sorted(metrics["per_class"].items(), key=lambda kv: kv[1]["f1"]):
        if m["f1"] < macro and m.get("support", 1) > 0:
            weight = 3.0 if m["f1"] <= 0 else min(3.0, max(1.0, macro / m["f1"]))
            out.append({"label": label, **m, "weight": round(weight, 3)})
    return out


def _content_words(text: str) -> set[str]:
    return {w.text.lower() for w in split_words(text) if is_content(w.text)}


# Over 80 lines on purpose: one counting pass over the explained errors, then the ranking.
def token_patterns(
    records: Sequence[Mapping[str, Any]],
    method: str,
    frame: pd.DataFrame,
    top_n: int = 25,
    min_errors: int = 2,
) -> list[dict[str, Any]]:
    """Words that carry the explained misclassifications, most attribution mass first.

    For each misclassified sentence in ``records`` (explanation records with ``label``), the
    ``method``'s attributions are scaled to sum(|a|) = 1 and each content word's positive share
    (support for the wrong predicted class) is added to its ``error_attribution``; ``errors`` is
    the number of such sentences where it pushed the wrong way, ``correct`` the number of correctly
    classified explained sentences containing it. ``val_sentences``/``val_error_rate``/``lift``
    describe the whole validation split: how many sentences contain the word, their error rate,
    and that rate over the overall one. Kept: content words (no punctuation, no
    :data:`STOP_WORDS`) pushing at least ``min_errors`` errors whose
    validation error rate exceeds the overall one by at least one binomial standard error
    (``sqrt(e (1 - e) / val_sentences)``, ``e`` the overall error rate).
    """
    mass: dict[str, float] = defaultdict(float)
    errors: Counter = Counter()
    correct: Counter = Counter()
    pairs: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        words = [w.lower() for w in r["words"]]
        if r["label"] == r["predicted"]:
            for w in set(words):
                if is_content(w):
                    correct[w] += 1
            continue
        a = np.asarray(r["attributions"][method], dtype=np.float64)
        total = np.abs(a).sum()
        if total <= 0:
            continue
        pushed = set()
        for w, v in zip(words, a / total, strict=True):
            if v > 0 and is_content(w) and w not in STOP_WORDS:
                mass[w] += float(v)
                pushed.add(w)
        for w in pushed:
            errors[w] += 1
            pairs[w][(r["label"], r["predicted"])] += 1
    candidates = [w for w in mass if errors[w] >= min_errors]
    # Validation-wide statistics: sentences containing the word, and how often they are wrong.
    overall_error = float((~frame["correct"]).mean()) if len(frame) else 0.0
    present: dict[str, list[bool]] = {w: [] for w in candidates}
    for words, ok in zip(map(_content_words, frame["text"]), frame["correct"], strict=True):
        for w in words & present.keys():
            present[w].append(bool(ok))

    def error_rate(w: str) -> float:
        return 1.0 - float(np.mean(present[w])) if present[w] else 0.0

    # Only words whose validation sentences go wrong clearly more often than the average one
    # (by at least one binomial standard error): a word most sentences have ("the", "a") picks
    # up attribution in errors without being associated with them.
    def associated(w: str) -> bool:
        n = len(present[w])
        spread = math.sqrt(overall_error * (1 - overall_error) / n) if n else math.inf
        return error_rate(w) - overall_error >= max(spread, 1e-12)

    chosen = [w for w in candidates if associated(w)]
    chosen.sort(key=lambda w: (-mass[w], w))
    chosen = chosen[:top_n]
    out = []
    for w in chosen:
        rate = error_rate(w)
        out.append(
            {
                "token": w,
                "error_attribution": round(mass[w], 4),
                "errors": int(errors[w]),
                "correct": int(correct[w]),
                "pairs": [
                    {"true": t, "predicted": p, "count": int(n)}
                    for (t, p), n in sorted(pairs[w].items(), key=lambda kv: (-kv[1], kv[0]))
                ],
                "val_sentences": len(present[w]),
                "val_error_rate": round(rate, 4),
                "lift": round(rate / overall_error, 3) if overall_error > 0 else 0.0,
            }
        )
    return out


def _example(row: pd.Series, labels: Sequence[str]) -> dict[str, Any]:
    return {
        "text": row["text"],
        "label": row["label"],
        "predicted": row["predicted"],
        "confidence": round(float(row["confidence"]), 4),
        "probabilities": {label: round(float(row[f"p_{label}"]), 4) for label in labels},
    }


def recommendations(
    frame: pd.DataFrame,
    records: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    *,
    model: str,
    backend: str,
    token_method: str,
    target_accuracy: float = 0.95,
    n_bins: int = 10,
    top_tokens: int = 25,
    min_token_errors: int = 2,
    max_examples: int = 25,
) -> dict[str, Any]:
    """The recommendations document (see the module docstring and the JSON schema)."""
    metrics = classification_metrics(frame["label"].tolist(), frame["predicted"].tolist(), labels)
    worst = frame[~frame["correct"]].sort_values("confidence", ascending=False, kind="stable")
    unsure = frame.sort_values("confidence", ascending=True, kind="stable")
    return {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "backend": backend,
        "split": "val",
        "n": int(len(frame)),
        "labels": list(labels),
        "metrics": {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "per_class": metrics["per_class"],
        },
        "target_classes": target_classes(metrics),
        "confusions": confusion_pairs(frame),
        "confidence_threshold": confidence_threshold(
            frame["confidence"].to_numpy(), frame["correct"].to_numpy(), target_accuracy
        ),
        "calibration": calibration(
            frame["confidence"].to_numpy(), frame["correct"].to_numpy(), n_bins
        ),
        "token_method": token_method,
        "token_patterns": token_patterns(
            records, token_method, frame, top_n=top_tokens, min_errors=min_token_errors
        ),
        "misclassified": [_example(r, labels) for _, r in worst.head(max_examples).iterrows()],
        "low_confidence": [
            {**_example(r, labels), "correct": bool(r["correct"])}
            for _, r in unsure.head(max_examples).iterrows()
        ],
    }


# --- schema ------------


def load_schema() -> dict[str, Any]:
    """The JSON schema of the recommendations file (shipped in this package)."""
    text = resources.files("finslm.explain").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


class SchemaError(FinslmError, ValueError):
    """A document does not match the schema; the message gives the JSON path."""


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def check_schema(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], path: str = "$"):
    """Validate ``value`` against the JSON-schema subset our schema uses.

    Keywords: ``$ref`` (local ``#/$defs/...``), ``type`` (one or a list), ``enum``, ``required``,
    ``properties``, ``additionalProperties`` (bool or schema), ``items``, ``minItems``,
    ``minimum``, ``maximum``, ``minLength``. Raises :class:`SchemaError` at the first mismatch.
    (``jsonschema`` is not a dependency; this keeps the check honest without it.)
    """
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise SchemaError(f"unsupported $ref {ref!r}")
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is_type(value, t) for t in types):
            raise SchemaError(f"{path}: expected {' or '.join(types)}, got {value!r:.80}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{path}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        raise SchemaError(f"{path}: shorter than {schema['minLength']} characters")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise SchemaError(f"{path}: missing required key {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                check_schema(item, props[key], root, f"{path}.{key}")
            elif extra is False:
                raise SchemaError(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                check_schema(item, extra, root, f"{path}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise SchemaError(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                check_schema(item, schema["items"], root, f"{path}[{i}]")


def validate_recommendations(doc: Mapping[str, Any]) -> None:
    """Raise :class:`SchemaError` unless ``doc`` matches ``recommendations.schema.json``."""
    schema = load_schema()
    check_schema(doc, schema, schema)
    unknown = {c["label"] for c in doc["target_classes"]} - set(doc["labels"])
    unknown |= {c[k] for c in doc["confusions"] for k in ("true", "predicted")} - set(doc["labels"])
    if unknown:
        raise SchemaError(f"$: labels {sorted(unknown)} are not in $.labels")
