"""Which ingredients a soup keeps (fast: one-weight folders and a scorer, no transformer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from finslm.train.soup import WEIGHTS, make_soup

TARGET = 0.9  # the scorer's favourite weight: score = 1 - |w - TARGET|


def _ingredient(root: Path, name: str, w: float) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 1}))
    (folder / "finslm.json").write_text(json.dumps({"kind": "transformer"}))
    save_file({"w": np.array([w], dtype=np.float32)}, str(folder / WEIGHTS))
    return folder


def _weight(folder: Path) -> float:
    return float(load_file(folder / WEIGHTS)["w"][0])


def _score(folder: Path) -> dict[str, float]:
    score = 1.0 - abs(_weight(folder) - TARGET)
    return {"macro_f1": score, "accuracy": score}


@pytest.fixture
def ingredients(tmp_path):
    # a: 0.9 alone; b: 0.8 alone, but a + b = 0.85 scores 0.95; c ruins any soup it joins
    return [_ingredient(tmp_path, n, w) for n, w in (("b", 0.7), ("c", -5.0), ("a", 1.0))]


def test_greedy_keeps_what_helps_on_validation_and_leaves_out_what_hurts(ingredients, tmp_path):
    result = make_soup(ingredients, tmp_path / "greedy", scorer=_score)
    assert [Path(p).name for p in result["kept"]] == ["a", "b"]  # best first, c left out
    assert _weight(tmp_path / "greedy") == pytest.approx(0.85)
    assert result["val"]["macro_f1"] == pytest.approx(0.95)
    assert result["val"]["macro_f1"] >= max(v["macro_f1"] for v in result["ingredients"].values())


def test_uniform_averages_every_ingredient(ingredients, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="finslm"):
        result = make_soup(ingredients, tmp_path / "uniform", method="uniform", scorer=_score)
    assert len(result["kept"]) == 3
    assert _weight(tmp_path / "uniform") == pytest.approx((0.7 - 5.0 + 1.0) / 3)
    # c ruins it: the soup scores below its best ingredient, and the log says so with the fix.
    assert "below its best ingredient" in caplog.text and "soup_method: greedy" in caplog.text


def test_a_soup_at_least_as_good_as_its_best_ingredient_warns_nothing(tmp_path, caplog):
    good = [_ingredient(tmp_path, n, w) for n, w in (("a", 0.8), ("b", 1.0))]  # average 0.9
    with caplog.at_level("WARNING", logger="finslm"):
        result = make_soup(good, tmp_path / "uniform", method="uniform", scorer=_score)
    assert result["val"]["macro_f1"] == pytest.approx(1.0)
    assert "below its best ingredient" not in caplog.text


def _ingredients(tmp_path, names):
    from safetensors.numpy import save_file

    out = []
    for i, name in enumerate(names):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 2}))
        (folder / "finslm.json").write_text(json.dumps({"name": name, "kind": "transformer"}))
        save_file({"w": np.full(2, float(i), dtype=np.float32)}, str(folder / "model.safetensors"))
        out.append(folder)
    return out


def test_greedy_soup_keeps_an_ingredient_that_does_not_lower_the_score(tmp_path):
    """A greedy soup adds every ingredient whose averaging leaves the validation score unchanged
    ("only adds what does not lower the score")."""
    from finslm.train.soup import make_soup

    parts = _ingredients(tmp_path, ["seed1", "seed2", "seed3"])
    flat = lambda folder: {"macro_f1": 0.7, "accuracy": 0.8}  # noqa: E731
    result = make_soup(parts, tmp_path / "soup", method="greedy", scorer=flat)
    assert len(result["kept"]) == 3


def test_soup_starts_from_the_ingredient_that_wins_the_tie_break(tmp_path):
    """Ingredients that tie on the deciding metric (macro-F1) are ranked by the second one
    (accuracy): the greedy soup starts from the better of them."""
    from finslm.train.soup import make_soup

    a, b = _ingredients(tmp_path, ["seedA", "seedB"])
    table = {"seedA": (0.7, 0.6), "seedB": (0.7, 0.9)}

    def scorer(folder):
        f1, acc = table.get(Path(folder).name, (0.1, 0.1))  # averages score low
        return {"macro_f1": f1, "accuracy": acc}

    result = make_soup([a, b], tmp_path / "soup", method="greedy", scorer=scorer)
    assert result["kept"] == [str(b)]
