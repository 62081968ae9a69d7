"""``data``, ``models.<name>`` (transformer and TF-IDF entries, with their LoRA and dendrite
blocks) and ``train``: what ``prepare`` and ``train@<m>`` read; :class:`OptimConfig` is the
optimiser block every training loop shares."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from finslm.config.base import SEED_RULE, ConfigError, Need, Section, build, is_seed
from finslm.labels import LABELS


@dataclasses.dataclass(frozen=True)
class OptimConfig(Section):
    """The optimiser block every Trainer loop shares (train@<m>, pruning's distillation).

    AdamW at peak ``lr`` after a linear warm-up over ``warmup_ratio`` of the steps, then decay;
    ``batch_size`` is the global batch per optimiser step; validation macro-F1 after every
    epoch, stopping after ``early_stopping_patience`` epochs without a better one (the best
    epoch is restored). :func:`finslm.train.arguments.training_arguments` turns it into
    ``TrainingArguments``.
    """

    epochs: int = 6
    # The global batch per optimiser step: under torchrun each of N processes takes
    # batch_size / N (it must divide), so lr and warm-up mean the same for any N.
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    # Stop after this many epochs without a better validation macro-F1; the best is restored.
    early_stopping_patience: int = 3

    def check(self, need: Need) -> None:
        need(self.epochs >= 1, "epochs", ">= 1")
        need(self.batch_size >= 1, "batch_size", ">= 1")
        need(self.lr > 0, "lr", "> 0")
        need(self.weight_decay >= 0, "weight_decay", ">= 0")
        need(0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)")
        need(self.early_stopping_patience >= 1, "early_stopping_patience", ">= 1")


@dataclasses.dataclass(frozen=True)
class DataConfig(Section):
    """Where the raw text comes from and how it is cleaned and split (``data.*``)."""

    # A PhraseBank ``.txt`` (``sentence@label``), a PhraseBank folder, a .csv/.tsv/.parquet/.jsonl
    # file, or ``hub:<dataset id>`` (needs a network). Relative paths are from the repo root.
    source: str = "data/sample/sentences.csv"  # SAMPLE_SOURCE
    # How to read ``source``; ``auto`` decides by suffix (``.txt`` -> phrasebank) or ``hub:``.
    format: Literal["auto", "phrasebank", "csv", "tsv", "parquet", "jsonl", "hub"] = "auto"
    # Column names (JSON Lines: keys) for table formats (csv/tsv/parquet/jsonl/hub datasets).
    text_column: str = "text"
    label_column: str = "label"
    # Raw label -> one of negative/neutral/positive, for sources with other names or numbers,
    # e.g. ``{0: negative, 1: neutral, 2: positive}``. Empty: labels are already those names.
    label_map: dict[str, str] = dataclasses.field(default_factory=dict)
    # For the PhraseBank on the hub: which agreement file (sentences_50agree … sentences_allagree).
    hub_config: str = "sentences_50agree"
    hub_split: str = "train"
    # Texts shorter/longer than this (characters, after normalisation) are rejected and counted.
    min_chars: int = 3
    max_chars: int = 2000
    # Split protocol (FinBERT, Araci 2019): stratified test share, then validation share of the rest.
    test_size: float = 0.2
    val_size: float = 0.1
    seed: int = 42
    # Which recipe runs: ``full`` is the params as written; ``quick`` overlays the ``quick``
    # section (fewer seeds, epochs, folds: the same stages and code paths, minutes instead of
    # an hour); ``auto`` is quick on the embedded sample and full on any other source.
    profile: Literal["auto", "quick", "full"] = "auto"

    SECTION: ClassVar[str] = "data"

    def check(self, need: Need) -> None:
        need(0 < self.test_size < 1, "test_size", "between 0 and 1, both excluded")
        need(0 < self.val_size < 1, "val_size", "between 0 and 1, both excluded")
        need(self.min_chars >= 1, "min_chars", ">= 1")
        need(self.max_chars > self.min_chars, "max_chars", "> min_chars")
        need(is_seed(self.seed), "seed", SEED_RULE)
        need(
            self.text_column != self.label_column,
            "label_column",
            f"a column other than data.text_column ({self.text_column!r})",
        )
        for raw, target in self.label_map.items():
            need(
                target.strip().lower() in LABELS,
                "label_map",
                f"a mapping onto {', '.join(LABELS)} ({raw!r} maps to {target!r})",
            )


@dataclasses.dataclass(frozen=True)
class LoraConfig(Section):
    """LoRA adapters on the encoder (``models.<name>.lora``; Hu et al. 2021, via ``peft``).

    The encoder's weights stay frozen; each ``target_modules`` linear layer gains a trainable
    low-rank update (rank ``r``, scaled by ``alpha / r``, with ``dropout`` on its input); the
    classification head trains in full. Before saving, the updates are merged into the base
    weights, so the saved folder is a stock model (finslm/train/lora.py). ``r: 0`` = off.
    """

    r: int = 0
    alpha: float = 16.0
    dropout: float = 0.1
    # Names (last part) of the encoder's linear layers that get adapters. BERT-family:
    # query, key, value (attention), dense (every other projection, FFN included).
    target_modules: list[str] = dataclasses.field(default_factory=lambda: ["query", "value"])

    def check(self, need: Need) -> None:
        need(self.r >= 0, "r", ">= 0 (0 = off; 4 to 16 is usual)")
        need(self.alpha > 0, "alpha", "> 0 (the update is scaled by alpha / r)")
        need(0 <= self.dropout < 1, "dropout", "in [0, 1)")
        need(
            bool(self.target_modules)
            and all(isinstance(t, str) and t for t in self.target_modules),
            "target_modules",
            "a non-empty list of layer names, e.g. [query, value]",
        )


@dataclasses.dataclass(frozen=True)
class DendritesConfig(Section):
    """PerforatedAI dendrites (``models.<name>.dendrites``; finslm/train/dendrites.py), off by
    default; needs ``pip install --no-deps perforatedai==3.2.9`` (``make setup`` does it).

    Training runs PerforatedAI's own loop instead of the Trainer: AdamW at the model's ``lr``
    and ``weight_decay`` with the tracker's ReduceLROnPlateau on validation macro-F1 (no
    warm-up, no ``lr_schedule``), ``epochs`` at most, dendrites added after every
    ``switch_epochs`` while the tracker allows (``max_dendrites``). The network the tracker
    returns is rebuilt as the stock model it is (:func:`finslm.train.dendrites.to_stock`), so
    export, INT8, pruning and the benchmark take it like any other; its graph and score CSVs go
    to the train stage's plots folder (``pai/``).
    """

    enabled: bool = False
    switch_epochs: int = 1
    max_dendrites: int = 1
    patience: int = 2  # the tracker's ReduceLROnPlateau patience, epochs
    candidate_init: float = 0.1  # initial scale of a new dendrite's weights (library: 0.01)

    def check(self, need: Need) -> None:
        need(self.switch_epochs >= 1, "switch_epochs", ">= 1")
        need(self.max_dendrites >= 1, "max_dendrites", ">= 1")
        need(self.patience >= 0, "patience", ">= 0")
        need(self.candidate_init > 0, "candidate_init", "> 0")


@dataclasses.dataclass(frozen=True)
class TransformerConfig(OptimConfig):
    """A fine-tuned transformer (``models.<name>`` with ``kind: transformer``); the optimiser
    block (epochs, batch_size, lr, weight_decay, warmup_ratio, early_stopping_patience) is
    :class:`OptimConfig`'s."""

    kind: Literal["transformer"] = "transformer"
    # ``packaged:all-MiniLM-L6-v2`` (ships with pip, offline), a local folder, or a hub id.
    checkpoint: str = "packaged:all-MiniLM-L6-v2"
    # Sentence representation fed to the classifier: ``cls`` is the stock [CLS] + pooler head
    # (any architecture); ``mean`` averages token states, as all-MiniLM-L6-v2 was trained
    # (BERT-family checkpoints; see finslm/heads.py).
    pooling: Literal["cls", "mean"] = "cls"
    max_length: int = 128  # tokens; PhraseBank p99 is 68
    lr_schedule: Literal["linear", "cosine"] = "linear"
    label_smoothing: float = 0.0
    # Layer-wise learning-rate decay: the head trains at lr, encoder layer i (of L) at
    # lr * decay**(L - i), the embeddings at lr * decay**(L + 1). 1.0 = one learning rate.
    layer_lr_decay: float = 1.0
    # R-Drop: each batch runs twice (two dropout masks); the loss adds rdrop_alpha times the
    # symmetric KL between the two predictions. 0 = off; > 0 doubles the training compute.
    rdrop_alpha: float = 0.0
    # Adversarial training (FGM, Miyato et al. 2017): after each backward pass the word
    # embeddings move fgm_epsilon along their gradient (L2-normalised), the batch runs again
    # and that loss's gradient is added. 0 = off; > 0 doubles the training compute.
    fgm_epsilon: float = 0.0
    # Supervised contrastive loss (Khosla et al. 2020; for fine-tuning, Gunel et al. 2021) on
    # the pooled sentence vectors of each batch, added with this weight to the task loss.
    # Same-label sentences are pulled together, others pushed apart. 0 = off; costs ~nothing.
    supcon_weight: float = 0.0
    supcon_temperature: float = 0.1
    # A SetFit-style contrastive stage before the head is trained (Tunstall et al. 2022): this
    # many epochs of the supervised contrastive loss alone on the encoder, at contrastive_lr,
    # then the usual fine-tuning from the result. 0 = off.
    contrastive_epochs: int = 0
    contrastive_lr: float = 2e-5
    # Task-adaptive pre-training (Gururangan et al. 2020; finslm/tapt.py): this many epochs of
    # masked-LM on the training split's texts (never validation or test) at tapt_lr, masking
    # tapt_mask_prob of the tokens, before the head trains. BERT-family encoders. 0 = off.
    tapt_epochs: int = 0
    tapt_lr: float = 1e-4
    tapt_mask_prob: float = 0.15
    # Stochastic weight averaging along one run (Izmailov et al. 2018): the saved model is the
    # mean of the weights at the end of every epoch from this one on (1-based), instead of the
    # best epoch's. A soup of one trajectory, at no extra training cost. 0 = off.
    swa_from_epoch: int = 0
    # Model soup (finslm/soup.py): train this many models, seeds train.seed, train.seed + 1,
    # …, and save the average of their weights — one model's size and speed, most of an
    # ensemble's gain (Wortsman et al. 2022). soup_size times the training time. 1 = off.
    soup_size: int = 1
    # ``uniform`` averages every ingredient; ``greedy`` adds them best-first while validation
    # macro-F1 does not drop (its validation score is then optimistic: it was chosen there).
    soup_method: Literal["uniform", "greedy"] = "uniform"
    # Freeze the word-embedding matrix (11.7M of MiniLM's 22.7M parameters): fewer weights
    # to overfit a small labelled set, and a cheaper optimiser step.
    freeze_embeddings: bool = False
    # Freeze the embeddings and the lowest ``freeze_layers`` encoder layers: backward stops
    # below the first trainable layer and AdamW skips them, so a frozen lower half of the
    # 12-layer MPNet teacher took 0.43x the seconds per step of full fine-tuning (PhraseBank
    # batches of 32, one thread; docs/models.md#the-mpnet-teacher). 0 = off.
    freeze_layers: int = 0
    # PhraseBank annotator agreement, when data.source is the PhraseBank folder (each sentence
    # gets its tier: 0.5, 0.66, 0.75 or 1.0). ``weight``: loss weight proportional to the tier;
    # ``soft``: the target puts the tier's share on the gold label and spreads the rest evenly
    # over the others (so an AllAgree sentence keeps a one-hot target). ``off``: plain labels.
    agreement_labels: Literal["off", "weight", "soft"] = "off"
    # Weight the loss by inverse class frequency (train split), for skewed data.
    class_weights: bool = False
    # Allow a hub checkpoint to run its own Python code. Off: it is a code-execution risk.
    trust_remote_code: bool = False
    # LoRA adapters instead of full fine-tuning (LoraConfig; r: 0 = off), merged before saving.
    lora: LoraConfig = dataclasses.field(default_factory=LoraConfig)
    # PerforatedAI dendrites (DendritesConfig; enabled: false = off): its own training loop.
    dendrites: DendritesConfig = dataclasses.field(default_factory=DendritesConfig)

    def check(self, need: Need) -> None:
        super().check(need)
        need(8 <= self.max_length <= 512, "max_length", "between 8 and 512")
        need(0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)")
        need(0 < self.layer_lr_decay <= 1, "layer_lr_decay", "in (0, 1] (1 = off)")
        need(self.rdrop_alpha >= 0, "rdrop_alpha", ">= 0 (0 = off)")
        need(self.fgm_epsilon >= 0, "fgm_epsilon", ">= 0 (0 = off)")
        need(
            not (self.fgm_epsilon and self.freeze_embeddings),
            "fgm_epsilon",
            "0 with freeze_embeddings: true (FGM perturbs along the embeddings' gradient)",
        )
        need(self.freeze_layers >= 0, "freeze_layers", ">= 0 (0 = off)")
        need(
            not (self.fgm_epsilon and self.freeze_layers),
            "fgm_epsilon",
            "0 with freeze_layers > 0 (FGM perturbs along the embeddings' gradient)",
        )
        need(self.supcon_weight >= 0, "supcon_weight", ">= 0 (0 = off)")
        need(self.supcon_temperature > 0, "supcon_temperature", "> 0")
        need(self.contrastive_epochs >= 0, "contrastive_epochs", ">= 0 (0 = off)")
        need(self.contrastive_lr > 0, "contrastive_lr", "> 0")
        need(self.tapt_epochs >= 0, "tapt_epochs", ">= 0 (0 = off)")
        need(self.tapt_lr > 0, "tapt_lr", "> 0")
        need(0 < self.tapt_mask_prob < 1, "tapt_mask_prob", "between 0 and 1 (BERT used 0.15)")
        need(
            0 <= self.swa_from_epoch <= self.epochs,
            "swa_from_epoch",
            "between 0 (off) and epochs",
        )
        need(self.soup_size >= 1, "soup_size", ">= 1 (1 = one model, no soup)")
        need(
            not (self.lora.r and self.fgm_epsilon),
            "fgm_epsilon",
            "0 with lora.r > 0 (LoRA freezes the embeddings FGM perturbs along)",
        )
        if self.dendrites.enabled:  # at load time, with the file and line, not mid-training
            check_dendrite_recipe(self, need)


def check_dendrite_recipe(cfg: TransformerConfig, need: Need) -> None:
    """``need`` fails on the first lever of ``cfg`` that PerforatedAI's loop would ignore
    (:data:`OFF_WITH_DENDRITES`)."""
    for key, off in OFF_WITH_DENDRITES:
        value = cfg.lora.r if key == "lora.r" else getattr(cfg, key)
        what = f"{off!r} with dendrites.enabled (PerforatedAI's loop trains one plain network)"
        need(value == off, key, what, value)


# Recipe levers that PerforatedAI's loop does not run, with their "off" values: a model entry
# with dendrites enabled must leave them off rather than have them silently dropped; LoRA too
# (each method is measured alone first).
OFF_WITH_DENDRITES = (
    ("soup_size", 1),
    ("tapt_epochs", 0),
    ("contrastive_epochs", 0),
    ("swa_from_epoch", 0),
    ("label_smoothing", 0.0),
    ("layer_lr_decay", 1.0),
    ("rdrop_alpha", 0.0),
    ("fgm_epsilon", 0.0),
    ("supcon_weight", 0.0),
    ("class_weights", False),
    ("freeze_embeddings", False),
    ("freeze_layers", 0),
    ("agreement_labels", "off"),
    ("lora.r", 0),
)


@dataclasses.dataclass(frozen=True)
class TfidfConfig(Section):
    """The TF-IDF + logistic-regression baseline (``models.<name>`` with ``kind: tfidf``)."""

    kind: Literal["tfidf"] = "tfidf"
    ngram_max: int = 2  # word n-grams 1..ngram_max
    min_df: int = 1
    sublinear_tf: bool = True
    C: float = 10.0  # inverse regularisation strength, chosen on validation
    class_weight: Literal["balanced", "none"] = "balanced"
    max_iter: int = 2000

    def check(self, need: Need) -> None:
        need(self.ngram_max >= 1, "ngram_max", ">= 1")
        need(self.C > 0, "C", "> 0")
        need(self.min_df >= 1, "min_df", ">= 1 (documents a word must occur in)")
        need(self.max_iter >= 1, "max_iter", ">= 1")


ModelConfig = TransformerConfig | TfidfConfig
MODEL_KINDS: dict[str, type] = {"transformer": TransformerConfig, "tfidf": TfidfConfig}


@dataclasses.dataclass(frozen=True)
class TrainConfig(Section):
    """Settings shared by every training run (``train.*``)."""

    seed: int = 42
    # CPU threads for torch; 0 = torch's default (all cores). Per process under torchrun.
    threads: int = 0
    # Data-parallel processes (DDP) for transformer training on this machine: > 1 makes
    # `python stages/train.py <m>` relaunch itself under `torchrun --standalone
    # --nproc_per_node=<nproc>` (one per GPU; gloo on CPU). models.<m>.batch_size stays the
    # global batch, so it must divide by nproc. Multi-node: run torchrun yourself (docs).
    nproc: int = 1

    SECTION: ClassVar[str] = "train"

    def check(self, need: Need) -> None:
        need(self.nproc >= 1, "nproc", ">= 1")
        need(self.threads >= 0, "threads", ">= 0 (0 = torch's default)")
        need(is_seed(self.seed), "seed", SEED_RULE)


def model_config(name: str, raw: dict[str, Any]) -> ModelConfig:
    kind = (raw or {}).get("kind")
    if kind is None:  # e.g. -S ++models.<new>.lr=...: a new entry, not a misspelled one
        raise ConfigError(
            f"models.{name}.kind: missing; every model entry names its kind "
            f"({', '.join(MODEL_KINDS)}), a new one too (-S ++models.{name}.kind=transformer)"
        )
    if kind not in MODEL_KINDS:
        raise ConfigError(
            f"models.{name}.kind: got {kind!r}; allowed values: {', '.join(MODEL_KINDS)}"
        )
    return build(MODEL_KINDS[kind], raw, f"models.{name}")
