"""``finetune.*`` params: defaults, validation naming the key, derived models for export."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from finslm.config import ConfigError, FinetuneConfig, load_export_config, load_finetune_config


def write(tmp_path, params: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def base(**finetune) -> dict:
    return {"models": {"m": {"kind": "transformer"}, "b": {"kind": "tfidf"}}, "finetune": {"model": "m", **finetune}}  # fmt: skip


def test_repo_params_load():
    cfg = load_finetune_config("params.yaml")  # the embedded sample: the quick profile applies
    raw = yaml.safe_load(Path("params.yaml").read_text())
    assert cfg.model == "minilm" and cfg.seeds == raw["quick"]["finetune"]["seeds"]
    assert raw["finetune"]["seeds"] == [42, 43, 44]  # the recipe real data runs
    assert cfg.augment is False  # augmentation is opt-in
    assert "minilm-targeted" in load_export_config("params.yaml").models


def test_defaults(tmp_path):
    cfg = load_finetune_config(write(tmp_path, base()))
    assert cfg == FinetuneConfig(model="m")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"seeds": []}, "finetune.seeds: got []; must be a non-empty list of integers"),
        ({"seeds": [1, 1]}, "finetune.seeds: got [1, 1]; must be a list without repeats"),
        ({"folds": 1}, "finetune.folds: got 1; must be >= 2"),
        ({"focus_flags": ["noisy"]}, "finetune.focus_flags: got 'noisy'; must be one of"),
        ({"augment_method": "mixup"}, "allowed values: synonyms, token_dropout"),
        ({"augment": "yes"}, "finetune.augment: expected true or false"),
        ({"lr": 0}, "finetune.lr: got 0.0; must be > 0"),
        ({"max_hard_share": 1.5}, "finetune.max_hard_share: got 1.5; must be between 0 and 1"),
        ({"consolidation_lr_scale": 0}, "finetune.consolidation_lr_scale"),
        ({"epochs": 3}, "finetune: unknown key(s) epochs; did you mean mine_epochs"),
        ({"model": "b"}, "finetune.model: 'b' has kind 'tfidf'"),
        ({"model": "x"}, "finetune.model: 'x' is not under models"),
    ],
)
def test_bad_values_name_the_key(tmp_path, patch, message):
    with pytest.raises(
        ConfigError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        load_finetune_config(write(tmp_path, base(**patch)))


def test_export_accepts_the_targeted_model_only_when_finetune_makes_it(tmp_path):
    params = base()
    params["export"] = {"models": ["m", "m-targeted"]}
    assert load_export_config(write(tmp_path, params)).models == ["m", "m-targeted"]
    del params["finetune"]
    with pytest.raises(ConfigError, match="'m-targeted' is not under models"):
        load_export_config(write(tmp_path, params))
