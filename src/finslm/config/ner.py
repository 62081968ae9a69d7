"""``ner``: financial named-entity recognition (the ``*_ner`` stages; src/finslm/ner/):
data, labels, the token-classification models, export gate and benchmark settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

from finslm.config.base import SEED_RULE, ConfigError, Need, Section, build, is_seed
from finslm.config.export import BACKEND_NAMES
from finslm.config.reader import names_the_line, read_params
from finslm.config.training import OptimConfig


@dataclasses.dataclass(frozen=True)
class NerModelConfig(OptimConfig):
    """A token classifier (``ner.models.<name>``, ``task: token-classification``); the optimiser
    block (epochs, batch_size, lr, weight_decay, warmup_ratio, early_stopping_patience) is
    :class:`OptimConfig`'s. Early stopping and the restored epoch go by validation entity
    micro-F1 (seqeval, strict IOB2)."""

    task: Literal["token-classification"] = "token-classification"
    # ``packaged:all-MiniLM-L6-v2`` (offline), a local folder, or a hub id.
    checkpoint: str = "packaged:all-MiniLM-L6-v2"
    max_length: int = 128  # sub-tokens; sentences are cut into ner.max_words windows first
    lr_schedule: Literal["linear", "cosine"] = "linear"
    # Class imbalance (most tokens are O): loss weight of label c is (n / (k * n_c)) ** power,
    # counted over the training split's first sub-tokens, then scaled to mean 1. 0 = off,
    # 1 = inverse frequency, 0.5 (default) = its square root.
    class_weight_power: float = 0.5
    # Word shape through the token type ids: 1 on the sub-tokens of capitalised words. An
    # uncased tokenizer (MiniLM's) cannot see case otherwise. Needs a model with two token
    # types (BERT, MiniLM); finslm.json records it, so every backend encodes alike.
    word_shape: bool = False
    # How word scores become tags (finslm.json records it; every backend decodes alike):
    # ``viterbi`` = the best valid IOB2 sequence (no I-T after O or another type), ``argmax`` =
    # each word on its own (finslm.ner.decode). Also the best-epoch metric's decoding.
    decode: Literal["viterbi", "argmax"] = "viterbi"
    # The model's labels: ``iob2`` (O, B-T, I-T per type) or ``io`` (O, I-T: an entity is a run
    # of one type; adjacent entities of one type merge, which IO-tagged data such as
    # SEC-filings cannot separate anyway). Decoded spans are IOB2 either way.
    tag_scheme: Literal["iob2", "io"] = "iob2"
    # Mention replacement (finslm.ner.augment): this many copies of each training sentence with
    # an entity, each mention swapped with probability mention_swap_p for another training
    # mention of its type. 0 = off. Training split only.
    mention_swap_copies: int = 0
    mention_swap_p: float = 0.5
    # Refit: after the run that picks the best epoch on validation, train again from scratch on
    # train + validation for that many epochs and save that model (more data; its validation
    # figures are then not held out: finslm.json says refit_epochs). Doubles training time.
    refit: bool = False
    # Document context (FLERT; finslm.ner.context): up to this many words of the same document
    # on each side of a sentence, encoded with it and not labelled. 0 = off. Raise max_length
    # with it (a sentence of ner.max_words words plus 2 x context_words must fit, or the
    # context is halved for that sentence). Raw text (CLI, server) is tagged without it.
    context_words: int = 0
    trust_remote_code: bool = False

    def check(self, need: Need) -> None:
        super().check(need)
        need(16 <= self.max_length <= 512, "max_length", "between 16 and 512")
        need(0 <= self.context_words <= 256, "context_words", "between 0 and 256 (0 = off)")
        need(0 <= self.class_weight_power <= 1, "class_weight_power", "in [0, 1] (0 = off)")
        need(0 <= self.mention_swap_copies <= 20, "mention_swap_copies", "between 0 and 20")
        need(0 < self.mention_swap_p <= 1, "mention_swap_p", "in (0, 1]")


@dataclasses.dataclass(frozen=True)
class NerConfig(Section):
    """Financial NER (``ner.*``): data, labels, the token-classification models, export and
    benchmark settings for the ``prepare_ner`` … ``benchmark_ner`` stages (docs/ner.md)."""

    # CoNLL (.conll/.txt: token first column, tag last), JSONL/Parquet {tokens, tags}, or
    # hub:<dataset id> in the FiNER-139 layout (tokens + integer ner_tags with ClassLabel names).
    source: str = "data/sample/ner/train.conll"
    # A file that is the test split as it is; the same path as source (or "" when the stage
    # script runs alone: DVC refuses an empty path) = a stratified share (test_size) of source.
    test_source: str = "data/sample/ner/test.conll"
    format: Literal["auto", "conll", "jsonl", "parquet", "hub"] = "auto"
    hub_split: str = "train"
    hub_test_split: str = "test"
    hub_config: str = ""
    # Tag scheme of the sources: auto detects io / iob1 / iob2; all are normalised to IOB2.
    scheme: Literal["auto", "io", "iob1", "iob2"] = "auto"
    # An I-T with no T entity before it in data declared IOB2 (scheme: iob2; under auto such a
    # file is detected as IOB1, where it is legal): ``repair`` makes it B-T (counted),
    # ``reject`` drops the sentence (counted).
    orphan_i: Literal["repair", "reject"] = "repair"
    # Entity types kept, in label order; other types become O (as the FiNER-139 subset did).
    # [] = every type found in the training data.
    entity_types: list[str] = dataclasses.field(default_factory=lambda: ["PER", "ORG", "LOC"])
    # Type renames applied before the selection, e.g. {B-ProfitLoss: ...} as {ProfitLoss: PL}.
    label_map: dict[str, str] = dataclasses.field(default_factory=dict)
    # Longer sentences are cut into windows of at most this many words (never truncated).
    max_words: int = 64
    test_size: float = 0.2  # without test_source: stratified by entity presence
    val_size: float = 0.15  # share of train, stratified by entity presence
    # How validation is drawn from train: ``sentence`` (a stratified share of sentences) or
    # ``document`` (whole documents, about val_size of the sentences): names and places then
    # differ between train and validation as they do between FIN5 and a test file.
    val_by: Literal["sentence", "document"] = "sentence"
    seed: int = 42
    # torch threads for training (train_ner; 0 = every core; same seed + threads -> same weights)
    threads: int = 0
    # Token classifiers: name -> NerModelConfig fields. models/<name>, exports/<name>.
    # (Typed Any: each entry is built and checked by model(), not coerced to strings.)
    models: Any = dataclasses.field(default_factory=lambda: {"ner-minilm": {}})
    # Export parity gate (graphs from export.* settings; these are the NER thresholds):
    # token-argmax agreement with PyTorch on the validation split, and the entity micro-F1
    # difference (points) between each graph and PyTorch.
    int8_keep_fp32: list[int | str] = dataclasses.field(default_factory=list)
    min_token_agreement: float = 0.995
    int8_min_token_agreement: float = 0.98
    max_f1_drop_pt: float = 0.5
    int8_max_f1_drop_pt: float = 2.0
    # Benchmark (latency per sentence at batch 1, throughput, size, peak RSS) on the test split.
    bench_model: str = "ner-minilm"
    bench_backends: list[str] = dataclasses.field(
        default_factory=lambda: ["torch-fp32", "onnx-fp32", "onnx-opt", "onnx-int8"]
    )
    bench_threads: int = 1
    bench_sentences: int = 200
    bench_repeats: int = 3
    # Integrated gradients for predicted entities in the NER explain report.
    explain_entities: int = 5
    ig_steps: int = 16

    SECTION: ClassVar[str] = "ner"

    def check(self, need: Need) -> None:
        need(self.max_words >= 4, "max_words", ">= 4")
        need(is_seed(self.seed), "seed", SEED_RULE)
        need(0 < self.test_size < 1, "test_size", "between 0 and 1, both excluded")
        need(0 < self.val_size < 1, "val_size", "between 0 and 1, both excluded")
        need(self.threads >= 0, "threads", ">= 0")
        need(
            isinstance(self.models, dict) and bool(self.models),
            "models",
            "a mapping name -> settings",
        )
        need(len(set(self.entity_types)) == len(self.entity_types), "entity_types", "unique")
        for name in ("min_token_agreement", "int8_min_token_agreement"):
            need(0 <= getattr(self, name) <= 1, name, "in [0, 1]")
        need(self.bench_model in self.models, "bench_model", f"one of {sorted(self.models)}")
        for b in self.bench_backends:
            need(b in BACKEND_NAMES[:4], "bench_backends", f"from {BACKEND_NAMES[:4]}", b)
        need(self.bench_sentences >= 1, "bench_sentences", ">= 1")
        need(self.bench_repeats >= 1, "bench_repeats", ">= 1")
        need(self.ig_steps >= 2, "ig_steps", ">= 2")

    def model(self, name: str) -> NerModelConfig:
        """``ner.models.<name>`` built and checked."""
        if name not in self.models:
            raise ConfigError(f"ner.models: no model {name!r}; known: {', '.join(self.models)}")
        return build(NerModelConfig, self.models[name] or {}, f"ner.models.{name}")


@names_the_line
def load_ner_config(path: str | Path = "params.yaml", *, profile: str = "auto") -> NerConfig:
    """``ner.*``, every model entry checked."""
    cfg = build(NerConfig, read_params(path, profile).get("ner"), "ner")
    for name in cfg.models:
        cfg.model(name)
    return cfg
