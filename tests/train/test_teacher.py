"""Distillation as pipeline steps: cached teacher logits on the train split (aligned by text
hash, stale files refused), a student trained against them, the params checks, and the DAG
(the student depends on the teacher's model through its logits; val and test are never scored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from finslm.config import ConfigError, StudentConfig, TeacherConfig, load_distill_config
from finslm.models import ModelError
from finslm.train.teacher import (
    LOGIT_COLUMNS,
    aligned_logits,
    augmented_logits,
    fit_student,
    hidden_targets,
    score_train_split,
)
from tests.conftest import TRAINED_TRAIN, TRAINED_VAL

ROOT = Path(__file__).resolve().parents[2]


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "label"])


def test_teacher_logits_match_the_predictor_and_align_by_text(tiny_classifier, tmp_path):
    from finslm.predict import load_predictor

    train = _frame(TRAINED_TRAIN)
    table = score_train_split(tiny_classifier, train, TeacherConfig(batch_size=7, threads=1))
    assert len(table) == len(train)
    path = tmp_path / "tiny.parquet"
    table.to_parquet(path, index=False)
    logits = aligned_logits(path, train)
    assert logits.shape == (len(train), len(LOGIT_COLUMNS)) and logits.dtype == np.float32
    direct = load_predictor(tiny_classifier, "torch-fp32").logits(train.text.tolist()[:5])
    np.testing.assert_allclose(logits[:5], direct, atol=1e-5)  # batching does not change them


def test_stale_or_missing_logits_are_refused(tiny_classifier, tmp_path):
    train = _frame(TRAINED_TRAIN)
    path = tmp_path / "mpnet.parquet"
    with pytest.raises(ModelError, match=r"dvc repro teacher_logits@mpnet"):
        aligned_logits(path, train)
    score_train_split(tiny_classifier, train, TeacherConfig()).to_parquet(path, index=False)
    reordered = train.iloc[::-1].reset_index(drop=True)
    with pytest.raises(ModelError, match=r"other sentences.*teacher_logits@mpnet"):
        aligned_logits(path, reordered)


@pytest.mark.slow
def test_student_trains_against_teacher_logits(trained_tiny, tiny_checkpoint, tmp_path):
    from finslm.models import read_meta
    from finslm.predict import load_predictor

    train, val = _frame(TRAINED_TRAIN), _frame(TRAINED_VAL)
    teacher = TeacherConfig(threads=1, augment_copies=1)  # and learn its augmented copies
    table = score_train_split(trained_tiny[0], train, teacher)
    table.to_parquet(tmp_path / "t.parquet", index=False)
    cfg = StudentConfig(
        teacher="t", checkpoint=str(tiny_checkpoint), epochs=3, batch_size=8, lr=1e-2,
        warmup_ratio=0.0, max_length=32, threads=1, seed=0,
    )  # fmt: skip
    logits = aligned_logits(tmp_path / "t.parquet", train)
    copies = augmented_logits(tmp_path / "t.parquet", train)
    summary = fit_student(cfg, train, val, logits, tmp_path / "student", augmented=copies)
    assert summary["val"]["accuracy"] >= 0.8 and summary["teacher"] == "t"
    assert summary["augmented_rows"] == len(copies[0]) > len(train) // 2
    meta = read_meta(tmp_path / "student")
    assert (meta["teacher"], meta["kind"], meta["pooling"]) == ("t", "transformer", "mean")
    assert meta["augmented_rows"] == len(copies[0])
    assert len(load_predictor(tmp_path / "student").predict(val.text.tolist())) == len(val)


def test_teacher_hidden_states_are_cached_per_layer(tiny_classifier, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    train = _frame(TRAINED_TRAIN)
    cfg = TeacherConfig(batch_size=7, threads=1, hidden_layers=[0, 2])
    table = score_train_split(tiny_classifier, train, cfg)
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False)
    hidden = hidden_targets(path, train, [2, 0])  # any order, any subset of the cached layers
    assert hidden.shape == (len(train), 2, 32) and hidden.dtype == np.float32
    # The masked mean of each layer's token states, as the model gives them one sentence at a
    # time (no padding), whatever batch the sentence was scored in.
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier)
    for row in (0, 5):
        with torch.no_grad():
            states = model(**tokenizer(train.text[row], return_tensors="pt"),
                           output_hidden_states=True).hidden_states  # fmt: skip
        np.testing.assert_allclose(hidden[row, 0], states[2][0].mean(0).numpy(), atol=1e-4)
        np.testing.assert_allclose(hidden[row, 1], states[0][0].mean(0).numpy(), atol=1e-4)
    # logits unchanged by asking for the states
    plain = score_train_split(tiny_classifier, train, TeacherConfig(batch_size=7, threads=1))
    np.testing.assert_allclose(table[LOGIT_COLUMNS], plain[LOGIT_COLUMNS], atol=1e-5)
    with pytest.raises(
        ModelError, match=r"layer\(s\) \[1\] not cached \(cached: 0, 2\).*hidden_layers"
    ):
        hidden_targets(path, train, [1])
    with pytest.raises(ModelError, match=r"\[5\] asked for; the encoder has 2 layers"):
        score_train_split(tiny_classifier, train, TeacherConfig(hidden_layers=[5]))


def test_hidden_loss_is_one_minus_cosine_after_the_projection():
    import torch
    from torch import nn

    from finslm.train.distill import hidden_loss

    states = (torch.randn(4, 3, 5), torch.randn(4, 3, 5))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    pooled = (states[1] * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    identity = nn.Linear(5, 5, bias=False)
    nn.init.eye_(identity.weight)
    same = hidden_loss(states, mask, [1], [identity], pooled.unsqueeze(1))
    opposite = hidden_loss(states, mask, [1], [identity], -pooled.unsqueeze(1))
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    assert opposite.item() == pytest.approx(2.0, abs=1e-6)
    both = hidden_loss(
        states, mask, [1, 1], [identity, identity], torch.stack([pooled, -pooled], 1)
    )
    assert both.item() == pytest.approx(1.0, abs=1e-6)  # the mean over layer pairs
    # padding does not count: changing a masked token's state changes nothing
    moved = (states[0], states[1].clone())
    moved[1][2, 2] += 100.0
    again = hidden_loss(moved, mask, [1], [identity], pooled.unsqueeze(1))
    assert again.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_student_matches_teacher_layers_and_drops_the_projections(
    trained_tiny, tiny_checkpoint, tmp_path
):
    import torch
    from safetensors.torch import load_file

    from finslm.models import read_meta

    train, val = _frame(TRAINED_TRAIN), _frame(TRAINED_VAL)
    teacher = TeacherConfig(threads=1, hidden_layers=[1, 2])
    score_train_split(trained_tiny[0], train, teacher).to_parquet(tmp_path / "t.parquet")
    logits = aligned_logits(tmp_path / "t.parquet", train)
    hidden = hidden_targets(tmp_path / "t.parquet", train, [1, 2])
    cfg = StudentConfig(
        teacher="t", checkpoint=str(tiny_checkpoint), epochs=3, batch_size=8, lr=1e-2,
        warmup_ratio=0.0, max_length=32, threads=1, seed=0, hidden_weight=1.0,
        hidden_layers=[1, 2],
    )  # fmt: skip
    summary = fit_student(cfg, train, val, logits, tmp_path / "student", hidden=hidden)
    assert summary["val"]["accuracy"] >= 0.8
    trained = load_file(tmp_path / "student" / "model.safetensors")
    assert not [k for k in trained if "hidden_projections" in k]
    key = next(k for k in trained if "layer.0.attention.self.query.weight" in k)

    def retrained(name: str, **change) -> torch.Tensor:
        again = StudentConfig(**{**cfg.__dict__, **change})
        fit_student(again, train, val, logits, tmp_path / name, hidden=hidden)
        return load_file(tmp_path / name / "model.safetensors")[key]

    # The seed fixes the student (the new head's initial weights included) ...
    assert torch.equal(retrained("again"), trained[key])
    # ... and the term reaches the gradient: a near-zero weight (same projections, same random
    # draws) trains another encoder.
    assert (retrained("faint", hidden_weight=1e-9) - trained[key]).abs().max() > 1e-3
    meta = read_meta(tmp_path / "student")
    assert (meta["hidden_weight"], meta["hidden_layers"]) == (1.0, [1, 2])
    bad = StudentConfig(**{**cfg.__dict__, "hidden_layers": [1, 7]})
    with pytest.raises(ValueError, match=r"\[7\]: the student has 2 layers"):
        fit_student(bad, train, val, logits, tmp_path / "bad", hidden=hidden)


def _params(tmp_path, distill) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["distill"] = distill
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_distill_params_are_checked(tmp_path):
    assert load_distill_config(ROOT / "params.yaml").teachers == {}  # off by default
    ok = {"teachers": {"minilm": {}}, "students": {"minilm-distilled": {"teacher": "minilm"}}}
    cfg = load_distill_config(_params(tmp_path, ok))
    assert cfg.student("minilm-distilled").teacher == "minilm"
    bad = [
        ({"teachers": {"tfidf": {}}, "students": {}}, r"tfidf.*has kind 'tfidf'"),
        ({"teachers": {"mpnet": {}}, "students": {}}, r"'mpnet' is not under models"),
        ({"teachers": {"minilm": {}}, "students": {"s": {"teacher": "x"}}}, r"no teacher 'x'"),
        ({"teachers": {"minilm": {}}, "students": {"s": {}}}, r"students\.s\.teacher"),
        ({"teachers": {"minilm": {}}, "students": {"minilm": {"teacher": "minilm"}}}, r"both"),
        ({"teachers": {"minilm": {"batch": 3}}, "students": {}}, r"unknown key"),
        (
            {
                "teachers": {"minilm": {"hidden_layers": [3, 6]}},
                "students": {
                    "s": {"teacher": "minilm", "hidden_weight": 1.0, "hidden_layers": [6]}
                },
            },
            r"students\.s\.hidden_layers: 1 layer\(s\) \[6\], but .*minilm\.hidden_layers "
            r"caches 2 \[3, 6\]; give one student layer per cached teacher layer",
        ),  # fmt: skip
        (
            {
                "teachers": {"minilm": {}},
                "students": {"s": {"teacher": "minilm", "hidden_weight": 1}},
            },
            r"students\.s\.hidden_layers: got \[\]; must be one student layer",
        ),
        ({"teachers": {"minilm": {"hidden_layers": [2, 2]}}, "students": {}}, r"no repeats"),
    ]
    for distill, message in bad:
        with pytest.raises(ConfigError, match=message):
            load_distill_config(_params(tmp_path, distill))


def test_a_student_is_an_exportable_transformer(tmp_path):
    from finslm.config import load_export_config, read_params

    distill = {"teachers": {"minilm": {}}, "students": {"minilm-distilled": {"teacher": "minilm"}}}
    path = _params(tmp_path, distill)
    raw = read_params(path)
    raw["export"]["models"] = ["minilm", "minilm-distilled"]
    path.write_text(yaml.safe_dump(raw))
    assert load_export_config(path).models == ["minilm", "minilm-distilled"]


def test_dag_teacher_logits_read_train_only_and_students_depend_on_them():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    logits, student = stages["teacher_logits"], stages["distill"]
    assert logits["foreach"] == "${distill.teachers}"
    data = [d for d in logits["do"]["deps"] if not d.startswith(("src/", "stages/"))]
    # never val or test (metrics/profile.json: the recipe in force, every stage's input)
    assert data == ["metrics/profile.json", "models/${key}", "data/prepared/train.parquet"]
    assert logits["do"]["outs"] == ["data/teacher/${key}.parquet"]  # cached (DVC's default)
    assert "data/teacher/${item.teacher}.parquet" in student["do"]["deps"]
    assert "data/prepared/test.parquet" not in student["do"]["deps"]
    assert student["do"]["outs"] == ["models/${key}"]
