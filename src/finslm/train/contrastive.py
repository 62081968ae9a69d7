"""A SetFit-style contrastive stage: shape the encoder's sentence space before the head trains.

SetFit (Tunstall et al. 2022) first fine-tunes a sentence encoder contrastively — same-label
sentences close, different labels apart — and only then fits a classifier. Here the
contrastive step is the supervised contrastive loss over each batch (every same-label pair of
the batch is a positive; Khosla et al. 2020), which needs no pair sampling, on the vectors the
classification head will read (``models.<m>.pooling``). Afterwards
:func:`finslm.train.transformer.train_transformer` fine-tunes head and encoder as usual.

Only the encoder trains here (the head is not in the loss); the classifier stays as initialised.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger(__name__)


def contrastive_stage(model, dataset, collator, cfg, seed: int) -> dict[str, Any]:
    """Train ``model``'s encoder for ``cfg.contrastive_epochs`` epochs of SupCon; in place.

    ``dataset`` yields tokenised items with ``labels`` (class ids, or ``agreement_targets``
    rows whose argmax is the class). Batches of ``cfg.batch_size``, shuffled with ``seed``;
    AdamW at ``cfg.contrastive_lr`` with linear warm-up (``cfg.warmup_ratio``) and decay;
    gradients clipped to norm 1. Returns ``{seconds, loss_per_epoch}``.
    """
    from tqdm.auto import tqdm

    from finslm.train.heads import sentence_vectors
    from finslm.train.losses import supcon_loss
    from finslm.train.optim import EncoderStageLoop

    encoder = model.base_model
    loop = EncoderStageLoop(
        dataset,
        collator,
        encoder.parameters(),
        cfg.contrastive_lr,
        cfg,
        cfg.contrastive_epochs,
        seed,
    )
    device = next(model.parameters()).device
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    quiet = not sys.stderr.isatty()
    with tqdm(total=loop.total, desc="contrastive stage", disable=quiet) as bar:
        for epoch in range(cfg.contrastive_epochs):
            epoch_loss = 0.0
            for batch in loop.loader:
                labels = batch.pop("labels").to(device)
                if labels.dim() == 2:  # agreement targets: distribution + weight columns
                    labels = labels[:, :-1].argmax(dim=1)
                batch = {k: v.to(device) for k, v in batch.items()}
                hidden = encoder(**batch).last_hidden_state  # (batch, seq, hidden)
                vectors = sentence_vectors(hidden, batch["attention_mask"], cfg.pooling)
                epoch_loss += loop.step(supcon_loss(vectors, labels, cfg.supcon_temperature))
                bar.update(1)
            losses.append(round(epoch_loss / max(len(loop), 1), 4))
            log.info(
                "contrastive epoch %d/%d: loss %.4f", epoch + 1, cfg.contrastive_epochs, losses[-1]
            )
    loop.close()
    return {"seconds": round(time.perf_counter() - start, 1), "loss_per_epoch": losses}
