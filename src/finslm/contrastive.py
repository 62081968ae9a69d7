"""A SetFit-style contrastive stage: shape the encoder's sentence space before the head trains.

SetFit (Tunstall et al. 2022) first fine-tunes a sentence encoder contrastively — same-label
sentences close, different labels apart — and only then fits a classifier. Here the
contrastive step is the supervised contrastive loss over each batch (every same-label pair of
the batch is a positive; Khosla et al. 2020), which needs no pair sampling, on the vectors the
classification head will read (``models.<m>.pooling``). Afterwards
:func:`finslm.training.train_transformer` fine-tunes head and encoder as usual.

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
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from finslm.heads import sentence_vectors
    from finslm.losses import supcon_loss

    encoder = model.base_model
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collator,
    )
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.contrastive_lr, weight_decay=cfg.weight_decay)
    total = cfg.contrastive_epochs * len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    device = next(model.parameters()).device
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    quiet = not sys.stderr.isatty()
    with tqdm(total=total, desc="contrastive stage", disable=quiet) as bar:
        for epoch in range(cfg.contrastive_epochs):
            epoch_loss = 0.0
            for batch in loader:
                labels = batch.pop("labels").to(device)
                if labels.dim() == 2:  # agreement targets: distribution + weight columns
                    labels = labels[:, :-1].argmax(dim=1)
                batch = {k: v.to(device) for k, v in batch.items()}
                hidden = encoder(**batch).last_hidden_state  # (batch, seq, hidden)
                vectors = sentence_vectors(hidden, batch["attention_mask"], cfg.pooling)
                loss = supcon_loss(vectors, labels, cfg.supcon_temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                epoch_loss += float(loss.detach())
                bar.update(1)
            losses.append(round(epoch_loss / max(len(loader), 1), 4))
            log.info(
                "contrastive epoch %d/%d: loss %.4f", epoch + 1, cfg.contrastive_epochs, losses[-1]
            )
    optimizer.zero_grad(set_to_none=True)
    return {"seconds": round(time.perf_counter() - start, 1), "loss_per_epoch": losses}
