"""``distill``: teachers, their cached logits and the students distilled from them
(the teacher_logits and distill stages)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal

from finslm.config.base import SEED_RULE, ConfigError, Need, Section, build, is_seed
from finslm.config.prune import DistillConfig
from finslm.config.reader import names_the_line, read_params, require_transformer


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
        need(is_seed(self.augment_seed), "augment_seed", SEED_RULE)
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


@names_the_line
def load_distill_config(
    path: str | Path = "params.yaml", *, profile: str = "auto"
) -> DistillSection:
    """``distill.*``: every teacher a transformer under ``models``, every student's teacher
    listed, and no student named like a model (both would write models/<name>)."""
    raw = read_params(path, profile)
    cfg = build(DistillSection, raw.get("distill"), "distill")
    for name in cfg.teachers:
        cfg.teacher(name)
        require_transformer(raw, name, "distill.teachers", "a teacher is a trained transformer")
    for name in cfg.students:
        cfg.student(name)
        if name in (raw.get("models") or {}):
            raise ConfigError(
                f"distill.students.{name}: also a models entry; both would write models/{name}. "
                "Rename the student (e.g. minilm-distilled)"
            )
    return cfg
