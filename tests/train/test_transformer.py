"""Training: determinism, best-epoch restore, class weights, the baseline, the saved folder."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

from finslm.config import ConfigError, TfidfConfig, TransformerConfig
from finslm.models import TFIDF_FILE
from finslm.predict import load_predictor
from finslm.train.dataset import agreement_targets, class_weights
from finslm.train.losses import soft_target_loss
from finslm.train.tfidf import train_tfidf
from finslm.train.transformer import train_transformer
from tests.conftest import HELD_OUT, TRAINED_VAL, invented_sentences, load_stage, train_tiny


@pytest.fixture(scope="module")
def splits():
    df = pd.DataFrame(invented_sentences(8), columns=["text", "label"])
    val = df.iloc[::4]
    return df.drop(val.index), val


def test_class_weights_are_inverse_frequency_with_mean_one():
    labels = pd.Series(["neutral"] * 6 + ["positive"] * 3 + ["negative"] * 1)
    w = class_weights(labels)
    assert w[0] / w[1] == pytest.approx(6.0)  # negative is 6x rarer than neutral
    assert np.mean(w) == pytest.approx(1.0)


def test_tfidf_learns_templates_and_saves_a_predictor(tmp_path, splits):
    train, val = splits
    summary = train_tfidf(TfidfConfig(), train, val, tmp_path / "tfidf")
    assert summary["val"]["accuracy"] == 1.0
    predictor = load_predictor(tmp_path / "tfidf")
    assert predictor.predict(["Net profit rose 99 percent on strong demand."]) == ["positive"]
    assert summary["params"] == predictor.meta["params"] > 0


@pytest.mark.slow  # starts Python processes
def test_tfidf_model_file_is_byte_identical_across_processes(tmp_path, splits):
    # A memory address pickled with the vectorizer made every run a "new" model for DVC.
    train, val = splits
    train.to_parquet(tmp_path / "train.parquet")
    val.to_parquet(tmp_path / "val.parquet")
    code = (
        "import sys; from pathlib import Path; import pandas as pd; "
        "from finslm.config import TfidfConfig; from finslm.train.tfidf import train_tfidf; "
        "t = Path(sys.argv[1]); read = lambda s: pd.read_parquet(t / f'{s}.parquet'); "
        "train_tfidf(TfidfConfig(), read('train'), read('val'), t / sys.argv[2])"
    )
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path), name], check=True)
    first, second = (tmp_path / name / TFIDF_FILE for name in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()


def _tiny_cfg(checkpoint) -> TransformerConfig:
    return dataclasses.replace(
        TransformerConfig(),
        checkpoint=str(checkpoint),
        epochs=2,
        batch_size=8,
        lr=5e-4,
        max_length=32,
        early_stopping_patience=1,
    )


def test_the_train_stage_names_the_entry_and_line_of_a_checkpoint_check(
    tmp_path, splits, tiny_checkpoint, monkeypatch, capsys
):
    # freeze_layers is checked against the checkpoint's layer count (2 here) once it is loaded,
    # below the code that knows the entry's name: the stage's one-line error still names both.
    train, val = splits
    (tmp_path / "data/prepared").mkdir(parents=True)
    for name, frame in (("train", train), ("val", val)):
        frame.assign(line=range(len(frame))).to_parquet(tmp_path / f"data/prepared/{name}.parquet")
    model = {"kind": "transformer", "checkpoint": str(tiny_checkpoint), "freeze_layers": 5}
    params = {"data": {}, "models": {"mini": model}, "train": {"threads": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert load_stage("train").main(["mini"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    line = 1 + (tmp_path / "params.yaml").read_text().splitlines().index("    freeze_layers: 5")
    assert err.startswith(f"train@mini: error: params.yaml:{line}: models.mini.freeze_layers: ")
    assert "2 layers" in err
    assert not (tmp_path / "models/mini").exists()


@pytest.mark.slow  # trains a transformer
def test_transformer_training_is_deterministic_and_loadable(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = _tiny_cfg(tiny_checkpoint)
    a = train_transformer(cfg, train, val, tmp_path / "a", seed=7, threads=1)
    b = train_transformer(cfg, train, val, tmp_path / "b", seed=7, threads=1)
    wa = load_file(tmp_path / "a/model.safetensors")
    wb = load_file(tmp_path / "b/model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert a["val"] == b["val"]
    assert 1 <= a["best_epoch"] <= a["epochs"] <= 2
    predictor = load_predictor(tmp_path / "a")
    proba = predictor.predict_proba(val.text.tolist())
    assert proba.shape == (len(val), 3)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # The saved model is the restored best epoch: its val accuracy is what the summary reports.
    acc = np.mean([predictor.labels[i] for i in proba.argmax(axis=1)] == val.label.to_numpy())
    assert acc == pytest.approx(a["val"]["accuracy"], abs=1e-4)


def test_trained_tiny_model_learns_the_templates(trained_tiny):
    """The tiny BERT (mean-pooling head) learns the invented templates: >= 0.9 on validation
    and on held-out numbers it never saw; the saved model is the one the summary scores."""
    folder, summary = trained_tiny
    assert summary["val"]["accuracy"] >= 0.9
    predictor = load_predictor(folder)
    texts, gold = zip(*TRAINED_VAL, strict=True)
    val_acc = np.mean(np.array(predictor.predict(list(texts))) == np.array(gold))
    assert val_acc == pytest.approx(summary["val"]["accuracy"], abs=1e-6)
    texts, gold = zip(*HELD_OUT, strict=True)
    assert np.mean(np.array(predictor.predict(list(texts))) == np.array(gold)) >= 0.9


@pytest.mark.slow  # trains a transformer
def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path, tiny_checkpoint, monkeypatch):
    """Validation macro-F1 scripted to 0.5, 0.9, 0.4, ... with patience 1 and 5 epochs: training
    stops after epoch 3 (one epoch without improvement) and saves epoch 2's weights."""
    import torch

    import finslm.train.transformer as transformer

    models = []
    load, metrics_of = transformer.load_for_finetuning, transformer.trainer_metrics

    def keep_model(*args, **kwargs):
        tokenizer, model = load(*args, **kwargs)
        models.append(model)
        return tokenizer, model

    script = iter([0.5, 0.9, 0.4, 0.4, 0.4])
    at_eval = []  # the classifier weights at each epoch-end evaluation

    def scripted(eval_pred):
        metrics = metrics_of(eval_pred)
        at_eval.append(models[0].classifier.weight.detach().clone())
        return {**metrics, "macro_f1": next(script, 0.0)}

    monkeypatch.setattr(transformer, "load_for_finetuning", keep_model)
    monkeypatch.setattr(transformer, "trainer_metrics", scripted)
    summary = train_tiny(tiny_checkpoint, tmp_path / "m", epochs=5, early_stopping_patience=1)
    assert (summary["epochs"], summary["best_epoch"]) == (3, 2)
    # Four evaluations: the three epochs, then the restored model's (which is epoch 2's).
    assert len(at_eval) == 4
    saved = torch.from_numpy(load_file(tmp_path / "m/model.safetensors")["classifier.weight"])
    assert torch.equal(saved, at_eval[1])
    assert not torch.allclose(saved, at_eval[2])  # epoch 3 trained on: restoring mattered
    assert torch.equal(at_eval[3], at_eval[1])


@pytest.mark.slow  # trains a transformer
def test_class_weighted_loss_trains(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = dataclasses.replace(
        _tiny_cfg(tiny_checkpoint), class_weights=True, label_smoothing=0.1, epochs=1
    )
    summary = train_transformer(cfg, train, val, tmp_path / "w", seed=1, threads=1)
    assert summary["epochs"] == 1 and 0.0 <= summary["val"]["macro_f1"] <= 1.0


def _with_tiers(df: pd.DataFrame) -> pd.DataFrame:
    tiers = np.resize([1.0, 0.75, 0.66, 0.5], len(df))
    return df.assign(agreement=tiers)


def test_agreement_targets_soft_and_weight():
    df = pd.DataFrame(
        {"text": ["a", "b", "c"], "label": ["positive", "neutral", "negative"]}
    ).assign(agreement=[1.0, 0.5, 0.75])
    soft = agreement_targets(df, "soft")
    assert soft[:, :3].sum(axis=1) == pytest.approx([1.0, 1.0, 1.0])
    assert soft[0, :3].tolist() == [0.0, 0.0, 1.0]  # AllAgree: one-hot (LABELS order n/n/p)
    assert soft[1, :3] == pytest.approx([0.25, 0.5, 0.25])  # the 50% tier: half on gold
    assert soft[:, 3].tolist() == [1.0, 1.0, 1.0]
    weight = agreement_targets(df, "weight")
    assert weight[:, :3].max(axis=1).tolist() == [1.0, 1.0, 1.0]
    assert weight[:, 3].mean() == pytest.approx(1.0)
    assert weight[0, 3] / weight[1, 3] == pytest.approx(2.0)  # weight follows the tier


def test_agreement_targets_need_the_tiers():
    df = pd.DataFrame({"text": ["a"], "label": ["neutral"]})
    with pytest.raises(ConfigError, match="no annotator agreement.*PhraseBank folder"):
        agreement_targets(df, "soft")
    with pytest.raises(ConfigError, match="outside"):
        agreement_targets(df.assign(agreement=[1.5]), "soft")


def test_soft_target_loss_is_cross_entropy_for_one_hot_targets():
    import torch

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    hard = torch.tensor([0, 2])
    one_hot = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    ce = torch.nn.functional.cross_entropy(logits, hard, label_smoothing=0.1)
    assert soft_target_loss(logits, one_hot, smoothing=0.1) == pytest.approx(ce.item())
    # A sample with weight 0 does not count.
    masked = one_hot.clone()
    masked[1, 3] = 0.0
    assert soft_target_loss(logits, masked) == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:1], hard[:1]).item()
    )
    # Class weights: the weighted mean of cross-entropy, as torch's weight= computes it.
    w = torch.tensor([0.5, 1.0, 3.0])
    weighted = torch.nn.functional.cross_entropy(logits, hard, weight=w)
    assert soft_target_loss(logits, one_hot, class_weight=w) == pytest.approx(weighted.item())


@pytest.mark.slow  # trains a transformer
@pytest.mark.parametrize("mode", ["soft", "weight"])
def test_agreement_labels_train(tmp_path, splits, tiny_checkpoint, mode):
    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), agreement_labels=mode, epochs=1)
    summary = train_transformer(cfg, _with_tiers(train), val, tmp_path / mode, seed=1, threads=1)
    assert summary["epochs"] == 1 and 0.0 <= summary["val"]["macro_f1"] <= 1.0
    with pytest.raises(ConfigError, match="PhraseBank folder"):
        train_transformer(cfg, train, val, tmp_path / "none", seed=1, threads=1)


@pytest.mark.slow  # trains a transformer
def test_layer_lr_decay_keeps_lower_layers_near_the_checkpoint(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), epochs=1, weight_decay=0.0)
    start = load_file(next(tiny_checkpoint.glob("*.safetensors")))
    emb = next(k for k in start if k.endswith("word_embeddings.weight"))

    def moved(decay: float) -> tuple[float, float]:
        out = tmp_path / f"d{decay}"
        train_transformer(
            dataclasses.replace(cfg, layer_lr_decay=decay), train, val, out, seed=3, threads=1
        )
        w = load_file(out / "model.safetensors")
        key = next(k for k in w if k.endswith("word_embeddings.weight"))
        head = next(k for k in w if k.startswith("classifier") and k.endswith("weight"))
        return float(np.abs(w[key] - start[emb]).max()), float(np.abs(w[head]).mean())

    emb_plain, head_plain = moved(1.0)
    emb_decayed, head_decayed = moved(1e-4)
    assert emb_plain > 1e-4  # one learning rate: the embeddings move
    assert emb_decayed < emb_plain / 50  # decay**(L + 1): they barely do
    assert head_decayed > 0  # the head still trains at the full rate


@pytest.mark.slow  # trains a transformer
def test_rdrop_trains_differently_and_deterministically(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), epochs=1)
    runs = {}
    for name, alpha in (("plain", 0.0), ("rdrop", 1.0), ("rdrop2", 1.0)):
        out = tmp_path / name
        summary = train_transformer(
            dataclasses.replace(cfg, rdrop_alpha=alpha), train, val, out, seed=5, threads=1
        )
        assert 0.0 <= summary["val"]["macro_f1"] <= 1.0
        runs[name] = load_file(out / "model.safetensors")
    key = next(k for k in runs["plain"] if k.startswith("classifier") and k.endswith("weight"))
    assert not np.allclose(runs["plain"][key], runs["rdrop"][key])  # the R-Drop path ran
    assert np.array_equal(runs["rdrop"][key], runs["rdrop2"][key])


def _classifier_key(weights):
    return next(k for k in weights if k.startswith("classifier") and k.endswith("weight"))


@pytest.mark.slow  # trains a transformer
@pytest.mark.parametrize(
    "lever",
    [{"fgm_epsilon": 1.0}, {"supcon_weight": 0.5}, {"supcon_weight": 0.5, "rdrop_alpha": 1.0}],
)
def test_loss_levers_change_training_and_stay_deterministic(
    tmp_path, splits, tiny_checkpoint, lever
):
    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), epochs=1)
    runs = {}
    for name, levers in (("plain", {}), ("lever", lever), ("again", lever)):
        out = tmp_path / name
        summary = train_transformer(
            dataclasses.replace(cfg, **levers), train, val, out, seed=5, threads=1
        )
        assert 0.0 <= summary["val"]["macro_f1"] <= 1.0
        runs[name] = load_file(out / "model.safetensors")
    key = _classifier_key(runs["plain"])
    assert not np.allclose(runs["plain"][key], runs["lever"][key])  # the lever's path ran
    assert np.array_equal(runs["lever"][key], runs["again"][key])


@pytest.mark.slow  # trains a transformer
def test_freeze_embeddings_keeps_the_word_embeddings(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), epochs=1, freeze_embeddings=True)
    train_transformer(cfg, train, val, tmp_path / "frozen", seed=3, threads=1)
    start = load_file(next(tiny_checkpoint.glob("*.safetensors")))
    after = load_file(tmp_path / "frozen" / "model.safetensors")
    emb = lambda w: w[next(k for k in w if k.endswith("word_embeddings.weight"))]  # noqa: E731
    assert np.array_equal(emb(after), emb(start))
    layer = lambda w: w[next(k for k in w if "layer.0.attention.self.query.weight" in k)]  # noqa: E731
    assert not np.array_equal(layer(after), layer(start))  # the encoder itself trained


@pytest.mark.slow  # trains a transformer
def test_contrastive_stage_runs_before_fine_tuning_and_lowers_its_loss(
    tmp_path, splits, tiny_checkpoint
):
    train, val = splits
    cfg = dataclasses.replace(
        _tiny_cfg(tiny_checkpoint), epochs=1, contrastive_epochs=3, contrastive_lr=1e-3
    )
    summary = train_transformer(cfg, train, val, tmp_path / "c", seed=2, threads=1)
    losses = summary["contrastive"]["loss_per_epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert summary["epochs"] == 1 and 0.0 <= summary["val"]["macro_f1"] <= 1.0
    plain = train_transformer(
        dataclasses.replace(cfg, contrastive_epochs=0),
        train,
        val,
        tmp_path / "p",
        seed=2,
        threads=1,
    )
    assert "contrastive" not in plain


def test_fgm_with_frozen_embeddings_is_refused():
    from finslm.config import model_config

    with pytest.raises(ConfigError, match="fgm_epsilon.*freeze_embeddings"):
        model_config("m", {"kind": "transformer", "fgm_epsilon": 1.0, "freeze_embeddings": True})


@pytest.mark.slow  # trains a transformer
def test_swa_saves_the_mean_of_the_epoch_end_weights(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), epochs=3, early_stopping_patience=5)
    one = train_transformer(
        dataclasses.replace(cfg, epochs=1), train, val, tmp_path / "e1", seed=4, threads=1
    )
    assert "swa" not in one
    # Averaging from the last epoch on is that epoch's weights; from epoch 1 it is another model.
    last = train_transformer(
        dataclasses.replace(cfg, swa_from_epoch=3), train, val, tmp_path / "l", seed=4, threads=1
    )
    assert last["swa"] == {"from_epoch": 3, "epochs_averaged": 1}
    full = train_transformer(
        dataclasses.replace(cfg, swa_from_epoch=1), train, val, tmp_path / "f", seed=4, threads=1
    )
    assert full["swa"]["epochs_averaged"] == 3
    w_last, w_full = (load_file(tmp_path / d / "model.safetensors") for d in ("l", "f"))
    key = _classifier_key(w_last)
    assert not np.allclose(w_last[key], w_full[key])
    # The saved model is the averaged one: its val accuracy is what the summary reports.
    predictor = load_predictor(tmp_path / "f")
    proba = predictor.predict_proba(val.text.tolist())
    acc = np.mean(np.array(predictor.labels)[proba.argmax(axis=1)] == val.label.to_numpy())
    assert acc == pytest.approx(full["val"]["accuracy"], abs=1e-4)


def test_the_summary_reports_the_best_epoch_not_the_last():
    # Early stopping restores the best epoch; the summary must say which one it was.
    from types import SimpleNamespace

    from finslm.train.metrics import restored_summary

    history = [{"loss": 1.0, "epoch": 0.5}]
    history += [
        {"eval_macro_f1": f1, "eval_accuracy": f1, "epoch": float(e)}
        for e, f1 in ((1, 0.5), (2, 0.9), (3, 0.4))
    ]
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    trainer = SimpleNamespace(
        state=SimpleNamespace(log_history=history),
        predict=lambda ds: SimpleNamespace(predictions=logits, label_ids=np.array([0, 1])),
    )
    summary = restored_summary(trainer, None, seconds=30.0)
    assert (summary["epochs"], summary["best_epoch"]) == (3, 2)
    assert summary["val"]["accuracy"] == 1.0 and summary["seconds_per_epoch"] == 10.0


def test_texts_cut_at_max_length_are_counted_and_warned_about(tiny_checkpoint, caplog):
    """Training reads only a long text's first max_length tokens: counted per split, and one
    warning names the counts and the fix."""
    from transformers import AutoTokenizer

    from finslm.train.dataset import EncodedSplit, warn_truncated

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    short, long = "profit rose", " ".join(["profit rose sharply"] * 20)
    train = EncodedSplit(tokenizer, [short, long, long], ["positive"] * 3, max_length=16)
    val = EncodedSplit(tokenizer, [short], ["positive"], max_length=16)
    assert (train.truncated, val.truncated) == (2, 0)
    assert all(len(ids) <= 16 for ids in train.enc["input_ids"])
    with caplog.at_level("WARNING", logger="finslm"):
        warn_truncated({"train": train, "val": val}, 16)
    assert "2 of 3 train texts are longer than max_length 16 tokens" in caplog.text
    assert "val" not in caplog.text.split("tokens")[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="finslm"):
        warn_truncated({"val": val}, 16)
    assert caplog.text == ""


def test_class_weights_mean_one_over_present_classes():
    """With a class missing, the present classes' weights average 1 (the loss keeps its scale)."""
    from finslm.train.dataset import class_weights

    w = class_weights(pd.Series(["neutral"] * 2 + ["positive"] * 2))
    assert w == pytest.approx([0.0, 1.0, 1.0])


def test_agreement_tier_of_zero_is_refused():
    """An agreement tier of 0 or below is a ConfigError, not a zero or negative loss weight."""
    from finslm.config import ConfigError
    from finslm.train.dataset import agreement_targets

    for tier in (0.0, -0.5):
        df = pd.DataFrame({"text": ["a"], "label": ["positive"], "agreement": [tier]})
        with pytest.raises(ConfigError, match=r"agreement outside \(0, 1\]"):
            agreement_targets(df, "weight")
