"""Task-adaptive pre-training (TAPT): masked-LM on the training texts before fine-tuning.

Gururangan et al. (2020, "Don't stop pretraining") continue a model's masked-language-model
pre-training on the unlabelled text of the task itself, then fine-tune as usual; Araci (2019)
did the same on the PhraseBank training split for FinBERT ("FinBERT-task"). all-MiniLM-L6-v2
was last trained as a sentence encoder on web pairs, not on financial news: a few epochs of MLM
on the training sentences let its token states adapt to the domain's words and numbers.

Only the training split's texts are read (no labels): validation and test sentences are never
seen, so the split protocol holds. The MLM head is a fresh BERT ``cls.predictions`` head (the
packaged checkpoint ships none) whose output matrix is tied to the word embeddings, so only
its 384x384 transform, LayerNorm and vocabulary bias are new. The loss is computed at the
masked positions only ((masked tokens, hidden) -> (masked tokens, vocab)), not the whole
sequence: the vocabulary projection is the costly part on a CPU. Afterwards the head is
dropped and :func:`finslm.train.transformer.train_transformer` fine-tunes the adapted encoder.

    models.minilm.tapt_epochs: 5   # 0 = off
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from finslm.errors import ENTRY
from finslm.models import ModelError, save_model
from finslm.train.heads import MODEL_TYPE

log = logging.getLogger(__name__)

# BERT-family encoders (the stock model type and finslm's mean-pooling head); others fail early.
_BERT_TYPES = ("bert", MODEL_TYPE)


class TaptError(ModelError):
    """The model cannot be pre-trained with a masked-LM head (not a BERT-family encoder).

    A ModelError, so ``train@<m>`` and ``finslm ablate`` print it as one line, no traceback."""


# Over 80 lines on purpose: one masked-LM training loop.
def tapt_stage(model, tokenizer, texts: list[str], cfg, seed: int) -> dict[str, Any]:
    """Train ``model``'s encoder on masked-LM over ``texts`` for ``cfg.tapt_epochs``; in place.

    Batches of ``cfg.batch_size``, shuffled with ``seed``; ``cfg.tapt_mask_prob`` of the tokens
    masked; AdamW at ``cfg.tapt_lr`` with linear warm-up (``cfg.warmup_ratio``) and decay;
    gradients clipped to norm 1. The classification head is untouched. Returns
    ``{seconds, loss_per_epoch, masked_accuracy_per_epoch, sentences}``.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import DataCollatorForLanguageModeling
    from transformers.models.bert.modeling_bert import BertOnlyMLMHead

    from finslm.train.optim import EncoderStageLoop

    if model.config.model_type not in _BERT_TYPES:
        raise TaptError(
            f"{ENTRY}.tapt_epochs: needs a BERT-family encoder (model_type "
            f"{' or '.join(_BERT_TYPES)}); this checkpoint is {model.config.model_type!r}: "
            "set it to 0"
        )
    if not texts:
        raise TaptError("tapt_epochs > 0 needs training texts; the training split is empty")
    encoder = model.base_model
    head = BertOnlyMLMHead(model.config)  # transform + vocabulary decoder
    head.apply(model._init_weights)  # the checkpoint's own init scheme (normal, std 0.02)
    # Tie the decoder to the word embeddings, as BERT's pre-training did: 11.7M fewer new weights.
    head.predictions.decoder.weight = encoder.get_input_embeddings().weight
    device = next(model.parameters()).device
    head.to(device)

    encoded = tokenizer(texts, truncation=True, max_length=cfg.max_length)
    features = [
        {"input_ids": ids, "attention_mask": mask}
        for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
    ]
    # Pads and masks as BERT did (of the chosen tokens 80% [MASK], 10% random, 10% kept); never
    # [CLS], [SEP] or padding. labels: the original id where masked, -100 elsewhere. Its masks
    # come from torch's global RNG, which the caller seeds.
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=True, mlm_probability=cfg.tapt_mask_prob
    )
    # The tied decoder weight is the embedding matrix: list each tensor once.
    params = {id(p): p for p in [*encoder.parameters(), *head.parameters()]}.values()
    loop = EncoderStageLoop(features, collator, params, cfg.tapt_lr, cfg, cfg.tapt_epochs, seed)
    model.train()
    head.train()
    losses: list[float] = []
    accuracies: list[float] = []
    start = time.perf_counter()
    quiet = not sys.stderr.isatty()
    with tqdm(total=loop.total, desc="task-adaptive MLM", disable=quiet) as bar:
        for epoch in range(cfg.tapt_epochs):
            epoch_loss, hits, masked = 0.0, 0, 0
            for batch in loop.loader:
                labels = batch.pop("labels").to(device)  # (batch, seq), -100 = not masked
                batch = {k: v.to(device) for k, v in batch.items()}
                hidden = encoder(**batch).last_hidden_state  # (batch, seq, hidden)
                at = labels != -100
                logits = head(hidden[at])  # (masked tokens, vocab)
                epoch_loss += loop.step(
                    torch.nn.functional.cross_entropy(logits.float(), labels[at])
                )
                hits += int((logits.detach().argmax(dim=-1) == labels[at]).sum())
                masked += int(at.sum())
                bar.update(1)
            losses.append(round(epoch_loss / max(len(loop), 1), 4))
            accuracies.append(round(hits / max(masked, 1), 4))
            log.info(
                "TAPT epoch %d/%d: MLM loss %.4f, masked-token accuracy %.3f",
                epoch + 1,
                cfg.tapt_epochs,
                losses[-1],
                accuracies[-1],
            )
    loop.close()
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "loss_per_epoch": losses,
        "masked_accuracy_per_epoch": accuracies,
        "sentences": len(texts),
    }


def save_encoder(model, tokenizer, out_dir) -> None:
    """Save ``model``'s encoder as a plain BERT checkpoint (config model_type ``bert``).

    Either classification head (``pooling`` cls or mean) then loads it as it loads the
    packaged checkpoint, with a fresh head of its own seed.
    """
    from transformers import BertConfig, BertModel

    encoder = model.base_model
    settings = {k: v for k, v in model.config.to_dict().items() if k != "model_type"}
    settings["architectures"] = ["BertModel"]
    plain = BertModel(BertConfig(**settings), add_pooling_layer=encoder.pooler is not None)
    plain.load_state_dict(encoder.state_dict())
    save_model(plain, tokenizer, out_dir)


def adapt_checkpoint(cfg, train_df, out_dir, seed: int, threads: int = 0) -> dict[str, Any]:
    """Load ``cfg.checkpoint``, run :func:`tapt_stage` on ``train_df``'s texts, save the encoder
    to ``out_dir`` (:func:`save_encoder`); return the stage's summary."""
    from finslm.models import load_for_finetuning
    from finslm.train.determinism import set_determinism

    set_determinism(seed, threads)
    tokenizer, model = load_for_finetuning(
        cfg.checkpoint, cfg.trust_remote_code, pooling=cfg.pooling
    )
    summary = tapt_stage(model, tokenizer, train_df.text.tolist(), cfg, seed)
    save_encoder(model, tokenizer, out_dir)
    return summary
