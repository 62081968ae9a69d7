"""Scale-out: the train stage under `torchrun --nproc_per_node=2` (DDP over gloo, on CPU).

Runs the real stage script on the tiny random BERT and invented sentences in a temporary folder
and checks that both ranks trained, rank 0 alone wrote the outputs, and everything exits cleanly.
Run as a script under torchrun, this file also checks the training sampler's shards (see
``_check_shards``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from finslm.config import ConfigError, TrainConfig, build
from finslm.predict import load_predictor
from finslm.train.distributed import per_device_batch
from tests.conftest import invented_sentences

ROOT = Path(__file__).resolve().parents[2]


def _torchrun(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 <args>``; fails with the log tail if rc != 0."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **env)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=3600
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return proc


def test_batch_size_is_global_and_must_split_evenly():
    assert per_device_batch(32, 1) == 32
    assert per_device_batch(32, 4) == 8
    with pytest.raises(ConfigError, match=r"over 3 processes \(try 30 or 33\)"):
        per_device_batch(32, 3)
    with pytest.raises(ConfigError, match=r"over 4 processes \(try 4\)"):
        per_device_batch(2, 4)


def test_train_nproc_defaults_to_one_process():
    assert build(TrainConfig, {}, "train").nproc == 1
    with pytest.raises(ConfigError, match=r"train\.nproc: got 0; must be >= 1"):
        build(TrainConfig, {"nproc": 0}, "train")


@pytest.mark.slow
def test_torchrun_two_processes_train_once_and_write_once(tmp_path, tiny_checkpoint):
    rows = pd.DataFrame(invented_sentences(8), columns=["text", "label"])
    rows["line"] = range(1, len(rows) + 1)
    val = rows.iloc[::4]
    (tmp_path / "data/prepared").mkdir(parents=True)
    rows.drop(val.index).to_parquet(tmp_path / "data/prepared/train.parquet")
    val.to_parquet(tmp_path / "data/prepared/val.parquet")
    # The trained tiny model's recipe (tests/conftest.py): it learns the templates.
    minilm = dict(kind="transformer", checkpoint=str(tiny_checkpoint), max_length=32, lr=1e-2)
    minilm.update(pooling="mean", warmup_ratio=0.0)
    # Global batch 8 = 4 per process. Class weights, label smoothing and early stopping ride
    # along: each must work under DDP too.
    minilm.update(epochs=3, batch_size=8, class_weights=True, label_smoothing=0.1)
    minilm.update(early_stopping_patience=1)
    params = {"models": {"minilm": minilm}, "train": {"seed": 3, "threads": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    scratch = tmp_path / "tmp"  # per-epoch checkpoints go here; they must be gone afterwards
    scratch.mkdir()
    proc = _torchrun([str(ROOT / "stages/train.py"), "minilm"], tmp_path, TMPDIR=str(scratch))
    log = proc.stdout + proc.stderr

    # Rank 0 alone wrote and logged; the world size proves rank 1 joined every all-reduce.
    assert [p.name for p in (tmp_path / "metrics/train").iterdir()] == ["minilm.json"]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["minilm"]
    assert log.count("minilm: val accuracy") == 1, log[-6000:]
    summary = json.loads((tmp_path / "metrics/train/minilm.json").read_text())
    assert summary["world_size"] == 2
    assert 1 <= summary["best_epoch"] <= summary["epochs"] <= 3
    assert summary["val"]["accuracy"] >= 0.9  # two processes train as well as one
    assert summary["val"]["n"] == len(val)  # every val sentence once, none padded in twice
    assert summary["params"] > 0
    curve = tmp_path / "plots/train/minilm/plots/metrics/val/macro_f1.tsv"
    assert len(curve.read_text().strip().splitlines()) == 1 + summary["epochs"]
    assert not list(scratch.glob("finslm-ckpt-*"))

    # The saved model is the restored best epoch and predicts what the summary reports.
    predictor = load_predictor(tmp_path / "models/minilm")
    proba = predictor.predict_proba(val.text.tolist())
    assert proba.shape == (len(val), 3)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    acc = np.mean([predictor.labels[i] for i in proba.argmax(axis=1)] == val.label.to_numpy())
    assert acc == pytest.approx(summary["val"]["accuracy"], abs=1e-4)


@pytest.mark.slow
def test_ranks_train_on_disjoint_shards_every_epoch(tmp_path):
    _torchrun([__file__, str(tmp_path)], ROOT, PYTHONPATH=str(ROOT))
    assert (tmp_path / "shards-ok").is_file()


def _check_shards(out: Path, n: int = 36, per_device: int = 4, epochs: int = 3) -> None:
    """Under torchrun: every epoch, the ranks' train batches together cover every sample once.

    Each rank's global RNG is pushed apart between epochs, as dropout does on batches of
    different lengths; the length-grouped sampler must still shuffle identically on every rank.
    The only repeats allowed are accelerate's even_batches padding (the last round of batches
    is topped up with the epoch's first samples). Without the fix, epoch 2 misses samples.
    """
    import torch
    import torch.distributed as dist
    from transformers import TrainingArguments

    from finslm.train.distributed import ddp_backend
    from finslm.train.transformer import _ddp_trainer

    args = TrainingArguments(
        output_dir=str(out / "unused"),
        per_device_train_batch_size=per_device,
        train_sampling_strategy="group_by_length",
        seed=3,
        data_seed=3,
        use_cpu=True,
        ddp_backend=ddp_backend(),
        remove_unused_columns=False,
        report_to="none",
    )
    data = [{"input_ids": [1] * (5 + i % 7), "idx": i} for i in range(n)]
    trainer = _ddp_trainer()(
        model=torch.nn.Linear(1, 1),
        args=args,
        train_dataset=data,
        data_collator=lambda batch: {"idx": torch.tensor([b["idx"] for b in batch])},
    )
    loader = trainer.get_train_dataloader()
    world, rank = dist.get_world_size(), dist.get_rank()
    n_batches = -(-n // per_device)
    padded = -(-n_batches // world) * world * per_device - n  # even_batches repeats
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        mine = [int(i) for batch in loader for i in batch["idx"]]
        every = [None] * world
        dist.all_gather_object(every, mine)
        flat = [i for shard in every for i in shard]
        assert sorted(set(flat)) == list(range(n)), f"epoch {epoch}: samples missed"
        assert len(flat) - n == padded, f"epoch {epoch}: {len(flat) - n} repeats, not {padded}"
        torch.rand(100 * (rank + 1))  # the ranks' global RNGs now differ
    dist.barrier()
    if rank == 0:
        (out / "shards-ok").touch()
    dist.destroy_process_group()


if __name__ == "__main__":
    _check_shards(Path(sys.argv[1]))
