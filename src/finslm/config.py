"""Typed, validated configuration read from ``params.yaml``.

Every knob has a documented default here; a wrong key or value fails early with a message that
names the key, what was given and what is allowed. Stages read only their own section, so
``dvc exp run -S models.minilm.lr=3e-5`` reruns only what depends on it.

    >>> cfg = load_params("params.yaml")
    >>> cfg.models["minilm"].lr
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

import yaml

from finslm.errors import FinslmError
from finslm.labels import LABELS


class ConfigError(FinslmError, ValueError):
    """A params.yaml value is missing, unknown or out of range; the message says which and why
    (and, raised through a ``load_*`` function, the file and line: :func:`_names_the_line`)."""


# A message that starts with the dotted params key it is about: "models.minilm.lr: ...".
_KEY_AT_START = re.compile(r"^([A-Za-z_][\w-]*(?:\.[\w@-]+)*)(?:\[\d+\])?: ")
_UNKNOWN_KEY = re.compile(r"unknown key\(s\) ([\w@-]+)")


def _line_of(path: Path, keys: list[str]) -> int | None:
    """1-based line of the deepest of ``keys`` (a params path) that the YAML file spells out."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    for key in keys:
        found = None
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == key), None)
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
    return line


def _names_the_line(load: Callable[..., Any]) -> Callable[..., Any]:
    """``load(path, ...)`` whose ConfigError starts with ``<path>:<line>:`` where the key it
    names is written (the unknown key itself for "unknown key(s)"), so an editor jumps there."""
    import functools

    @functools.wraps(load)
    def wrapper(path: str | Path = "params.yaml", *args: Any, **kwargs: Any) -> Any:
        try:
            return load(path, *args, **kwargs)
        except ConfigError as exc:
            message, path = str(exc), Path(path)
            match = _KEY_AT_START.match(message)
            if message.startswith(str(path)) or match is None:
                raise
            keys = match.group(1).split(".")
            unknown = _UNKNOWN_KEY.match(message, match.end())
            keys += [unknown.group(1)] if unknown else []
            view = kwargs.get("profile", "auto")
            if _set_by_overlay(path, keys, view):  # the quick profile's value: point there
                message, keys = f"{QUICK}.{message}", [QUICK, *keys]
            elif view == "full" and _in_force(path) == QUICK:
                message += FULL_RECIPE_NOTE
            elif view == QUICK and _in_force(path) != QUICK:
                message += QUICK_RECIPE_NOTE
            line = _line_of(path, keys)
            raise ConfigError(
                f"{path}:{line}: {message}" if line else f"{path}: {message}"
            ) from None

    return wrapper


# Appended to an error in the full recipe found while the quick profile is in force.
FULL_RECIPE_NOTE = (
    " (in the full recipe: the quick profile overrides it on the embedded sample, but any other "
    "data.source runs it)"
)


QUICK_RECIPE_NOTE = " (with the quick profile laid over the file, as on the embedded sample)"


def _raw_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _in_force(path: Path) -> str:
    return profile_in_force(_raw_file(path))


def _set_by_overlay(path: Path, keys: list[str], view: str) -> bool:
    """Whether params ``keys`` (``models.minilm.epochs``) got their value from the ``quick``
    section in the ``view`` a loader read (``auto``: the profile in force)."""
    if view == "full" or (view == "auto" and _in_force(path) != QUICK):
        return False
    node: Any = _raw_file(path).get(QUICK)
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


# need(cond, key, what[, value]): raise ``<prefix>.<key>: got <value>; must be <what>``.
Need = Callable[..., None]
_UNSET = object()


def _checker(obj: Any, prefix: str) -> Need:
    def need(cond: bool, key: str, what: str, value: Any = _UNSET) -> None:
        if not cond:
            got = getattr(obj, key) if value is _UNSET else value
            raise ConfigError(f"{prefix}.{key}: got {got!r}; must be {what}")

    return need


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: ~10x faster
    """PyYAML's safe loader, reading floats as YAML 1.2 does.

    PyYAML follows YAML 1.1, where a float needs a dot: ``5e-05`` (what ``dvc exp run -S
    lr=5e-5`` writes back) would be the string "5e-05". This adds the 1.2 forms (``5e-05``,
    ``1E+3``) so a number is a number whichever YAML dialect wrote the file.
    """


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A YAML mapping, refusing a key written twice: PyYAML would keep the last silently, so a
    second ``data:`` block would replace the first one's settings without a word."""
    first: dict[str, yaml.Node] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            seen = first.setdefault(str(key_node.value), key_node)
            if seen is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r} (first at line "
                    f"{seen.start_mark.line + 1}); keep one and merge their settings",
                    key_node.start_mark,
                )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text as params.yaml is read everywhere (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of every params section: one validation style for all of them.

    A subclass's :meth:`check` states its ranges and cross-field rules with ``need``; it runs on
    construction under the class's ``SECTION`` name (``prune.ffn_keep: got 0; must be …``),
    and for a model entry (no fixed name) from :func:`build` under ``models.<name>``.
    """

    SECTION: ClassVar[str] = ""

    def __post_init__(self):
        if self.SECTION:
            self.check(_checker(self, self.SECTION))

    def check(self, need: Need) -> None:
        """Ranges and cross-field rules beyond the field types (checked by :func:`build`)."""


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

    # A PhraseBank ``.txt`` (``sentence@label``), a PhraseBank folder, a .csv/.tsv/.parquet
    # file, or ``hub:<dataset id>`` (needs a network). Relative paths are from the repo root.
    source: str = "data/sample/sentences.csv"  # SAMPLE_SOURCE
    # How to read ``source``; ``auto`` decides by suffix (``.txt`` -> phrasebank) or ``hub:``.
    format: Literal["auto", "phrasebank", "csv", "tsv", "parquet", "hub"] = "auto"
    # Column names for table formats (csv/tsv/parquet/hub datasets).
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
        need(0 < self.test_size < 1, "test_size", "between 0 and 1")
        need(0 < self.val_size < 1, "val_size", "between 0 and 1")
        need(self.min_chars >= 1, "min_chars", ">= 1")
        need(self.max_chars > self.min_chars, "max_chars", "> min_chars")
        need(0 <= self.seed < 2**32, "seed", "between 0 and 2**32 - 1 (a numpy seed)")
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
_MODEL_KINDS: dict[str, type] = {"transformer": TransformerConfig, "tfidf": TfidfConfig}


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
        need(0 <= self.seed < 2**32, "seed", "between 0 and 2**32 - 1 (a numpy seed)")


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """Return ``value`` coerced to ``annotation`` or raise a ConfigError naming ``key``."""
    origin = get_origin(annotation)
    if origin is Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            raise ConfigError(
                f"{key}: got {value!r}; allowed values: {', '.join(map(str, allowed))}"
            )
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        for k, v in value.items():
            if v is None or isinstance(v, dict | list) or not str(v).strip():
                raise ConfigError(f"{key}: {k!r} maps to {v!r}; give a name")
        return {str(k): str(v) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = get_args(annotation)
        return [_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (Union, types.UnionType):
        arms = get_args(annotation)
        for arm in arms:
            try:
                return _check_type(value, arm, key)
            except ConfigError:
                continue
        names = " or ".join(getattr(a, "__name__", str(a)) for a in arms)
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    if isinstance(annotation, type) and issubclass(annotation, Section):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of settings, got {value!r}")
        return build(annotation, value, key)  # a nested block (models.<m>.lora)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def build(cls: type, raw: dict[str, Any] | None, prefix: str):
    """Build dataclass ``cls`` from a params mapping, rejecting unknown keys and bad values."""
    raw = dict(raw or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        import difflib

        close = [c for u in unknown for c in difflib.get_close_matches(str(u), names, n=1)]
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"{prefix}: unknown key(s) {', '.join(map(str, unknown))}; {hint}"
            f"known keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: _check_type(v, hints[k], f"{prefix}.{k}") for k, v in raw.items()}
    obj = cls(**kwargs)  # a Section with a fixed name checks itself here
    if not cls.SECTION:
        obj.check(_checker(obj, prefix))
    return obj


def model_config(name: str, raw: dict[str, Any]) -> ModelConfig:
    kind = (raw or {}).get("kind")
    if kind not in _MODEL_KINDS:
        raise ConfigError(
            f"models.{name}.kind: got {kind!r}; allowed values: {', '.join(_MODEL_KINDS)}"
        )
    return build(_MODEL_KINDS[kind], raw, f"models.{name}")


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


# --- export and benchmark (owned by the export/benchmark stages) ---

# The engines of finslm.engines come last (optional extras; BACKEND_NAMES[:4] are the core four).
BACKEND_NAMES = (
    "torch-fp32",
    "onnx-fp32",
    "onnx-opt",
    "onnx-int8",
    "sklearn",
    "openvino-fp32",
    "openvino-int8",
    "ct2-int8",
)


def _names(need: Need, key: str, value: list) -> None:
    """A list of distinct, non-empty names (types are checked by :func:`build`)."""
    need(all(isinstance(v, str) and v for v in value), key, "a list of names")
    need(len(set(value)) == len(value), key, "a list without repeats")


@dataclasses.dataclass(frozen=True)
class ExportConfig(Section):
    """ONNX export, graph optimisation, INT8 quantisation and their parity gate (``export.*``)."""

    # Transformer models (names under ``models``) to export; dvc.yaml's export stage is
    # ``foreach: ${export.models}``. TF-IDF models have no graph, so they are not listed.
    models: list[str] = dataclasses.field(default_factory=lambda: ["minilm"])
    opset: int = 17
    # ``torchscript`` (torch.onnx.export dynamo=False) writes one self-contained .onnx whose
    # attention onnxruntime's optimizer fuses; ``dynamo`` is the newer exporter (kept for
    # comparison: it writes weights to a separate .onnx.data unless re-saved, as we do).
    exporter: Literal["torchscript", "dynamo"] = "torchscript"
    # Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer -> model.opt.onnx.
    optimize: bool = True
    # Graph the INT8 model is quantised from: the optimised one (fused attention becomes
    # QAttention) or the plain fp32 export.
    quantize_from: Literal["opt", "fp32"] = "opt"
    # One scale per output channel of each weight matrix (keeps accuracy, no speed cost).
    per_channel: bool = True
    # 7-bit weights, for CPUs without VNNI where 8-bit products can saturate: true / false for
    # every model, or a list of the models that get them (e.g. [mpnet]: the MPNet teacher's
    # 8-bit INT8 graph agreed 50% with PyTorch on such a CPU, its 7-bit one 98%).
    reduce_range: bool | list[str] = False
    # Parts of the INT8 graph left in fp32 (mixed precision where INT8 hurts most; choose them
    # on the validation split). An integer is a whole encoder layer (0-based); a string is a
    # piece of ONNX node/tensor name, e.g. "layer.1/output/dense" (layer 1's FFN down-projection).
    int8_keep_fp32: list[int | str] = dataclasses.field(default_factory=list)
    # Parity gate on the validation split: max |logit difference| vs PyTorch and the share of
    # identical labels, for the fp32 graphs (model.onnx, model.opt.onnx) and for INT8. The INT8
    # gate is loose on purpose: it catches a broken graph, while a near-tie flipping on a small
    # validation split is expected; INT8 quality is measured by the benchmark on the test split.
    atol: float = 1e-3
    min_agreement: float = 0.99
    int8_atol: float = 3.0
    int8_min_agreement: float = 0.9
    # Texts per forward pass when measuring parity (padding varies with it, as in serving).
    batch_size: int = 32
    # Other CPU engines built into exports/<m>/ by the export stage, parity-gated on validation
    # like the ONNX graphs (finslm.engines_build; extras [openvino], [ct2]): "openvino" (the
    # OpenVINO backends and NNCF's INT8 IR, calibrated on training sentences) and/or "ct2"
    # (CTranslate2 INT8). [] = none (the default: it keeps the first run short).
    engines: list[str] = dataclasses.field(default_factory=list)
    # Training sentences (the first N of the train split) that calibrate the OpenVINO INT8 IR.
    engine_calibration: int = 300
    # Quantisation-aware fine-tuning of the INT8 graph's weights (finslm.qat): a copy of the
    # model is fine-tuned for this many epochs on the training texts, under simulated INT8
    # rounding, to reproduce the model's own logits; the epoch (0 = no change) whose INT8 graph
    # agrees best with the model on validation gives model.int8.onnx. The fp32 graphs are the
    # model's own. 0 = off (the default). docs/speed.md has what it gave.
    qat_epochs: int = 0
    qat_lr: float = 3e-6

    SECTION: ClassVar[str] = "export"

    def check(self, need: Need) -> None:
        _names(need, "models", self.models)
        keep = self.int8_keep_fp32
        need(
            isinstance(keep, list)
            and all(
                (isinstance(k, int) and not isinstance(k, bool) and k >= 0)
                or (isinstance(k, str) and k)
                for k in keep
            ),
            "int8_keep_fp32",
            "a list of encoder layer indices (0, 1, ...) and/or pieces of node names",
        )
        need(7 <= self.opset <= 23, "opset", "between 7 and 23")
        for key in ("atol", "int8_atol"):
            need(getattr(self, key) > 0, key, "> 0")
        for key in ("min_agreement", "int8_min_agreement"):
            need(0 <= getattr(self, key) <= 1, key, "between 0 and 1")
        need(self.batch_size >= 1, "batch_size", ">= 1")
        need(
            isinstance(self.engines, list) and set(self.engines) <= {"openvino", "ct2"},
            "engines",
            'a list of "openvino" and/or "ct2" ([] = none)',
        )
        need(self.engine_calibration >= 1, "engine_calibration", ">= 1")
        need(self.qat_epochs >= 0, "qat_epochs", ">= 0 (0 = off)")
        need(self.qat_lr > 0, "qat_lr", "> 0")
        if isinstance(self.reduce_range, list):
            _names(need, "reduce_range", self.reduce_range)

    def reduce_range_for(self, model: str) -> bool:
        """Whether ``model``'s INT8 graph gets 7-bit weights (``reduce_range``)."""
        if isinstance(self.reduce_range, list):
            return model in self.reduce_range
        return self.reduce_range

    def for_model(self, model: str) -> ExportConfig:
        """These settings as they apply to ``model`` (``reduce_range`` resolved to a bool)."""
        return dataclasses.replace(self, reduce_range=self.reduce_range_for(model))


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig(Section):
    """The side-by-side benchmark of every model variant on the test split (``benchmark.*``)."""

    # ``<model>/<backend>`` names; ``<model>`` is a folder under models/ (torch, sklearn) or
    # exports/ (onnx-*). Later variants (minilm-targeted, minilm-pruned) are added here.
    variants: list[str] = dataclasses.field(
        default_factory=lambda: [
            "minilm/torch-fp32",
            "minilm/onnx-fp32",
            "minilm/onnx-opt",
            "minilm/onnx-int8",
            "tfidf/sklearn",
        ]
    )
    # Speed ratios, accuracy deltas and label agreement are reported against this variant.
    reference: str = "minilm/torch-fp32"
    # Intra-op CPU threads for torch and onnxruntime alike; 0 = every core (os.cpu_count()).
    threads: int = 0
    # Untimed batch-1 calls per variant before latency is measured.
    warmup: int = 20
    # Latency at batch 1 over this many test sentences (all if fewer), tokenisation included,
    # repeated ``repeats`` times with the variants taking turns (round-robin) each repetition.
    latency_sentences: int = 300
    repeats: int = 3
    # Throughput (sentences/s) at this batch size over the whole test split, same round-robin.
    batch_size: int = 32
    # Peak RSS per variant, each in a fresh Python process that loads it and predicts one
    # batch of the longest test sentences (a few seconds per variant).
    rss: bool = True

    SECTION: ClassVar[str] = "benchmark"

    def check(self, need: Need) -> None:
        variants = self.variants
        _names(need, "variants", variants)
        need(bool(variants), "variants", "a non-empty list")
        for v in variants:
            model, _, backend = v.partition("/")
            need(
                bool(model) and backend in BACKEND_NAMES,
                "variants",
                f"<model>/<backend> with backend one of {', '.join(BACKEND_NAMES)}",
                value=v,
            )
        need(self.reference in variants, "reference", "one of benchmark.variants")
        need(self.threads >= 0, "threads", ">= 0")
        need(self.warmup >= 0, "warmup", ">= 0")
        need(self.latency_sentences >= 1, "latency_sentences", ">= 1")
        need(self.repeats >= 1, "repeats", ">= 1")
        need(self.batch_size >= 1, "batch_size", ">= 1")


def read_params(path: str | Path = "params.yaml", profile: str = "auto") -> dict[str, Any]:
    """The one YAML reader: ``params.yaml`` as a mapping (``{}`` when empty), with the
    ``quick`` profile applied when it is in force (:func:`apply_profile`). ``profile``
    ``full`` or ``quick`` reads that recipe whichever is in force (:func:`load_params` checks
    both)."""
    path = Path(path)
    try:
        raw = yaml_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from the repository root") from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(KNOWN_SECTIONS)})")
    for section, value in raw.items():
        if section not in KNOWN_SECTIONS:
            import difflib

            close = difflib.get_close_matches(str(section), KNOWN_SECTIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            line = _line_of(path, [str(section)])
            raise ConfigError(
                f"{path}:{line}: unknown section {section!r}; {hint}known sections: "
                f"{', '.join(KNOWN_SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(
                f"{path}: section {section!r} is {value!r}, not a mapping of keys; give its "
                f"keys (see src/finslm/config.py) or delete the line to use the defaults"
            )
    if profile == "full":
        _check_overlay(raw)
        return raw
    return apply_profile(raw, force=profile == QUICK)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """``<path>:<line>:<column>: <problem>`` (the form an editor jumps to) for a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return f"{path}: not valid YAML: {exc}"
    context = getattr(exc, "context", None)
    where = f" ({context})" if context else ""
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}{where}"


SAMPLE_SOURCE = "data/sample/sentences.csv"  # the embedded sample (DataConfig.source's default)
QUICK = "quick"  # the params section that the quick profile lays over the others


def profile_in_force(raw: dict[str, Any]) -> str:
    """``quick`` or ``full`` for raw params: ``data.profile``, where ``auto`` means quick on the
    embedded sample and full on anything else."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    profile = data.get("profile", "auto")
    if profile not in ("auto", "quick", "full"):
        return "full"  # build() reports the bad value, naming data.profile
    if profile == "auto":
        source = Path(str(data.get("source", SAMPLE_SOURCE))).as_posix().removeprefix("./")
        return "quick" if source == SAMPLE_SOURCE else "full"
    return profile


def profile_note(raw: dict[str, Any]) -> str | None:
    """A line for commands outside ``dvc repro`` (ablate, tune, cv) that read the params as the
    pipeline does: what the quick profile changes when it is in force, else None."""
    if profile_in_force(raw) != QUICK or not raw.get(QUICK):
        return None
    return (
        "the quick profile is in force (data.source is the embedded sample, or data.profile: "
        "quick): params.yaml's quick section replaces some settings (fewer epochs and seeds); "
        "data.profile: full (-S or in params.yaml) runs the recipe as written"
    )


def _check_overlay(raw: dict[str, Any]) -> None:
    """The ``quick`` section's shape, whichever profile is in force: a mapping of sections
    that exist (a misspelled one would otherwise be merged in and never read)."""
    overlay = raw.get(QUICK)
    if overlay is None:
        return
    if not isinstance(overlay, dict):
        raise ConfigError(f"{QUICK}: expected a mapping of params sections, got {overlay!r}")
    allowed = ("models", *SECTIONS)
    for section in overlay:
        if section not in allowed:
            import difflib

            close = difflib.get_close_matches(str(section), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{QUICK}.{section}: not a params section; {hint}the quick profile can set "
                f"{', '.join(allowed)}"
            )


def apply_profile(raw: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """``raw`` with the ``quick`` section merged over the other sections when the quick
    profile is in force (or ``force``); the ``quick`` section itself is kept (DVC tracks it as
    a param)."""
    _check_overlay(raw)
    overlay = raw.get(QUICK)
    if not (force or profile_in_force(raw) == QUICK) or not overlay:
        return raw

    def merge(base: Any, over: dict[str, Any], key: str) -> dict[str, Any]:
        if base is None:
            base = {}
        if not isinstance(base, dict):
            raise ConfigError(f"{key}: the quick profile sets keys under it, but it is {base!r}")
        out = dict(base)
        for name, value in over.items():
            where = f"{key}.{name}"
            if isinstance(value, dict) and name != "label_map":  # a mapping param is replaced
                if key == f"{QUICK}.models" and name not in (raw.get("models") or {}):
                    missing = "" if raw.get("models") else " (the file has no models section)"
                    raise ConfigError(
                        f"{where}: no model {name!r} under models{missing}; remove it from "
                        "the quick profile or add the model"
                    )
                out[name] = merge(base.get(name), value, where)
            else:
                out[name] = value
        return out

    merged = dict(raw)
    for section, value in overlay.items():
        where = f"{QUICK}.{section}"
        if section == QUICK or not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a params section (a mapping), got {value!r}")
        merged[section] = merge(raw.get(section), value, where)
    return merged


# Transformer folders other stages derive from a trained one: params section -> name suffix
# (finetune.model: minilm -> models/minilm-targeted; prune.model: minilm -> models/minilm-pruned).
DERIVED_SUFFIXES = {"finetune": "targeted", "prune": "pruned"}


def derived_models(raw: dict[str, Any]) -> dict[str, str]:
    """``{derived name: base model}`` for the sections of ``raw`` params that are present."""
    out = {}
    for section, suffix in DERIVED_SUFFIXES.items():
        params = raw.get(section)
        base = params.get("model") if isinstance(params, dict) else None
        if isinstance(base, str) and base:
            out[f"{base}-{suffix}"] = base
    distill = raw.get("distill")
    students = distill.get("students") if isinstance(distill, dict) else None
    for name, settings in (students if isinstance(students, dict) else {}).items():
        teacher = (settings or {}).get("teacher")
        if isinstance(teacher, str) and teacher:
            out[name] = teacher  # distill@<name> writes models/<name>, a transformer
    return out


@_names_the_line
def load_export_config(
    path: str | Path = "params.yaml", check_models: bool = True, *, profile: str = "auto"
) -> ExportConfig:
    """``export.*``, checking every listed model is a transformer under ``models`` or one
    derived from such a model by another stage (:data:`DERIVED_SUFFIXES`); ``check_models``
    False skips that (``finslm export`` of a folder the pipeline does not name)."""
    raw = read_params(path, profile)
    cfg = build(ExportConfig, raw.get("export"), "export")
    if not check_models:
        return cfg
    models = raw.get("models") or {}
    transformers = [n for n, m in models.items() if (m or {}).get("kind") == "transformer"]
    transformers += [d for d, base in derived_models(raw).items() if base in transformers]
    for name in cfg.models:
        if name not in transformers:
            kind = (models.get(name) or {}).get("kind")
            what = "is not under models" if name not in models else f"has kind {kind!r}"
            raise ConfigError(
                f"export.models: {name!r} {what}; only transformer models can be exported to "
                f"ONNX (transformers here: {', '.join(transformers) or 'none'})"
            )
    return cfg


@_names_the_line
def load_benchmark_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> BenchmarkConfig:
    """``benchmark.*`` (variants are checked against folders on disk by the stage)."""
    return build(BenchmarkConfig, read_params(path, profile).get("benchmark"), "benchmark")


# --- explain (owned by the explain stage) ---

EXPLAIN_METHODS = ("shap", "lime", "ig", "attention")


@dataclasses.dataclass(frozen=True)
class ExplainConfig(Section):
    """Explanations, their faithfulness and the error analysis of one model (``explain.*``).

    Validation split only. Defaults keep 100 sentences x 4 methods within about 3 minutes on a
    2-core CPU with the ONNX INT8 MiniLM.
    """

    # A transformer under ``models`` (IG and attention need its PyTorch weights).
    model: str = "minilm"
    # Predictor for SHAP, LIME, leave-one-out, the faithfulness curves and the validation
    # predictions of the error analysis: onnx-* read exports/<model> (or models/<model>/onnx/),
    # torch-fp32 models/<model>. IG and attention always use PyTorch.
    backend: Literal["onnx-int8", "onnx-opt", "onnx-fp32", "torch-fp32"] = "onnx-int8"
    # Used, with a warning in the log and the report, when ``backend``'s files are missing
    # (e.g. no export yet); "" makes that an error instead.
    fallback_backend: Literal["torch-fp32", "onnx-fp32", ""] = "torch-fp32"
    methods: list[str] = dataclasses.field(default_factory=lambda: list(EXPLAIN_METHODS))
    # Sentences explained, stratified over (true label, correct?) strata; errors are rarer, so
    # they are all taken when a stratum is smaller than its share.
    sample_size: int = 100
    seed: int = 42
    # Per-sentence budgets: SHAP Partition-explainer model calls, LIME perturbed samples, IG
    # integration steps (one batch).
    shap_max_evals: int = 120
    lime_samples: int = 120
    ig_steps: int = 16
    # Texts per call of the perturbation predictor.
    batch_size: int = 64
    # Intra-op CPU threads for torch and for onnxruntime each; 0 = library default (every core).
    # 1: IG/attention (torch) already run in a thread of their own beside SHAP/LIME (onnxruntime),
    # which fills a 2-core CPU, and small perturbation batches gain little from a second
    # intra-op thread while losing a lot to spin-waiting when the machine is busy.
    threads: int = 1
    # Faithfulness: shares of top-ranked words deleted (comprehensiveness) or kept (sufficiency).
    fractions: list[float] = dataclasses.field(default_factory=lambda: [0.1, 0.2, 0.5])
    # Error analysis: reliability-diagram bins; the accuracy the confidence threshold must reach
    # on predictions above it; words behind errors (at most ``top_tokens``, each pushing at least
    # ``min_token_errors`` explained errors); examples listed per kind.
    calibration_bins: int = 10
    target_accuracy: float = 0.95
    top_tokens: int = 25
    min_token_errors: int = 2
    max_examples: int = 25

    SECTION: ClassVar[str] = "explain"

    def check(self, need: Need) -> None:
        methods = self.methods
        _names(need, "methods", methods)
        need(bool(methods), "methods", "a non-empty list")
        for m in methods:
            need(m in EXPLAIN_METHODS, "methods", f"one of {', '.join(EXPLAIN_METHODS)}", value=m)
        fr = self.fractions
        ok = (
            isinstance(fr, list)
            and bool(fr)
            and all(isinstance(k, int | float) and not isinstance(k, bool) for k in fr)
            and all(0 < k <= 1 for k in fr)
        )
        need(ok, "fractions", "a non-empty list of numbers in (0, 1]")
        need(self.backend != self.fallback_backend, "fallback_backend", "different from explain.backend (or \"\")")  # fmt: skip
        for key, low in (
            ("sample_size", 1),
            ("shap_max_evals", 10),
            ("lime_samples", 10),
            ("ig_steps", 2),
            ("batch_size", 1),
            ("threads", 0),
            ("calibration_bins", 2),
            ("top_tokens", 0),
            ("min_token_errors", 1),
            ("max_examples", 0),
        ):
            need(getattr(self, key) >= low, key, f">= {low}")
        need(0 < self.target_accuracy <= 1, "target_accuracy", "in (0, 1]")


@_names_the_line
def load_explain_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> ExplainConfig:
    """``explain.*``, checking ``explain.model`` is a transformer under ``models``."""
    raw = read_params(path, profile)
    cfg = build(ExplainConfig, raw.get("explain"), "explain")
    need = "integrated gradients and attention need a transformer"
    _require_transformer(raw, cfg.model, "explain.model", need)
    return cfg


def _require_transformer(raw: dict[str, Any], name: str, key: str, why: str) -> None:
    """Raise a ConfigError naming ``key`` unless ``name`` is a transformer under ``models``."""
    models = raw.get("models") or {}
    kind = (models.get(name) or {}).get("kind")
    if kind != "transformer":
        what = "is not under models" if name not in models else f"has kind {kind!r}"
        transformers = [n for n, m in models.items() if (m or {}).get("kind") == "transformer"]
        raise ConfigError(
            f"{key}: {name!r} {what}; {why} (transformers here: {', '.join(transformers) or 'none'})"
        )


# --- finetune (owned by the mine and finetune stages) ---

FOCUS_FLAGS = ("misclassified", "low_confidence", "ambiguous", "hard_to_learn", "target_confusion")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(Section):
    """Targeted fine-tune of one trained transformer, and its ablation (``finetune.*``).

    Stage ``mine`` reads the mining knobs (train split only); stage ``finetune`` the rest. See
    ``finslm.finetune`` and the README. Defaults: about 6-7 min of mining plus 6 min per seed for
    MiniLM on the 3,479-sentence PhraseBank train split on a 2-core CPU.
    """

    # A transformer under ``models``: continued from models/<model>, written to
    # models/<model>-targeted; analysis/<model>.json (explain stage) says what to target.
    model: str = "minilm"
    # Continued-training seeds: targeted and control are run once per seed; the base model and
    # the mining are shared. models/<model>-targeted is the first seed's targeted model.
    seeds: list[int] = dataclasses.field(default_factory=lambda: [42, 43, 44])
    # torch CPU threads; 0 = torch's default (all cores).
    threads: int = 0

    # Mining: ``folds`` fold models, each fine-tuned for ``mine_epochs`` from the pretrained
    # models.<model>.checkpoint (with that model's lr, batch size, warm-up) on the other folds.
    folds: int = 4
    mine_epochs: int = 2
    mining_seed: int = 42
    # Flags: out-of-fold p(gold) below ``low_confidence``; cartography variability in the top
    # ``ambiguous_share``; cartography confidence in the bottom ``hard_to_learn_share``.
    low_confidence: float = 0.6
    ambiguous_share: float = 0.15
    hard_to_learn_share: float = 0.05

    # Selection: a training sentence is a candidate when any of ``focus_flags`` is set (also
    # ``hard_to_learn``, ``target_confusion``: an out-of-fold confusion the analysis lists);
    # at most ``max_hard_share`` of the train split is kept as hard, best score first.
    focus_flags: list[str] = dataclasses.field(
        default_factory=lambda: ["misclassified", "low_confidence", "ambiguous"]
    )
    max_hard_share: float = 0.3
    # Focus pool: every hard sample plus ``easy_ratio`` times as many others (against forgetting).
    easy_ratio: float = 1.0
    # Weighted phase: loss weight = analysis target-class weight (if ``class_focus``) times
    # ``hard_weight`` for hard samples, capped at ``weight_cap``, then scaled to mean 1.
    class_focus: bool = True
    hard_weight: float = 2.0
    weight_cap: float = 3.0

    # Continued training (both arms): AdamW, this batch size and peak lr; each phase warms up
    # over its first ``warmup_ratio`` of steps, then decays linearly to 0.
    batch_size: int = 32
    lr: float = 2.0e-5
    warmup_ratio: float = 0.1
    # Phase lengths in passes: over the focus pool, the train split, the train split again at
    # ``lr * consolidation_lr_scale``. The control sees as many examples per phase (uniformly).
    focus_epochs: float = 2.0
    weighted_epochs: float = 1.0
    consolidation_epochs: float = 0.5
    consolidation_lr_scale: float = 0.25
    # Validation macro-F1 this many times per train-split pass and at each phase end; the best
    # evaluation is kept; stop after ``patience`` evaluations without improvement (0 = never).
    evals_per_epoch: int = 2
    patience: int = 4

    # Augmented copies of hard samples in the focus pool (off by default): ``synonyms`` (a
    # built-in financial synonym list) or ``token_dropout``; ``augment_copies`` per hard sample,
    # ``augment_rate`` the per-word replacement / drop probability.
    augment: bool = False
    augment_method: Literal["synonyms", "token_dropout"] = "synonyms"
    augment_copies: int = 1
    augment_rate: float = 0.15

    SECTION: ClassVar[str] = "finetune"

    def check(self, need: Need) -> None:
        seeds = self.seeds
        ok = (
            isinstance(seeds, list)
            and bool(seeds)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        )
        need(ok, "seeds", "a non-empty list of integers")
        need(len(set(seeds)) == len(seeds), "seeds", "a list without repeats")
        flags = self.focus_flags
        _names(need, "focus_flags", flags)
        need(bool(flags), "focus_flags", "a non-empty list")
        for f in flags:
            need(f in FOCUS_FLAGS, "focus_flags", f"one of {', '.join(FOCUS_FLAGS)}", value=f)
        for key, low in (
            ("threads", 0),
            ("folds", 2),
            ("mine_epochs", 1),
            ("batch_size", 1),
            ("evals_per_epoch", 1),
            ("patience", 0),
            ("augment_copies", 1),
        ):
            need(getattr(self, key) >= low, key, f">= {low}")
        for key in ("low_confidence", "ambiguous_share", "hard_to_learn_share", "max_hard_share"):
            need(0 <= getattr(self, key) <= 1, key, "between 0 and 1")
        need(0 < self.augment_rate <= 1, "augment_rate", "in (0, 1]")
        need(self.lr > 0, "lr", "> 0")
        need(0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)")
        for key in ("easy_ratio", "focus_epochs", "weighted_epochs", "consolidation_epochs"):
            need(getattr(self, key) >= 0, key, ">= 0")
        need(self.hard_weight >= 1, "hard_weight", ">= 1")
        need(self.weight_cap >= 1, "weight_cap", ">= 1")
        need(0 < self.consolidation_lr_scale <= 1, "consolidation_lr_scale", "in (0, 1]")
        total = self.focus_epochs + self.weighted_epochs + self.consolidation_epochs
        need(total > 0, "focus_epochs", "such that the phases train (all three lengths are 0)")


@_names_the_line
def load_finetune_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> FinetuneConfig:
    """``finetune.*``, checking ``finetune.model`` is a transformer under ``models``."""
    raw = read_params(path, profile)
    cfg = build(FinetuneConfig, raw.get("finetune"), "finetune")
    need = "the targeted fine-tune continues training a transformer"
    _require_transformer(raw, cfg.model, "finetune.model", need)
    return cfg


# --- prune (owned by the prune stage) ---


@dataclasses.dataclass(frozen=True)
class DistillConfig(OptimConfig):
    """Knowledge distillation from a teacher's logits (finslm/train/distill.py): the shared
    optimiser block plus the loss mix
    ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)`` (Hinton et al. 2015)."""

    alpha: float = 0.5
    temperature: float = 2.0
    early_stopping_patience: int = 2
    seed: int = 42
    threads: int = 0

    def check(self, need: Need) -> None:
        super().check(need)
        need(0 <= self.alpha <= 1, "alpha", "in [0, 1]")
        need(self.temperature > 0, "temperature", "> 0")
        need(self.threads >= 0, "threads", ">= 0")


@dataclasses.dataclass(frozen=True)
class PruneConfig(DistillConfig):
    """What to remove from which model, and how to recover (``prune.*``).

    Recovery distils the pruned student from ``teacher`` (by default the unpruned model): the
    :class:`DistillConfig` fields (epochs, lr, batch_size, warmup_ratio, weight_decay,
    early_stopping_patience, alpha, temperature, seed, threads) are its settings.
    """

    # A transformer under ``models``; the output is models/<model>-pruned.
    model: str = "minilm"
    # The model whose logits on the train split the recovery distils from: a transformer under
    # ``models`` (models/<teacher> is a dependency of the stage). Empty or equal to ``model``:
    # the unpruned source. Another one (e.g. ``mpnet``, the teacher of issue #23) scores the
    # train split as teacher_logits@<teacher> does; the cut is still chosen on ``model``.
    teacher: str = ""
    # Encoder layers kept. ``importance``: drop, one at a time, the layer whose removal raises
    # the validation loss least (measured, not estimated); ``top``: drop the top layers
    # (Sajjad et al. 2023, "On the effect of dropping layers of pre-trained transformer models").
    layers_keep: int = 4
    layer_choice: Literal["importance", "top"] = "importance"
    # Share of each layer's FFN intermediate neurons kept, ranked by first-order Taylor
    # importance |activation x gradient| summed over training sentences (Molchanov et al. 2017).
    # The same count in every layer, so the config's single intermediate_size describes it.
    ffn_keep: float = 0.5
    importance_sentences: int = 1024  # training sentences scored (all if fewer)
    # Recover this many students from the one pruned model (recovery seeds seed, seed + 1, …)
    # and save their weight average, as train's soup_size does (finslm/train/soup.py). The cut
    # is chosen once, so the students share the architecture and the starting weights.
    # soup_size times the recovery time. 1 = one student.
    soup_size: int = 1

    SECTION: ClassVar[str] = "prune"

    def check(self, need: Need) -> None:
        super().check(need)
        need(self.layers_keep >= 1, "layers_keep", ">= 1")
        need(0 < self.ffn_keep <= 1, "ffn_keep", "in (0, 1]")
        need(self.importance_sentences >= 1, "importance_sentences", ">= 1")
        need(self.soup_size >= 1, "soup_size", ">= 1")

    @property
    def output(self) -> str:
        return f"{self.model}-pruned"

    @property
    def recovery_teacher(self) -> str:
        """The model the recovery distils from: ``teacher``, or ``model`` when it is empty."""
        return self.teacher or self.model

    def distill_settings(self) -> DistillConfig:
        """The recovery's settings, as :func:`finslm.train.distill.distill` takes them."""
        fields = {f.name for f in dataclasses.fields(DistillConfig)}
        return DistillConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in fields})


@_names_the_line
def load_prune_config(path: str | Path = "params.yaml", *, profile: str = "auto") -> PruneConfig:
    """``prune.*``, checking ``prune.model`` is a transformer under ``models``."""
    raw = read_params(path, profile)
    cfg = build(PruneConfig, raw.get("prune"), "prune")
    _require_transformer(raw, cfg.model, "prune.model", "pruning cuts a transformer's layers")
    if cfg.teacher:
        _require_transformer(raw, cfg.teacher, "prune.teacher", "the recovery needs its logits")
    return cfg


# --- distill (owned by the teacher_logits and distill stages) ---


@dataclasses.dataclass(frozen=True)
class TeacherConfig(Section):
    """``distill.teachers.<t>``: teacher_logits@<t> scores the train split with models/<t>,
    and, with ``augment_copies`` > 0, that many perturbed copies of each train sentence
    (augmented transfer text, finslm/train/augment.py): each word is swapped for one of its
    ``swap_neighbours`` nearest words in the teacher's input embeddings with probability
    ``word_swap``, else dropped with probability ``word_dropout``."""

    batch_size: int = 64
    threads: int = 0
    augment_copies: int = 0
    word_dropout: float = 0.1
    word_swap: float = 0.15
    swap_neighbours: int = 5
    augment_seed: int = 42
    # Intermediate-layer matching: the teacher's mean-pooled hidden state after each of these
    # layers (0 = the embeddings, n = the last of n layers) is cached beside its logits, for
    # students with ``hidden_weight`` > 0. Empty (the default): logits only.
    hidden_layers: list[int] = dataclasses.field(default_factory=list)

    def check(self, need: Need) -> None:
        need(all(layer >= 0 for layer in self.hidden_layers), "hidden_layers", "layers >= 0")
        need(len(set(self.hidden_layers)) == len(self.hidden_layers), "hidden_layers", "no repeats")
        need(self.batch_size >= 1, "batch_size", ">= 1")
        need(self.threads >= 0, "threads", ">= 0")
        need(self.augment_copies >= 0, "augment_copies", ">= 0 (0 = no augmented text)")
        need(0 <= self.word_dropout < 1, "word_dropout", "in [0, 1)")
        need(0 <= self.word_swap < 1, "word_swap", "in [0, 1)")
        need(self.word_dropout + self.word_swap < 1, "word_swap", "+ word_dropout < 1")
        need(self.swap_neighbours >= 1, "swap_neighbours", ">= 1")


@dataclasses.dataclass(frozen=True)
class StudentConfig(DistillConfig):
    """``distill.students.<s>``: distill@<s> trains ``checkpoint`` against ``teacher``'s cached
    train-split logits (the :class:`DistillConfig` loss and optimiser) -> models/<s>."""

    teacher: str = ""  # a key of distill.teachers
    # Learn the teacher's logits on its augmented copies too (when it made any: augment_copies).
    augmented: bool = True
    checkpoint: str = "packaged:all-MiniLM-L6-v2"
    pooling: Literal["cls", "mean"] = "mean"
    max_length: int = 128
    lr: float = 1e-4
    # Intermediate-layer matching (off at 0): add ``hidden_weight`` x the mean over layer pairs
    # of 1 - cos(W_i h_student, h_teacher) between mean-pooled hidden states, student layer
    # ``hidden_layers[i]`` against the teacher's i-th cached layer (distill.teachers.<t>.
    # hidden_layers); W_i is a linear map trained with the student and dropped after.
    hidden_weight: float = 0.0
    hidden_layers: list[int] = dataclasses.field(default_factory=list)

    def check(self, need: Need) -> None:
        super().check(need)
        need(bool(self.teacher), "teacher", "a key of distill.teachers")
        need(self.max_length >= 8, "max_length", ">= 8")
        need(self.hidden_weight >= 0, "hidden_weight", ">= 0 (0 = no intermediate matching)")
        need(all(layer >= 0 for layer in self.hidden_layers), "hidden_layers", "layers >= 0")
        need(
            self.hidden_weight == 0 or bool(self.hidden_layers),
            "hidden_layers",
            "one student layer per cached teacher layer when hidden_weight > 0",
        )


@dataclasses.dataclass(frozen=True)
class DistillSection(Section):
    """``distill.*``: teachers whose logits are cached, and students trained against them.

    Both maps are empty by default: dvc.yaml's ``teacher_logits`` and ``distill`` stages are
    ``foreach`` over them, so an empty map means no stage (the sample run has none).
    """

    teachers: Any = dataclasses.field(default_factory=dict)
    students: Any = dataclasses.field(default_factory=dict)

    SECTION: ClassVar[str] = "distill"

    def check(self, need: Need) -> None:
        for key in ("teachers", "students"):
            value = getattr(self, key)
            need(isinstance(value, dict), key, "a mapping name -> settings ({} = none)")

    def teacher(self, name: str) -> TeacherConfig:
        if name not in self.teachers:
            raise ConfigError(
                f"distill.teachers: no teacher {name!r}; known: {', '.join(self.teachers) or 'none'}"
            )
        return build(TeacherConfig, self.teachers[name] or {}, f"distill.teachers.{name}")

    def student(self, name: str) -> StudentConfig:
        if name not in self.students:
            raise ConfigError(
                f"distill.students: no student {name!r}; known: {', '.join(self.students) or 'none'}"
            )
        cfg = build(StudentConfig, self.students[name] or {}, f"distill.students.{name}")
        teacher = self.teacher(cfg.teacher)  # must exist
        if cfg.hidden_weight > 0 and len(cfg.hidden_layers) != len(teacher.hidden_layers):
            raise ConfigError(
                f"distill.students.{name}.hidden_layers: {len(cfg.hidden_layers)} layer(s) "
                f"{cfg.hidden_layers}, but distill.teachers.{cfg.teacher}.hidden_layers caches "
                f"{len(teacher.hidden_layers)} {teacher.hidden_layers}; give one student layer "
                "per cached teacher layer, in the same order"
            )
        return cfg


@_names_the_line
def load_distill_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> DistillSection:
    """``distill.*``: every teacher a transformer under ``models``, every student's teacher
    listed, and no student named like a model (both would write models/<name>)."""
    raw = read_params(path, profile)
    cfg = build(DistillSection, raw.get("distill"), "distill")
    for name in cfg.teachers:
        cfg.teacher(name)
        _require_transformer(raw, name, "distill.teachers", "a teacher is a trained transformer")
    for name in cfg.students:
        cfg.student(name)
        if name in (raw.get("models") or {}):
            raise ConfigError(
                f"distill.students.{name}: also a models entry; both would write models/{name}. "
                "Rename the student (e.g. minilm-distilled)"
            )
    return cfg


# --- tune (finslm tune; finslm/tune.py) ---

TUNE_SPEC_KEYS = ("low", "high", "log", "step", "choices")


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class TuneConfig(Section):
    """Hyper-parameter search with Optuna (``tune.*``; ``finslm tune <model>``, finslm/tune.py).

    ``space.<model>`` maps keys of ``models.<model>`` to a range, ``{low, high}`` (``log: true``
    for a log scale, ``step`` for a grid) or ``{choices: [...]}``; ``fixed.<model>`` holds keys
    at a value for the whole search (e.g. ``soup_size: 1``: one model per trial, not three).
    Trials train on the train split and score validation macro-F1 (``cv`` > 1: the mean over
    K stratified folds of train + validation); the test split is never read.
    """

    # Finished trials (complete or pruned) the study should hold: an interrupted study, or a
    # second worker on the same storage, runs only the rest.
    trials: int = 20
    # Seconds one worker searches before it stops (after the running trial); 0 = no limit.
    timeout: float = 0.0
    # Stop a trial whose per-epoch validation macro-F1 is below the median of earlier trials at
    # the same epoch (``median``), or by successive halving over epochs (``hyperband``).
    pruner: Literal["median", "hyperband", "none"] = "median"
    # Random trials before TPE models the space; also the trials finished before ``median``
    # prunes anything.
    startup_trials: int = 5
    # ``median``: no trial is pruned before this epoch (or fold, with ``cv``).
    warmup_steps: int = 1
    # > 1: the objective is the mean validation macro-F1 over this many folds (finslm cv's).
    cv: int = 0
    # TPE sampler seed; worker ``w`` (``finslm tune --worker w``) samples with seed + 1000 w.
    seed: int = 42
    # Optuna storage: "" = sqlite:///<out>/<study>.db; a SQLAlchemy URL (sqlite:///path.db,
    # postgresql://user@host/db, mysql+pymysql://…) or journal:<file> (a journal file on a
    # shared filesystem). Workers given the same storage and study share one search.
    storage: str = ""
    # RDB storages: each running trial beats every ``heartbeat`` s; a trial silent for 2x that
    # (its worker was killed) is marked failed and its parameters are tried again. 0 = off.
    heartbeat: int = 60
    space: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    SECTION: ClassVar[str] = "tune"

    def check(self, need: Need) -> None:
        need(self.trials >= 1, "trials", ">= 1")
        need(_number(self.timeout) and self.timeout >= 0, "timeout", ">= 0 (0 = no limit)")
        need(self.startup_trials >= 0, "startup_trials", ">= 0")
        need(self.warmup_steps >= 0, "warmup_steps", ">= 0")
        need(self.cv == 0 or self.cv >= 2, "cv", "0 (off) or >= 2 folds")
        need(self.heartbeat >= 0, "heartbeat", ">= 0 (0 = off)")
        for key in ("space", "fixed"):
            value = getattr(self, key)
            need(isinstance(value, Mapping), key, "a mapping of model name -> settings")
            for model, entries in value.items():
                ok = isinstance(entries, Mapping)
                need(ok, f"{key}.{model}", "a mapping of models.<model> keys", value=entries)
        for model, entries in self.space.items():
            need(bool(entries), f"space.{model}", "a non-empty mapping of ranges", value=entries)
            for name, spec in entries.items():
                _check_range(need, f"space.{model}.{name}", spec)


def _check_range(need: Need, key: str, spec: Any) -> None:
    """One search range: ``{low, high[, log][, step]}`` or ``{choices: [...]}``."""
    example = "{low: 1.0e-5, high: 1.0e-3, log: true} or {choices: [cls, mean]}"
    need(isinstance(spec, Mapping) and bool(spec), key, example, value=spec)
    unknown = sorted(set(spec) - set(TUNE_SPEC_KEYS))
    need(not unknown, key, f"made of {', '.join(TUNE_SPEC_KEYS)} (unknown: {unknown})", spec)
    if "choices" in spec:
        choices = spec["choices"]
        need(set(spec) == {"choices"}, key, "either choices or low/high, not both", spec)
        ok = isinstance(choices, list) and len(choices) >= 1
        need(ok, key, "a non-empty list of choices", value=choices)
        simple = all(c is None or isinstance(c, bool | int | float | str) for c in choices)
        need(simple, key, "choices that are numbers, strings or booleans", value=choices)
        need(len(set(map(repr, choices))) == len(choices), key, "choices without repeats", choices)
        return
    low, high = spec.get("low"), spec.get("high")
    need(_number(low) and _number(high), key, f"numbers low and high ({example})", spec)
    need(low < high, key, "low < high", value=spec)
    log = spec.get("log", False)
    need(isinstance(log, bool), key, "log: true or false", value=spec)
    need(not log or low > 0, key, "low > 0 on a log scale", value=spec)
    step = spec.get("step")
    need(step is None or (_number(step) and step > 0), key, "step > 0", value=spec)
    need(step is None or not log, key, "either log or step, not both", value=spec)


@_names_the_line
def load_tune_config(path: str | Path = "params.yaml", *, profile: str = "auto") -> TuneConfig:
    """``tune.*``, each ``space``/``fixed`` entry checked against its model under ``models``:
    the model exists, the key is one of its settings, a range's ends (and every choice) are
    values that setting accepts."""
    raw = read_params(path, profile)
    cfg = build(TuneConfig, raw.get("tune"), "tune")
    models = raw.get("models") or {}
    for key in ("space", "fixed"):
        for model, entries in getattr(cfg, key).items():
            where = f"tune.{key}.{model}"
            if model not in models:
                raise ConfigError(
                    f"{where}: no model {model!r} under models; have {', '.join(models)}"
                )
            base = models[model] or {}
            model_config(model, base)  # a mistake in models.<m> itself is reported as such
            cls = _MODEL_KINDS.get(base.get("kind"), TransformerConfig)
            names = {f.name for f in dataclasses.fields(cls)} - {"kind"}
            for name, spec in entries.items():
                if name not in names:
                    raise ConfigError(
                        f"{where}.{name}: not a setting of models.{model} (kind "
                        f"{base.get('kind')}); known: {', '.join(sorted(names))}"
                    )
                if key == "fixed":
                    _try(model, {**base, **cfg.fixed.get(model, {})}, f"{where}.{name}")
                    continue
                values = spec["choices"] if "choices" in spec else [spec["low"], spec["high"]]
                hint = typing.get_type_hints(cls)[name]
                if "choices" not in spec and hint not in (int, float):
                    raise ConfigError(
                        f"{where}.{name}: a {getattr(hint, '__name__', hint)} setting; give "
                        "{choices: [...]} instead of low/high"
                    )
                if hint is int and not all(isinstance(v, int) for v in values):
                    raise ConfigError(
                        f"{where}.{name}: an integer setting; low/high must be integers"
                    )
                for v in values:
                    _try(model, {**base, **cfg.fixed.get(model, {}), name: v}, f"{where}.{name}")
    return cfg


def _try(model: str, raw: dict[str, Any], where: str) -> None:
    try:
        model_config(model, raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# --- named-entity recognition (the ner:* stages; src/finslm/ner/) ---


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
    trust_remote_code: bool = False

    def check(self, need: Need) -> None:
        super().check(need)
        need(16 <= self.max_length <= 512, "max_length", "between 16 and 512")
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
    # A file that is the test split as it is; "" = a stratified share (test_size) of source.
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
        need(0 < self.test_size < 1, "test_size", "between 0 and 1")
        need(0 < self.val_size < 1, "val_size", "between 0 and 1")
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


@_names_the_line
def load_ner_config(path: str | Path = "params.yaml", *, profile: str = "auto") -> NerConfig:
    """``ner.*``, every model entry checked."""
    cfg = build(NerConfig, read_params(path, profile).get("ner"), "ner")
    for name in cfg.models:
        cfg.model(name)
    return cfg


# --- the whole file ---


@dataclasses.dataclass(frozen=True)
class Params:
    """Every section of ``params.yaml``, typed and validated.

    Stages that own one section may load just that one (``load_export_config`` …): the same
    reader and the same checks, without failing on another stage's section.
    """

    data: DataConfig
    models: dict[str, ModelConfig]
    train: TrainConfig
    export: ExportConfig
    benchmark: BenchmarkConfig
    explain: ExplainConfig
    finetune: FinetuneConfig
    prune: PruneConfig
    tune: TuneConfig
    ner: NerConfig
    distill: DistillSection


# Sections of params.yaml besides ``models`` and the class that reads each.
SECTIONS: dict[str, type[Section]] = {
    "data": DataConfig,
    "train": TrainConfig,
    "export": ExportConfig,
    "benchmark": BenchmarkConfig,
    "explain": ExplainConfig,
    "finetune": FinetuneConfig,
    "prune": PruneConfig,
    "tune": TuneConfig,
    "ner": NerConfig,
    "distill": DistillSection,
}
# Every top-level key params.yaml may have: a section not listed (``datta:``) is an error, not
# silently ignored. A new stage with its own section registers it in SECTIONS.
KNOWN_SECTIONS = ("models", *SECTIONS, QUICK)


@_names_the_line
def load_params(path: str | Path = "params.yaml", *, profile: str = "auto") -> Params:
    """Read and validate the whole params file: every section, and the model names the
    export, explain, finetune and prune sections refer to (when the file has that section).

    Returns the recipe in force (``profile``: ``auto``); the other one is checked too, so a
    bad value in the full recipe fails on the sample, and a bad ``quick`` value on real data.
    """
    params = _load_view(path, profile)
    if profile == "auto":
        raw = read_params(path, "full")
        other = "full" if profile_in_force(raw) == QUICK else QUICK
        if other == "full" or raw.get(QUICK):
            load_params(path, profile=other)
    return params


def _load_view(path: str | Path, profile: str) -> Params:
    raw = read_params(path, profile)
    models = raw.get("models") or {}
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{path}: 'models' must map at least one model name to its settings")
    built = {n: model_config(n, c) for n, c in models.items()}  # first: the sections refer to them
    sections = {name: build(cls, raw.get(name), name) for name, cls in SECTIONS.items()}
    # The sections that derive models (prune, finetune, distill) before export, which lists
    # them: a misspelled prune.model is reported there, not as an unknown export.models entry.
    checks = {
        "finetune": load_finetune_config,
        "prune": load_prune_config,
        "distill": load_distill_config,
        "export": load_export_config,
        "explain": load_explain_config,
        "tune": load_tune_config,
    }
    for name, check in checks.items():
        if name in raw:
            check(path, profile=profile)
    return Params(models=built, **sections)
