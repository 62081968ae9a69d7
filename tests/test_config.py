"""params.yaml validation: wrong keys and values fail early, naming the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from finslm.config import ConfigError, TfidfConfig, TransformerConfig, load_params


def write(tmp_path, params: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def base() -> dict:
    return {"data": {}, "models": {"m": {"kind": "transformer"}, "b": {"kind": "tfidf"}}}


def test_repo_params_load_with_documented_types():
    params = load_params("params.yaml")
    assert isinstance(params.models["minilm"], TransformerConfig)
    assert isinstance(params.models["tfidf"], TfidfConfig)
    assert params.data.test_size == pytest.approx(0.2)
    assert params.data.val_size == pytest.approx(0.1)


def test_defaults_fill_missing_keys(tmp_path):
    params = load_params(write(tmp_path, base()))
    assert params.models["m"].checkpoint == "packaged:all-MiniLM-L6-v2"
    assert params.train.seed == 42


@pytest.mark.parametrize(
    ("section", "patch", "message"),
    [
        ("m", {"lr": "fast"}, "models.m.lr: expected a number, got 'fast'"),
        ("m", {"epochs": 0}, "models.m.epochs: got 0; must be >= 1"),
        ("m", {"lr_schedule": "step"}, "allowed values: linear, cosine"),
        ("m", {"learning_rate": 1e-4}, "models.m: unknown key(s) learning_rate; known keys:"),
        ("m", {"class_weights": "yes"}, "expected true or false"),
        (
            "m",
            {"layer_lr_decay": 0.0},
            "models.m.layer_lr_decay: got 0.0; must be in (0, 1] (1 = off)",
        ),
        ("m", {"rdrop_alpha": -1.0}, "models.m.rdrop_alpha: got -1.0; must be >= 0 (0 = off)"),
        ("b", {"class_weight": "auto"}, "allowed values: balanced, none"),
    ],
)
def test_bad_model_values_name_key_and_fix(tmp_path, section, patch, message):
    params = base()
    params["models"][section].update(patch)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_params(write(tmp_path, params))


def test_unknown_kind_lists_kinds(tmp_path):
    params = base()
    params["models"]["m"]["kind"] = "svm"
    with pytest.raises(
        ConfigError, match="models.m.kind: got 'svm'; allowed values: transformer, tfidf"
    ):
        load_params(write(tmp_path, params))


def test_bad_split_share(tmp_path):
    params = base()
    params["data"]["test_size"] = 1.5
    with pytest.raises(ConfigError, match="data.test_size"):
        load_params(write(tmp_path, params))


def test_missing_file_says_where_to_run(tmp_path):
    with pytest.raises(ConfigError, match="run from the repository root"):
        load_params(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(path)


def test_misspelled_section_is_named(tmp_path):
    params = {**base(), "datta": {"seed": 1}}
    with pytest.raises(ConfigError, match=r"unknown section\(s\) datta; known sections: models"):
        load_params(write(tmp_path, params))


def test_one_params_object_holds_every_section():
    params = load_params("params.yaml")
    assert params.prune.output == "minilm-pruned"
    assert params.export.models[0] == "minilm"
    assert params.finetune.model in params.models
    # The optimiser block is shared: the same fields, validated the same way, everywhere.
    assert params.models["minilm"].early_stopping_patience >= 1
    assert params.prune.distill_settings().lr == params.prune.lr


@pytest.mark.parametrize(
    ("section", "patch", "message"),
    [
        (
            "export",
            {"int8_keep_fp32": [0, 1.5]},
            r"export.int8_keep_fp32\[1\]: expected int or str",
        ),
        ("explain", {"methods": "shap"}, "explain.methods: expected a list, got 'shap'"),
        ("finetune", {"seeds": [1, "a"]}, r"finetune.seeds\[1\]: expected an integer"),
        ("prune", {"weight_decay": -1}, "prune.weight_decay: got -1.0; must be >= 0"),
        ("prune", {"lr": 0}, "prune.lr: got 0.0; must be > 0"),
    ],
)
def test_list_union_and_shared_optimiser_fields_are_validated(tmp_path, section, patch, message):
    params = {**base(), "models": {"minilm": {"kind": "transformer"}}, section: patch}
    with pytest.raises(ConfigError, match=message):
        load_params(write(tmp_path, params))


def _quick_params(source: str, profile: str = "auto") -> dict:
    return {
        "data": {"source": source, "profile": profile},
        "models": {"minilm": {"kind": "transformer", "epochs": 6, "soup_size": 3}},
        "prune": {"epochs": 6},
        "quick": {"models": {"minilm": {"epochs": 2, "soup_size": 2}}, "prune": {"epochs": 1}},
    }


@pytest.mark.parametrize(
    ("source", "profile", "epochs", "prune_epochs"),
    [
        ("data/sample/sentences.csv", "auto", 2, 1),  # the embedded sample: quick
        ("./data/sample/sentences.csv", "auto", 2, 1),
        ("../shared/data/Sentences_50Agree.txt", "auto", 6, 6),  # any other data: as written
        ("data/sample/sentences.csv", "full", 6, 6),
        ("my.csv", "quick", 2, 1),
    ],
)
def test_quick_profile_follows_the_data(tmp_path, source, profile, epochs, prune_epochs):
    params = load_params(write(tmp_path, _quick_params(source, profile)))
    assert params.models["minilm"].epochs == epochs
    assert params.models["minilm"].soup_size == (2 if epochs == 2 else 3)
    assert params.models["minilm"].lr == pytest.approx(1e-4)  # untouched keys stay
    assert params.prune.epochs == prune_epochs


def test_quick_profile_naming_a_missing_model_is_an_error(tmp_path):
    params = _quick_params("data/sample/sentences.csv")
    params["quick"]["models"]["gone"] = {"epochs": 1}
    with pytest.raises(ConfigError, match="quick.models.gone: no model 'gone' under models"):
        load_params(write(tmp_path, params))


def test_repo_sample_runs_the_quick_profile_and_the_real_recipe_is_unchanged():
    raw = yaml.safe_load(Path("params.yaml").read_text())
    quick = load_params("params.yaml")
    assert quick.models["minilm"].soup_size == raw["quick"]["models"]["minilm"]["soup_size"]
    assert quick.models["minilm"].soup_size >= 2  # still a soup: the same code path
    assert quick.prune.soup_size >= 2 and len(quick.finetune.seeds) >= 2
    assert raw["models"]["minilm"]["soup_size"] == 3 and raw["models"]["minilm"]["epochs"] == 6
