"""The first stage: params and the files they name checked before DVC looks at any stage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from finslm.config import ConfigError
from finslm.params_check import check, overridden


def _params(tmp_path: Path, **data) -> Path:
    (tmp_path / "d.csv").write_text("text,label\n")
    raw = {
        "data": {"source": "d.csv", **data},
        "models": {"m": {"kind": "tfidf", "C": 1.0}},
        "ner": {"source": "d.csv", "test_source": ""},
        "quick": {"models": {"m": {"C": 2.0}}, "train": {"threads": 1}},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_recipe_in_force_and_what_the_quick_profile_replaces(tmp_path):
    assert check(_params(tmp_path)) == {"profile": "full", "sample": False, "overridden": []}
    quick = check(_params(tmp_path, profile="quick"))
    assert quick["profile"] == "quick"
    assert quick["overridden"] == ["models.m.C: 1.0 -> 2.0", "train.threads: (default) -> 1"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"source": "nope.csv"}, r"data.source: 'nope.csv' does not exist \(relative to .*\.dvc/tmp/exps/"),
        ({"source": "hub:org/set"}, r"data.source: 'hub:org/set': dvc repro tracks .* finslm fetch"),
    ],
)  # fmt: skip
def test_a_source_dvc_cannot_hash_is_named_with_the_fix(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        check(_params(tmp_path, **edit))


def test_a_missing_ner_file_is_named(tmp_path):
    path = _params(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["ner"]["test_source"] = "gone.conll"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"ner.test_source: 'gone.conll' does not exist"):
        check(path)


def test_the_flattened_overlay_lists_lists_as_one_value():
    raw = {"finetune": {"seeds": [1, 2, 3]}, "quick": {"finetune": {"seeds": [1]}}}
    assert overridden(raw) == ["finetune.seeds: [1, 2, 3] -> [1]"]


def test_overridden_lists_only_values_the_quick_profile_changes():
    """A quick-profile value equal to the full recipe's is not reported as an override."""
    from finslm.params_check import overridden

    raw = {
        "models": {"m": {"C": 1.0, "ngram_max": 2}},
        "quick": {"models": {"m": {"C": 1.0, "ngram_max": 1}}},
    }
    assert overridden(raw) == ["models.m.ngram_max: 2 -> 1"]
