"""Quantisation-aware fine-tuning for an every-layer dynamic INT8 graph (issue #28).

The INT8 export (``finslm.export``) is onnxruntime's *dynamic* quantisation of the optimised
graph: every encoder ``MatMul`` (Q/K/V inside ``QAttention``, the attention output, the FFN up-
and down-projections) runs with int8 weights, one symmetric scale per output channel (7-bit,
``[-64, 64]``, with ``reduce_range``), and uint8 activations whose scale and zero point are
taken from the tensor's own min and max on every call. Layers whose quantisation error flips a
label are kept fp32 today (``export.int8_keep_fp32``).

This module fine-tunes a copy of a trained classifier so that its *quantised* forward pass
reproduces the trained model's logits: the same weight and activation rounding is simulated in
PyTorch ("fake quantisation", gradients passed straight through the rounding), and the loss is
the mean squared difference between the fake-quantised copy's logits and the original model's
(self-distillation; no labels, so the copy learns to agree with the model it replaces, not to
fit the data again). Only training texts are used; the epoch kept is chosen on validation by
the INT8 graph's agreement with the original model (:func:`finslm.export.parity`), never on test.

    >>> history = qat_finetune(source, out_dir, train_texts, val_texts, QatSettings())

The result is an ordinary model folder (plain fp32 weights, ``finslm.json`` gains ``qat``)
whose every-layer INT8 export is the candidate; its fp32 graphs are not the deployable (they
would drift from the source by the fine-tune), so the export of a QAT copy compares every graph
with the *source* model.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from finslm.config import ExportConfig
from finslm.models import ModelError, read_meta, write_meta
from finslm.predict import TOKENIZER_FILES

# Linears that become INT8 MatMuls in the exported graph (BERT and MPNet naming): every encoder
# layer's, and the classifier head's (exported as a Gemm, which the quantiser rewrites to a
# MatMul and quantises: checked against the graph, tests/test_qat.py).
_QUANTISED = ("encoder.layer.", "classifier")


@dataclasses.dataclass
class QatSettings:
    """How the copy is fine-tuned (the defaults are the recipe validation preferred on PhraseBank
    50Agree; docs/speed.md, "Quantisation-aware fine-tuning")."""

    epochs: int = 2
    lr: float = 3e-6
    batch_size: int = 16
    # 7-bit weights (export.reduce_range): what the every-layer graph needs on CPUs without VNNI.
    reduce_range: bool = True
    # Weight of the per-layer token-state MSE beside the logit MSE (0 = logits only).
    hidden_weight: float = 1.0
    seed: int = 42
    threads: int = 0


def fake_quant_weight(
    w: torch.Tensor, reduce_range: bool, per_channel: bool = True
) -> torch.Tensor:
    """Symmetric int8 rounding of a Linear weight ``(out, in)``, one scale per output channel
    (or one for the tensor), as onnxruntime's ``quantize_dynamic(weight_type=QInt8)`` does;
    gradients pass straight through."""
    qmax = 64.0 if reduce_range else 127.0
    peak = w.detach().abs().amax(dim=1, keepdim=True) if per_channel else w.detach().abs().amax()
    scale = peak.clamp_min(1e-12) / qmax
    q = torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
    return w + (q - w).detach()


def fake_quant_activation(x: torch.Tensor) -> torch.Tensor:
    """Asymmetric uint8 rounding with the scale and zero point of the whole tensor, as
    ``DynamicQuantizeLinear`` computes them at run time (the range always includes 0)."""
    lo = torch.clamp(x.detach().min(), max=0.0)
    hi = torch.clamp(x.detach().max(), min=0.0)
    scale = ((hi - lo) / 255.0).clamp_min(1e-12)
    zero = torch.clamp(torch.round(-lo / scale), 0, 255)
    q = (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale
    return x + (q - x).detach()


class FakeQuantLinear(nn.Module):
    """A Linear whose input and weight are rounded as the dynamic INT8 graph rounds them."""

    def __init__(self, inner: nn.Linear, reduce_range: bool, per_channel: bool = True):
        super().__init__()
        self.inner = inner
        self.reduce_range = reduce_range
        self.per_channel = per_channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = fake_quant_weight(self.inner.weight, self.reduce_range, self.per_channel)
        return F.linear(fake_quant_activation(x), w, self.inner.bias)


class _FakeQuantTable(nn.Module):
    """Parametrisation of an embedding table or the embedding LayerNorm's weight or bias:
    asymmetric uint8 with one scale for the whole tensor, as onnxruntime quantises the inputs
    of ``EmbedLayerNormalization`` (``QEmbedLayerNormalization``)."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quant_activation(w)


def _embedding_tensors(model: nn.Module) -> list[tuple[nn.Module, str]]:
    found = []
    for name, module in model.named_modules():
        if ".embeddings." not in f".{name}.":
            continue
        if isinstance(module, nn.Embedding):
            found.append((module, "weight"))
        elif isinstance(module, nn.LayerNorm):
            found += [(module, "weight"), (module, "bias")]
    return found


def attach(model: nn.Module, reduce_range: bool, per_channel: bool = True) -> int:
    """Wrap every quantised Linear of ``model`` in place and parametrise its embedding tables;
    returns how many Linears were wrapped."""
    from torch.nn.utils import parametrize

    for module, tensor in _embedding_tensors(model):
        parametrize.register_parametrization(module, tensor, _FakeQuantTable())
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and any(p in name for p in _QUANTISED)
    ]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(
            model.get_submodule(parent_name),
            child,
            FakeQuantLinear(module, reduce_range, per_channel),
        )
    return len(targets)


def detach(model: nn.Module) -> None:
    """Undo :func:`attach`: the plain Linears and tables (fine-tuned fp32 weights) back."""
    from torch.nn.utils import parametrize

    for module, tensor in _embedding_tensors(model):
        if parametrize.is_parametrized(module, tensor):
            parametrize.remove_parametrizations(module, tensor, leave_parametrized=False)
    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, FakeQuantLinear)]
    for name, module in wrapped:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, module.inner)


def _batches(encoder, texts: list[str], batch_size: int, rng: np.random.Generator):
    """Shuffled batches of texts of similar length (less padding, so fewer wasted FLOPs and
    activation ranges closer to the unpadded ones the server sees)."""
    lengths = encoder.lengths(texts)
    order = np.argsort(lengths + rng.random(len(texts)), kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    return chunks


def qat_finetune(
    source: Path,
    out_dir: Path,
    train_texts: list[str],
    val_texts: list[str],
    settings: QatSettings,
    export_cfg: ExportConfig | None = None,
    log=print,
    exclude: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Fine-tune a copy of ``source`` under fake quantisation; save the epoch whose INT8 graph
    (every layer, or all but the nodes named in ``exclude``: the graph the caller will ship)
    agrees best with ``source`` on ``val_texts`` into ``out_dir``.

    Epoch 0 (the source's own weights, no fine-tune) is a candidate too, so QAT is kept only
    where validation says it helps. Returns one row per epoch (loss, seconds, validation
    agreement and |Δlogit| of the INT8 graph against the source).
    """
    from finslm.export import parity
    from finslm.predict import OnnxPredictor, TorchPredictor

    source, out_dir = Path(source), Path(out_dir)
    meta = read_meta(source)
    if meta.get("kind") != "transformer":
        raise ModelError(f"{source}: kind {meta.get('kind')!r}; QAT needs a transformer model")
    if not train_texts or not val_texts:
        raise ModelError("qat: needs training texts to fine-tune on and validation texts to choose")
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    cfg = export_cfg or ExportConfig()
    reference = TorchPredictor(source, meta)
    encoder = reference.encoder
    model = copy.deepcopy(reference.model).float()
    model.eval()  # dropout off: the copy must reproduce a deterministic function
    n = attach(model, settings.reduce_range, cfg.per_channel)
    if n == 0:
        raise ModelError(f"{source}: no encoder Linear layers to quantise (not BERT/MPNet-like?)")
    log(f"qat: {n} Linear layers fake-quantised ({'7' if settings.reduce_range else '8'}-bit)")
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
    # The learning rate decays linearly to 0 over the run. It must be small: the target is the
    # model itself, so every step away from it that the rounding does not pay for is a new error
    # (at 1e-5 and 2e-5 the training loss rose from the first epoch to the second).
    steps = settings.epochs * -(-len(train_texts) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: max(0.0, 1.0 - step / max(1, steps))
    )
    names = set(reference._input_names)
    history: list[dict[str, Any]] = []
    best: tuple[float, float, int] | None = None
    with tempfile.TemporaryDirectory(prefix="finslm-qat-") as tmp:
        work = Path(tmp)
        for epoch in range(settings.epochs + 1):
            start = time.perf_counter()
            loss_sum, seen = 0.0, 0
            if epoch > 0:
                for idx in _batches(encoder, train_texts, settings.batch_size, rng):
                    enc = encoder([train_texts[i] for i in idx])
                    feed = {k: torch.from_numpy(v) for k, v in enc.items() if k in names}
                    loss = _loss(model, reference.model, feed, settings.hidden_weight)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    schedule.step()
                    loss_sum += loss.item() * len(idx)
                    seen += len(idx)
            candidate = work / f"epoch{epoch}"
            _save_plain(model, reference, meta, source, candidate, epoch, settings)
            graph = work / f"epoch{epoch}.int8.onnx"
            int8_graph(
                candidate, work / f"epoch{epoch}", graph, cfg, settings.reduce_range, exclude
            )
            onnx = OnnxPredictor(candidate, read_meta(candidate), graph=graph)
            row = parity(reference, onnx, val_texts, cfg.batch_size)
            row = {
                "epoch": epoch,
                "train_mse": round(loss_sum / seen, 6) if seen else None,
                "seconds": round(time.perf_counter() - start, 1),
                "val_agreement": row["agreement"],
                "val_mean_abs_logit_diff": row["mean_abs_logit_diff"],
                "val_max_abs_logit_diff": row["max_abs_logit_diff"],
            }
            history.append(row)
            log(
                f"qat epoch {epoch}: train mse {row['train_mse']}, INT8 vs source on validation: "
                f"agreement {row['val_agreement']:.4f}, mean |Δlogit| "
                f"{row['val_mean_abs_logit_diff']:.4f} ({row['seconds']} s)"
            )
            key = (row["val_agreement"], -row["val_mean_abs_logit_diff"], -epoch)
            if best is None or key > best:
                best = key
                if out_dir.exists():
                    shutil.rmtree(out_dir)
                shutil.copytree(candidate, out_dir)
    chosen = -best[2]
    meta_out = read_meta(out_dir)
    meta_out["qat"] = {**meta_out["qat"], "chosen_epoch": chosen, "history": history}
    write_meta(out_dir, meta_out)
    log(f"qat: kept epoch {chosen} (validation agreement {best[0]:.4f}) -> {out_dir}")
    return history


def _loss(student, teacher, feed: dict[str, torch.Tensor], hidden_weight: float) -> torch.Tensor:
    """MSE between the rounded copy's logits and the model's, plus ``hidden_weight`` times the
    MSE of every layer's token states (real tokens only), as quantisation-aware distillation
    of BERT does (TernaryBERT, Zhang et al. 2020): 3 logits per sentence are a thin signal for
    37 rounded matrices, the token states of every layer a dense one."""
    want_hidden = hidden_weight > 0
    with torch.no_grad():
        target = teacher(**feed, output_hidden_states=want_hidden)
    out = student(**feed, output_hidden_states=want_hidden)
    loss = F.mse_loss(out.logits, target.logits)
    if want_hidden:
        mask = feed["attention_mask"].unsqueeze(-1).to(out.logits.dtype)
        per_layer = [
            (((h - t) ** 2) * mask).sum() / (mask.sum() * h.shape[-1])
            for h, t in zip(out.hidden_states, target.hidden_states, strict=True)
        ]
        loss = loss + hidden_weight * torch.stack(per_layer).mean()
    return loss


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s weights under the names of the un-wrapped model (fp32, not rounded)."""
    renames = (
        (".inner.", "."),
        (".parametrizations.weight.original", ".weight"),
        (".parametrizations.bias.original", ".bias"),
    )
    out = {}
    for name, tensor in model.state_dict().items():
        for old, new in renames:
            name = name.replace(old, new)
        out[name] = tensor
    return out


def _save_plain(model, reference, meta, source: Path, out: Path, epoch: int, settings) -> None:
    """The copy's weights in a plain (unwrapped) model, saved as a model folder like ``source``.
    (No deepcopy of the wrapped model: a parametrised module's class is shared by its copies.)"""
    plain = copy.deepcopy(reference.model)
    plain.load_state_dict(plain_state_dict(model), strict=True)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    plain.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    write_meta(
        out,
        {
            **meta,
            "qat": {
                "source": str(source),
                "epochs": settings.epochs,
                "lr": settings.lr,
                "reduce_range": settings.reduce_range,
                "hidden_weight": settings.hidden_weight,
                "epoch": epoch,
            },
        },
    )


def int8_graph(
    model_dir: Path,
    work: Path,
    dst: Path,
    cfg: ExportConfig,
    reduce_range: bool,
    exclude: list[str] | None = None,
) -> None:
    """The dynamic INT8 graph of ``model_dir`` as the export stage builds it (every layer, or
    all but the nodes named in ``exclude``), through fp32 and optimised graphs in ``work``."""
    from finslm.export import export_onnx, optimize_graph, quantize_graph

    work.mkdir(parents=True, exist_ok=True)
    fp32, opt = work / "model.onnx", work / "model.opt.onnx"
    export_onnx(model_dir, fp32, cfg.opset, cfg.exporter)
    source = fp32
    if cfg.optimize and cfg.quantize_from == "opt":
        optimize_graph(fp32, opt, model_dir)
        source = opt
    quantize_graph(source, dst, cfg.per_channel, reduce_range, exclude=exclude)
