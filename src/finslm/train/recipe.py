"""The whole transformer recipe of ``train@<model>``: optional TAPT, then one model or a soup.

    summary = fit_transformer(cfg, train_df, val_df, Path("models/minilm"), seed=42)

With ``cfg.tapt_epochs`` > 0 the checkpoint is first adapted by masked-LM on the training texts
(finslm/tapt.py), once, and every soup ingredient fine-tunes from that one adapted encoder:
weight averaging needs the ingredients to share their starting point (Wortsman et al. 2022),
and one adaptation costs a third of three. Used by the train stage and ``finslm ablate`` alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def fit_transformer(
    cfg,
    train_df,
    val_df,
    out_dir: Path,
    live=None,
    seed: int = 42,
    threads: int = 0,
) -> dict[str, Any]:
    """Train ``cfg`` (a TransformerConfig) and save it to ``out_dir``; the training summary.

    One model (:func:`finslm.train.transformer.train_transformer`) or, with ``soup_size`` > 1, a soup
    (:func:`finslm.train.soup.train_soup`), or with ``dendrites.enabled`` PerforatedAI's loop
    (:func:`finslm.train.dendrites.fit_with_dendrites`). With ``tapt_epochs`` > 0 the first two
    start from the adapted encoder and the summary gains ``tapt`` (seconds, MLM loss and masked-token accuracy per
    epoch). The adaptation uses ``seed``; under torchrun every rank adapts its own identical copy.
    """
    from finslm.train.soup import train_soup
    from finslm.train.transformer import train_transformer

    if cfg.dendrites.enabled:
        from finslm.train.dendrites import fit_with_dendrites

        graphs = Path(live.dir) / "pai" if live is not None else None
        return fit_with_dendrites(cfg, train_df, val_df, out_dir, seed, threads, graphs)
    fit = train_transformer if cfg.soup_size == 1 else train_soup
    if not cfg.tapt_epochs:
        return fit(cfg, train_df, val_df, out_dir, live=live, seed=seed, threads=threads)
    from finslm.train.tapt import adapt_checkpoint

    with tempfile.TemporaryDirectory(prefix="finslm-tapt-") as tmp:
        tapt = adapt_checkpoint(cfg, train_df, Path(tmp), seed, threads)
        summary = fit(
            cfg,
            train_df,
            val_df,
            out_dir,
            live=live,
            seed=seed,
            threads=threads,
            init_from=Path(tmp),
        )
    summary["tapt"] = tapt
    summary["seconds"] = round(summary["seconds"] + tapt["seconds"], 1)
    return summary
