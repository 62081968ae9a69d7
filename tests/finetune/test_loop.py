"""The fine-tune loop's prediction: rows in the caller's order, the model's mode restored."""

from __future__ import annotations

from types import SimpleNamespace


class _CharTokenizer:
    """One id per character; pads with 0 (just what TokenCache needs)."""

    def __call__(self, texts, truncation=True, max_length=64):
        return {"input_ids": [[ord(c) for c in t][:max_length] for t in texts]}

    def pad(self, encodings, return_tensors="pt"):
        import torch

        width = max(len(e["input_ids"]) for e in encodings)
        ids = [e["input_ids"] + [0] * (width - len(e["input_ids"])) for e in encodings]
        mask = [[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in encodings]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


def _length_model():
    """A model whose predicted class is the text's length modulo 3."""
    import torch

    class LengthModel(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            n = attention_mask.sum(-1)
            return SimpleNamespace(logits=10.0 * torch.nn.functional.one_hot(n % 3, 3).float())

    return LengthModel()


def test_fine_tune_probabilities_stay_with_their_texts():
    """Class probabilities during fine-tuning are returned in the caller's text order, even
    though texts are batched by length."""
    from finslm.finetune.loop import TokenCache, predict_proba

    texts = ["aaaa", "a", "aaa", "aa", "aaaaa"]
    proba = predict_proba(_length_model(), TokenCache(_CharTokenizer(), 64), texts, batch_size=2)
    assert proba.argmax(-1).tolist() == [len(t) % 3 for t in texts]


def test_fine_tune_evaluation_leaves_the_model_in_the_mode_it_found():
    """Predicting during fine-tuning restores the model's mode: a model in eval mode stays in
    eval mode (no dropout afterwards), a training one goes back to training."""
    from finslm.finetune.loop import TokenCache, predict_proba

    model, cache = _length_model(), TokenCache(_CharTokenizer(), 64)
    model.eval()
    predict_proba(model, cache, ["ab", "c"])
    assert model.training is False
    model.train()
    predict_proba(model, cache, ["ab", "c"])
    assert model.training is True
