"""PerforatedAI dendrites (``pip install --no-deps perforatedai==3.2.9``): its documented loop.

    model, summary = train_with_dendrites(model, tokenizer, train_df, val_df, Path("out"))
    stock = to_stock(model, load_for_finetuning(checkpoint, pooling="mean")[1])

The lever ``models.<m>.dendrites.enabled`` of ``train@<m>`` (:func:`fit_with_dendrites`, through
:func:`finslm.train.recipe.fit_transformer`). The network PerforatedAI returns keeps its
wrappers (``query.layer_array.<k>.weight`` instead of ``query.weight``), but each wrapper's
forward runs the last module of its ``layer_array`` alone, so :func:`to_stock` rebuilds it as
the stock model it is (identical logits, tested), and export, INT8, pruning and the benchmark
take it like any other. The training loop is the one the library documents, on CPU, offline and
without prompts:

1. settings on ``GPA.pc`` before anything else (:func:`configure`): every confirmation that
   would otherwise ask on a terminal or stop in ``pdb`` is given up front, the 3-D output
   dimensions of a transformer's linear layers, the head tracked rather than perforated;
2. ``UPA.perforate_model`` (the 3.x name of ``initialize_pai``) wraps every encoder ``Linear``;
3. the optimiser and scheduler are built through the tracker (``setup_optimizer``), which
   steps the scheduler itself;
4. after every validation pass ``add_validation_score(macro_f1, model)``: when it restructures
   (dendrites added, or the best network restored) the optimiser is rebuilt; when it says
   training is complete the loop stops;
5. ``UPA.prepare_final_model`` removes the training scaffolding.

PerforatedAI writes its graph (``PAI/PAI.png``) and score CSVs into ``out_dir/PAI``, beside
the torch-pickled snapshots (``best_model.pt``, ``switch_<n>.pt``) its tracker restores from.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DendriteSettings:
    """How the tracker adds dendrites (a fixed schedule, so a run's length is bounded)."""

    # Neuron-training epochs before each dendrite addition (PerforatedAI DOING_FIXED_SWITCH).
    switch_epochs: int = 2
    # Dendrite sets added at most; the tracker stops when one does not improve validation.
    max_dendrites: int = 1
    # Hard cap on epochs whatever the tracker says.
    max_epochs: int = 12
    # Tracker's ReduceLROnPlateau patience (epochs), on validation macro-F1.
    patience: int = 2
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 32
    max_length: int = 128
    # Initial scale of a new dendrite's weights (the library's default is 0.01).
    candidate_init: float = 0.1
    # False: the same loop and tracker without dendrites (``doing_pai=False``), the control.
    add_dendrites: bool = True


def _modules():
    """PerforatedAI's modules, or a ModelError naming the extra to install."""
    from finslm.models import ModelError

    try:
        from perforatedai import globals_perforatedai as GPA
        from perforatedai import utils_perforatedai as UPA
    except ImportError as exc:
        raise ModelError(
            f"dendrites need PerforatedAI ({exc}): pip install --no-deps perforatedai==3.2.9 "
            "(its torchvision requirement would replace the CPU torch; the loop never uses it)"
        ) from None
    return GPA, UPA


def configure(settings: DendriteSettings) -> None:
    """Set PerforatedAI's global config for a transformer classifier, non-interactively."""
    GPA, _ = _modules()
    pc = GPA.pc
    # Without these the library asks on a terminal (a RuntimeError without one) or stops in pdb.
    pc.set_configuration_confirmed(True)
    pc.set_unwrapped_modules_confirmed(True)
    pc.set_weight_decay_accepted(True)
    pc.set_testing_dendrite_capacity(False)  # True adds 3 test dendrites and stops
    pc.set_dashboard_events_enabled(False)  # no HTTP posts to a local dashboard
    pc.set_silent(True)
    pc.set_verbose(False)
    # Linear layers in an encoder see (batch, sequence, features); the head sees (batch,
    # features), so it is tracked (trained, scored) but not given dendrites.
    pc.set_output_dimensions([-1, -1, 0])
    pc.set_module_names_to_perforate(["Linear"])
    pc.set_module_ids_to_track([".classifier", ".bert.pooler.dense"])
    # Without dendrites a fixed switch would end training at the first one (measured: the
    # control stopped after switch_epochs), so the control runs max_epochs without switching.
    pc.set_switch_mode(pc.DOING_FIXED_SWITCH if settings.add_dendrites else pc.DOING_NO_SWITCH)
    pc.set_fixed_switch_num(settings.switch_epochs)
    pc.set_first_fixed_switch_num(settings.switch_epochs)
    pc.set_max_dendrites(settings.max_dendrites)
    pc.set_find_best_lr(False)  # one learning rate: comparable with a run without dendrites
    pc.set_candidate_weight_initialization_multiplier(settings.candidate_init)
    pc.set_device("cpu")


@contextlib.contextmanager
def _inside(folder: Path):
    """PerforatedAI writes ``./<save_name>/`` and refuses a save_name with a slash."""
    folder.mkdir(parents=True, exist_ok=True)
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _batches(tokenizer, texts, labels, size, max_length, generator=None):
    import torch

    from finslm.labels import LABEL2ID

    order = (
        torch.randperm(len(texts), generator=generator).tolist()
        if generator is not None
        else list(range(len(texts)))
    )
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        enc = tokenizer(
            [texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        yield enc, torch.tensor([LABEL2ID[labels[i]] for i in rows])


def _val_metrics(model, tokenizer, val_df, settings) -> dict[str, Any]:
    import numpy as np
    import torch

    from finslm.train.metrics import logit_metrics

    model.eval()
    scores, ids = [], []
    with torch.no_grad():
        for enc, y in _batches(
            tokenizer, val_df.text.tolist(), val_df.label.tolist(), 64, settings.max_length
        ):
            scores.append(model(**enc).logits.float().numpy())
            ids.append(y.numpy())
    return logit_metrics(np.concatenate(scores), np.concatenate(ids))


# Over 60 lines on purpose: the library's loop in one piece, as its README lays it out.
def train_with_dendrites(
    model, tokenizer, train_df, val_df, out_dir: Path, settings=DendriteSettings(), seed: int = 42
):
    """Train ``model`` with PerforatedAI's tracker; (the cleaned model, the training summary).

    The summary has the validation metrics of the returned model, each epoch's macro-F1 and
    parameter count, the epochs run, seconds, the parameters before and after (dendrites
    added) and how often the tracker restructured the network.
    """
    import torch
    from tqdm.auto import tqdm

    GPA, UPA = _modules()
    configure(settings)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    base_params = count(model)
    history, restructures = [], 0
    start = time.perf_counter()
    with _inside(Path(out_dir)):
        model = UPA.perforate_model(
            model,
            doing_pai=settings.add_dendrites,
            save_name="PAI",
            making_graphs=True,
            maximizing_score=True,
        )
        GPA.pai_tracker.set_optimizer(torch.optim.AdamW)
        GPA.pai_tracker.set_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau)
        optim_args = {"lr": settings.lr, "weight_decay": settings.weight_decay}
        sched_args = {"mode": "max", "patience": settings.patience}

        def optimiser(net):
            return GPA.pai_tracker.setup_optimizer(
                net, {"params": net.parameters(), **optim_args}, sched_args
            )

        optimizer, _ = optimiser(model)
        texts, labels = train_df.text.tolist(), train_df.label.tolist()
        for epoch in range(settings.max_epochs):
            model.train()
            batches = _batches(
                tokenizer, texts, labels, settings.batch_size, settings.max_length, generator
            )
            steps = -(-len(texts) // settings.batch_size)
            # One bar per epoch with its ETA (tqdm leaves it off when stderr is not a terminal).
            for enc, y in tqdm(
                batches, total=steps, desc=f"dendrites epoch {epoch + 1}", disable=None
            ):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(**enc).logits.float(), y)
                loss.backward()
                optimizer.step()
            val = _val_metrics(model, tokenizer, val_df, settings)
            GPA.pai_tracker.add_extra_score(float(loss.detach()), "train loss (last batch)")
            model, restructured, complete = GPA.pai_tracker.add_validation_score(
                val["macro_f1"], model
            )
            history.append(
                {
                    "epoch": epoch + 1,
                    "macro_f1": round(val["macro_f1"], 4),
                    "params": count(model),
                    "restructured": bool(restructured),
                }
            )
            if complete:
                break
            if restructured:
                restructures += 1
                optimizer, _ = optimiser(model)
        model = UPA.prepare_final_model(model)
    seconds = time.perf_counter() - start
    final = _val_metrics(model, tokenizer, val_df, settings)
    return model, {
        "val": final,
        "history": history,
        "epochs": len(history),
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(len(history), 1), 1),
        "params_before": base_params,
        "params_after": count(model),
        "params_added": count(model) - base_params,
        "restructures": restructures,
    }


def stock_state_dict(model, stock_keys) -> dict[str, Any]:
    """The cleaned network's weights under a stock model's parameter names.

    After ``prepare_final_model`` every perforated ``Linear`` is a PerforatedAI wrapper whose
    forward runs the last module of its ``layer_array`` alone (measured: scaling the others
    changes no logit; the stock network rebuilt from the last ones gives identical logits), so
    ``…query.layer_array.<last>.weight`` becomes ``…query.weight`` and the wrapper's bookkeeping
    buffers (``node_index``, ``num_cycles``, ``view_tuple``, …) are left out. Raises ModelError
    when a stock parameter has no counterpart.
    """
    from finslm.models import ModelError

    latest: dict[str, tuple[int, Any]] = {}
    plain: dict[str, Any] = {}
    for name, tensor in model.state_dict().items():
        if ".layer_array." in name:
            head, rest = name.split(".layer_array.", 1)
            index, leaf = rest.split(".", 1)
            key = f"{head}.{leaf}"
            if key not in latest or int(index) > latest[key][0]:
                latest[key] = (int(index), tensor)
        else:
            plain[name] = tensor
    merged = {**plain, **{k: t for k, (_, t) in latest.items()}}
    missing = [k for k in stock_keys if k not in merged]
    if missing:
        raise ModelError(
            f"the dendrite network has no weights for {len(missing)} stock parameters "
            f"(first: {missing[0]}); PerforatedAI's module layout is not the one finslm knows"
        )
    return {k: merged[k] for k in stock_keys}


def to_stock(model, stock):
    """``stock`` (a freshly built model of the source architecture) loaded with the cleaned
    dendrite network's weights: a plain transformers model that export, INT8, pruning and the
    benchmark take like any other."""
    stock.load_state_dict(stock_state_dict(model, list(stock.state_dict())), strict=True)
    return stock.eval()


def check_recipe(cfg) -> None:
    """ConfigError naming the first lever of ``cfg`` (a TransformerConfig) that the dendrite
    loop would ignore (``load_params`` reports the same with the file and line; this guards a
    config built in code)."""
    from finslm.config import checker
    from finslm.config.training import check_dendrite_recipe
    from finslm.errors import ENTRY

    check_dendrite_recipe(cfg, checker(cfg, ENTRY))


def fit_with_dendrites(
    cfg, train_df, val_df, out_dir: Path, seed: int = 42, threads: int = 0, graphs_dir=None
):
    """``train@<m>`` with ``cfg.dendrites.enabled``: PerforatedAI's loop on ``cfg.checkpoint``,
    the result saved to ``out_dir`` as a stock model; the training summary (the keys
    :func:`finslm.train.transformer.train_transformer` returns, plus ``dendrites``).
    PerforatedAI's graph (``PAI.png``) and score CSVs are copied to ``graphs_dir`` if given."""
    import shutil
    import tempfile

    from finslm.config import ConfigError
    from finslm.models import count_parameters, load_for_finetuning, save_classifier
    from finslm.train.determinism import set_determinism
    from finslm.train.distributed import dist_env
    from finslm.train.transformer import peak_rss_mb

    check_recipe(cfg)
    if dist_env()[2] > 1:
        raise ConfigError(
            "train.nproc: must be 1 with dendrites.enabled (PerforatedAI's tracker is one process)"
        )
    d = cfg.dendrites
    settings = DendriteSettings(
        switch_epochs=d.switch_epochs,
        max_dendrites=d.max_dendrites,
        max_epochs=cfg.epochs,
        patience=d.patience,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        candidate_init=d.candidate_init,
    )
    set_determinism(seed, threads)  # the new head's initial weights included
    load = lambda: load_for_finetuning(cfg.checkpoint, cfg.trust_remote_code, pooling=cfg.pooling)  # noqa: E731
    tokenizer, model = load()
    with tempfile.TemporaryDirectory(prefix="finslm-dendrites-") as tmp:
        trained, summary = train_with_dendrites(
            model, tokenizer, train_df, val_df, Path(tmp), settings, seed
        )
        stock = to_stock(trained, load()[1])
        save_classifier(stock, tokenizer, out_dir, cfg)
        pai = sorted(p for p in (Path(tmp) / "PAI").glob("*") if p.suffix in (".png", ".csv"))
        if graphs_dir is not None:
            Path(graphs_dir).mkdir(parents=True, exist_ok=True)
            for path in pai:
                shutil.copyfile(path, Path(graphs_dir) / path.name)
    return {
        "val": _val_metrics(stock, tokenizer, val_df, settings),
        "epochs": summary["epochs"],
        # The tracker returns the last epoch's network (not the best-scoring one's): the saved
        # model, and the val metrics above, are that epoch's.
        "best_epoch": summary["epochs"],
        "seconds": summary["seconds"],
        "seconds_per_epoch": summary["seconds_per_epoch"],
        "params": count_parameters(stock),
        "trainable_params": summary["params_before"],
        "peak_rss_mb": peak_rss_mb(),
        "world_size": 1,
        "dendrites": {
            "history": summary["history"],
            "restructures": summary["restructures"],
            "params_in_training": max([h["params"] for h in summary["history"]], default=0),
            "graphs": [p.name for p in pai],
        },
    }
