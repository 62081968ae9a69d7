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


def test_max_chars_must_exceed_min_chars():
    from finslm.config import DataConfig

    with pytest.raises(ConfigError, match=r"max_chars.*> min_chars"):
        DataConfig(min_chars=10, max_chars=5)


def test_defaults_fill_missing_keys(tmp_path):
    params = load_params(write(tmp_path, base()))
    assert params.models["m"].checkpoint == "packaged:all-MiniLM-L6-v2"
    assert params.train.seed == 42


def test_errors_name_the_file_and_line_and_a_close_key(tmp_path):
    """A typo points the editor at its line and says which key was meant; a bad value in a
    section the loaders check apart (tune, benchmark) is located the same way."""
    from finslm.config import load_benchmark_config, load_tune_config

    path = tmp_path / "params.yaml"
    text = (
        "data: {}\n"
        "models:\n"
        "  m:\n"
        "    kind: transformer\n"
        "    lr_schedul: cosine\n"
        "benchmark:\n"
        "  repeats: 0\n"
    )
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_params(path)
    assert str(exc.value).startswith(f"{path}:5: models.m: unknown key(s) lr_schedul; ")
    assert "did you mean lr_schedule?" in str(exc.value)
    # tune.space checks its models: the typo in the model is reported as the model's.
    path.write_text(text + "tune:\n  space:\n    m:\n      lr: {low: 1.0e-5, high: 1.0e-4}\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5: models.m: unknown key"):
        load_tune_config(path)
    path.write_text(text.replace("    lr_schedul: cosine\n", ""))
    with pytest.raises(ConfigError, match=r"params.yaml:6: benchmark.repeats: got 0"):
        load_benchmark_config(path)
    # A key the file does not spell out (a default that fails a cross-check) names the file.
    path.write_text("data: {}\nmodels:\n  m: {kind: transformer}\nexport:\n  models: [x]\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5: export"):
        load_params(path)


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


def test_one_params_object_holds_every_section():
    params = load_params("params.yaml")
    assert params.prune.output == "minilm-pruned"
    assert params.export.models[0] == "minilm"
    assert params.finetune.model in params.models
    # The optimiser block is shared: the same fields, validated the same way, everywhere.
    assert params.models["minilm"].early_stopping_patience >= 1
    assert params.prune.distill_settings().lr == params.prune.lr


# --- issue #26: numbers as DVC writes them, and params that used to pass unchecked -------------


@pytest.mark.parametrize("written", ["5e-05", "2e-5", "3E-5", "1e+2", "+1.5e-3", "1.0e-4"])
def test_exponent_floats_without_a_dot_are_numbers(tmp_path, written):
    # `dvc exp run -S models.minilm.lr=5e-5` writes `lr: 5e-05` (YAML 1.2); PyYAML's 1.1
    # resolver read that as the string '5e-05' and every stage failed.
    path = tmp_path / "params.yaml"
    path.write_text(f"models:\n  m:\n    kind: transformer\n    lr: {written}\n")
    assert load_params(path).models["m"].lr == pytest.approx(float(written))


def test_yaml_load_keeps_ints_strings_and_versions():
    from finslm.config import yaml_load

    loaded = yaml_load("a: 10\nb: 1.5\nc: v1e5\nd: '5e-05'\ne: 1e5\nf: 0x10\n")
    assert loaded == {"a": 10, "b": 1.5, "c": "v1e5", "d": "5e-05", "e": 1e5, "f": 16}


def test_ablate_set_reads_exponent_as_number():
    from finslm.ablation import parse_overrides

    assert parse_overrides(["lr=5e-5"]) == {"lr": 5e-5}


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
    # One pruned student on the sample (the pruned soup is unit-tested); the real recipe: three.
    assert (
        quick.prune.soup_size == raw["quick"]["prune"]["soup_size"]
        and raw["prune"]["soup_size"] == 3
    )
    # One fine-tune seed on the sample (the ≤ 5 min first run); the real recipe keeps three.
    assert len(quick.finetune.seeds) >= 1 and raw["finetune"]["seeds"] == [42, 43, 44]
    assert raw["models"]["minilm"]["soup_size"] == 3 and raw["models"]["minilm"]["epochs"] == 6


@pytest.mark.parametrize(
    ("section", "patch", "message"),
    [
        (
            "models",
            {"b": {"kind": "tfidf", "max_iter": -1}},
            "models.b.max_iter: got -1; must be >= 1",
        ),  # fmt: skip
        ("models", {"b": {"kind": "tfidf", "min_df": 0}}, "models.b.min_df: got 0; must be >= 1"),
        ("models", {"b": {"kind": "tfidf", "min_df": -1}}, "models.b.min_df: got -1; must be >= 1"),
        ("data", {"seed": -1}, "data.seed: got -1; must be between 0 and 2**32 - 1"),
        ("data", {"seed": 2**32}, "data.seed: got 4294967296; must be between 0 and 2**32 - 1"),
        ("train", {"threads": -1}, "train.threads: got -1; must be >= 0"),
        ("train", {"seed": -5}, "train.seed: got -5; must be between 0 and 2**32 - 1"),
        # The bounds themselves (exclusive or inclusive as each message says).
        ("data", {"test_size": 0}, "data.test_size: got 0.0; must be between 0 and 1"),
        ("data", {"val_size": 1}, "data.val_size: got 1.0; must be between 0 and 1"),
        ("data", {"min_chars": 5, "max_chars": 5}, "data.max_chars: got 5; must be > min_chars"),
        # Every seed key, not only data's and train's (numpy would raise a traceback later).
        ("explain", {"seed": -1}, "explain.seed: got -1; must be between 0 and 2**32 - 1"),
        ("tune", {"seed": -1}, "tune.seed: got -1; must be between 0 and 2**32 - 1"),
        ("prune", {"seed": 2**32}, "prune.seed: got 4294967296; must be between 0 and 2**32"),
        ("finetune", {"seeds": [42, -1]}, "finetune.seeds: got -1; must be each between 0 and"),
        ("finetune", {"mining_seed": -2}, "finetune.mining_seed: got -2; must be between 0"),
    ],
)
def test_out_of_range_params_fail_in_one_line(tmp_path, section, patch, message):
    params = base()
    params.setdefault(section, {}).update(patch)
    with pytest.raises(ConfigError) as info:
        load_params(write(tmp_path, params))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_new_model_entry_without_a_kind_says_so(tmp_path):
    # -S ++models.new.lr=1e-4 adds an entry with no kind: say what is missing, not "got None".
    params = base()
    params["models"]["new"] = {"lr": 1e-4}
    with pytest.raises(ConfigError) as info:
        load_params(write(tmp_path, params))
    assert "models.new.kind: missing; every model entry names its kind" in str(info.value)
    assert "None" not in str(info.value)


def test_misspelled_section_is_an_error(tmp_path):
    params = base() | {"datta": {"seed": 1}}
    with pytest.raises(ConfigError, match="unknown section 'datta'; did you mean 'data'"):
        load_params(write(tmp_path, params))


@pytest.mark.parametrize("value", [None, 5, "sample"])
def test_null_section_does_not_fall_back_to_defaults(tmp_path, value):
    params = base() | {"data": value}
    with pytest.raises(ConfigError, match="section 'data' is .*not a mapping"):
        load_params(write(tmp_path, params))


def test_every_loader_reads_the_same_numbers(tmp_path):
    from finslm.config import load_export_config

    path = tmp_path / "params.yaml"
    path.write_text("models:\n  m:\n    kind: transformer\nexport:\n  models: [m]\n  atol: 1e-3\n")
    assert load_export_config(path).atol == pytest.approx(1e-3)


def test_reduce_range_is_global_or_per_model(tmp_path):
    from finslm.config import ExportConfig, build

    assert ExportConfig().reduce_range_for("minilm") is False
    every = build(ExportConfig, {"reduce_range": True}, "export")
    assert every.reduce_range_for("minilm") and every.for_model("mpnet").reduce_range is True
    some = build(ExportConfig, {"reduce_range": ["mpnet"]}, "export")
    assert some.reduce_range_for("mpnet") and not some.reduce_range_for("minilm")
    assert some.for_model("minilm").reduce_range is False
    for bad in (["mpnet", "mpnet"], [""], "mpnet"):
        with pytest.raises(ConfigError, match="reduce_range"):
            build(ExportConfig, {"reduce_range": bad}, "export")


def test_line_of_a_key_the_file_lacks_is_its_parent(tmp_path):
    from finslm.config import _line_of

    path = tmp_path / "params.yaml"
    path.write_text("data: {}\nmodels:\n  m:\n    kind: transformer\n")
    assert _line_of(path, ["models", "m", "lr"]) == 3


def _line(path: Path, text: str, after: str = "") -> int:
    """The first line of ``path`` that contains ``text`` below the first that contains ``after``."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if text in line)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("data:\n  seed: 1\nmodels:\n  b: {kind: tfidf}\ndata:\n  seed: 2\n", 5, "'data' (first at line 1)"),
        ("data:\n  seed: 1\n  seed: 2\nmodels:\n  b: {kind: tfidf}\n", 3, "'seed' (first at line 2)"),
    ],
)  # fmt: skip
def test_a_key_written_twice_is_an_error_naming_both_lines(tmp_path, text, line, message):
    # PyYAML keeps the last silently: a second data block would replace the first one's source.
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}:{line}:")
    assert f": not valid YAML: duplicate key {message}" in str(info.value)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  seed: 1\n   x: 2\nmodels: {b: {kind: tfidf}}\n")
    with pytest.raises(ConfigError, match=r"params.yaml:3:\d+: not valid YAML: mapping values"):
        load_params(path)


@pytest.mark.parametrize("source", ["data/sample/sentences.csv", "my.csv"])
def test_misspelled_quick_section_is_an_error_under_either_profile(tmp_path, source):
    params = _quick_params(source)
    params["quick"]["prnue"] = {"epochs": 1}
    path = write(tmp_path, params)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}:{_line(path, 'prnue')}: quick.prnue: not a params")
    assert "did you mean 'prune'?" in str(info.value)


@pytest.mark.parametrize("source", ["data/sample/sentences.csv", "my.csv"])
@pytest.mark.parametrize(
    ("override", "message"),
    [({"epochs": -2}, "epochs: got -2; must be >= 1"), ({"epohcs": 2}, "unknown key(s) epohcs")],
)
def test_a_bad_quick_value_is_reported_at_its_own_line(tmp_path, source, override, message):
    # On the sample the quick value is the one in force; on real data it is checked all the same.
    params = _quick_params(source)
    params["quick"]["models"]["minilm"] = override
    path = write(tmp_path, params)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    key = next(iter(override))
    assert str(info.value).startswith(
        f"{path}:{_line(path, key + ':', 'quick:')}: quick.models.minilm"
    )
    assert message in str(info.value)


def test_a_bad_full_recipe_value_fails_on_the_sample_too(tmp_path):
    # The quick profile replaces epochs on the sample, but real data would train with it.
    params = _quick_params("data/sample/sentences.csv")
    params["models"]["minilm"]["epochs"] = "six"
    path = write(tmp_path, params)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    text = str(info.value)
    assert text.startswith(f"{path}:{_line(path, 'six')}: models.minilm.epochs: expected an int")
    assert "in the full recipe" in text


def test_a_misspelled_prune_model_is_blamed_on_prune_not_export(tmp_path):
    params = base() | {"prune": {"model": "mm"}, "export": {"models": ["m", "mm-pruned"]}}
    with pytest.raises(ConfigError, match=r"prune.model: 'mm' is not under models"):
        load_params(write(tmp_path, params))


def test_the_backend_names_agree_across_config_predict_and_the_help():
    # Three hand-kept lists: a backend added to one and not the others would be refused by
    # params.yaml, or missing from --help.
    from finslm.cli_options import BACKENDS_HELP
    from finslm.config import BACKEND_NAMES
    from finslm.predict import BACKENDS

    assert set(BACKEND_NAMES) == set(BACKENDS)
    assert all(name in BACKENDS_HELP for name in BACKENDS)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"soup_size": 3}, r"models\.m\.soup_size: got 3; must be 1 with dendrites\.enabled"),
        ({"lora": {"r": 8}}, r"models\.m\.lora\.r: got 8; must be 0 with dendrites\.enabled"),
    ],
)
def test_levers_the_dendrite_loop_ignores_fail_at_load_naming_the_line(tmp_path, patch, message):
    params = base()
    params["models"]["m"].update({"dendrites": {"enabled": True}, **patch})
    path = write(tmp_path, params)
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: {message}"):
        load_params(path)
    params["models"]["m"]["dendrites"]["enabled"] = False
    load_params(write(tmp_path, params))  # the same levers without dendrites are fine


def test_an_entry_error_raised_below_the_loader_gets_the_name_and_the_line(tmp_path):
    """A check that needs the checkpoint (freeze_layers against its layer count) runs where the
    entry's name is unknown; the caller that knows it puts it in, with the line when it has the
    file the value came from."""
    from finslm.config import naming_entry
    from finslm.errors import ENTRY
    from finslm.models import ModelError

    params = base()
    params["models"]["m"]["freeze_layers"] = 9
    path = write(tmp_path, params)
    with pytest.raises(ModelError) as info, naming_entry("models.m", path):
        raise ModelError(f"{ENTRY}.freeze_layers: the checkpoint has only 2 layers")
    line = _line(path, "freeze_layers")
    expected = f"{path}:{line}: models.m.freeze_layers: the checkpoint has only 2 layers"
    assert str(info.value) == expected
    # No file (finslm ablate --set): the name alone. An error about no entry passes untouched.
    with (
        pytest.raises(ModelError, match=r"^models\.m\.pooling: not here$"),
        naming_entry("models.m"),
    ):
        raise ModelError(f"{ENTRY}.pooling: not here")
    with pytest.raises(ConfigError, match=r"^data\.seed: other$"), naming_entry("models.m", path):
        raise ConfigError("data.seed: other")


def test_quick_label_map_replaces_the_full_one():
    """The quick profile's label_map replaces the full recipe's; it is not merged key by key."""
    from finslm.config.reader import apply_profile

    raw = {
        "data": {"label_map": {"pos": "positive", "neg": "negative"}},
        "quick": {"data": {"label_map": {"up": "positive"}}},
    }
    merged = apply_profile(raw, force=True)
    assert merged["data"]["label_map"] == {"up": "positive"}


def test_a_boolean_is_not_an_integer_setting():
    """`epochs: true` is refused, not read as 1."""
    from finslm.config import ConfigError, TransformerConfig
    from finslm.config.base import build

    with pytest.raises(ConfigError, match=r"models.m.epochs: expected an integer, got True"):
        build(TransformerConfig, {"epochs": True}, "models.m")


def test_max_length_over_512_is_refused():
    """max_length runs up to 512."""
    from finslm.config import ConfigError, TransformerConfig
    from finslm.config.base import build

    build(TransformerConfig, {"max_length": 512}, "models.m")
    with pytest.raises(ConfigError, match=r"models.m.max_length: got 513; must be between 8"):
        build(TransformerConfig, {"max_length": 513}, "models.m")


def test_opset_over_23_is_refused():
    """The ONNX opset runs up to 23."""
    from finslm.config import ConfigError
    from finslm.config.export import ExportConfig

    ExportConfig(opset=23)
    with pytest.raises(ConfigError, match=r"export.opset: got 24; must be between 7 and 23"):
        ExportConfig(opset=24)
