"""Run a token classifier: words -> tags, and raw text -> entity spans with character offsets.

A :class:`Tagger` opens a trained folder (``models/<m>``, kind ``ner-transformer``: PyTorch) or
an export folder (``exports/<m>``, kind ``ner-onnx``: onnxruntime, ``onnx-fp32`` / ``onnx-opt`` /
``onnx-int8``). Raw text is split into words (:func:`finslm.ner.align.split_words`), the words
into sub-tokens; each word is scored on its first sub-token, and consecutive word tags decode
into entities, so sub-words are always merged. Word scores become tags by the model's
``decode`` (``finslm.json``; :mod:`finslm.ner.decode`): constrained Viterbi (valid IOB2) by
default, or argmax (a stray ``I-T`` then starts an entity).

    >>> tagger = Tagger("exports/ner-minilm", "onnx-int8")
    >>> tagger.entities(["Acme Corp. hired Jane Doe in Boston."])[0]
    [{'text': 'Acme Corp.', 'type': 'ORG', 'start': 0, 'end': 10, 'score': 0.99}, ...]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finslm.models import ModelError, read_meta
from finslm.ner.align import shape_type_ids, split_words, word_scores
from finslm.ner.context import NO_CONTEXT, Context, join, less
from finslm.ner.decode import DECODES
from finslm.ner.decode import decode as decode_tags
from finslm.ner.tags import spans, to_iob2
from finslm.predict import ONNX_FILES, TOKENIZER_FILES, check_config
from finslm.tasks import NER_KINDS, TOKEN_TASK

TORCH_KIND, ONNX_KIND = NER_KINDS
BACKENDS = ("torch-fp32", *ONNX_FILES)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def window_plan(covered: int, n: int, overlap: int = 16) -> tuple[int, int]:
    """(words this window keeps, where the next one starts), relative to the window's start.

    ``covered`` of the window's ``n`` words got a first sub-token. If all did, keep them all.
    Otherwise the next window starts ``overlap`` words (at most half the covered ones) before
    the cut, and the overlap is shared: its first half from this window, the rest from the next,
    so every word near a cut is scored with context on both sides.
    """
    if covered >= n:
        return n, n
    if covered <= 0:
        return 0, 1
    lap = min(overlap, covered // 2)
    return covered - lap // 2, covered - lap


class WordEncoder:
    """Lists of words -> padded int64 ``input_ids`` / ``attention_mask`` / ``token_type_ids`` and
    each row's word ids, with the ``tokenizers`` pipeline of ``tokenizer.json`` (no torch).
    ``word_shape``: token type ids carry each word's capitalisation (the model was trained so,
    ``finslm.json`` says ``word_shape: true``; :func:`finslm.ner.align.shape_type_ids`)."""

    def __init__(self, model_dir: Path, max_length: int, word_shape: bool = False):
        from tokenizers import Tokenizer

        path = Path(model_dir) / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"{model_dir}: no tokenizer.json (token classification needs one)")
        config_path = Path(model_dir) / "tokenizer_config.json"
        config = json.loads(config_path.read_text("utf-8")) if config_path.is_file() else {}
        pad = config.get("pad_token") or "[PAD]"
        pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
        tok = Tokenizer.from_file(str(path))
        tok.enable_truncation(max_length=int(max_length))
        tok.enable_padding(pad_id=tok.token_to_id(pad) or 0, pad_token=pad)
        self._tok = tok
        self.word_shape = bool(word_shape)

    def __call__(self, words: list[list[str]]) -> tuple[dict[str, np.ndarray], list[list]]:
        if len(words) == 1:
            encs = [self._tok.encode(words[0], is_pretokenized=True)]
        else:
            encs = self._tok.encode_batch(words, is_pretokenized=True)
        if self.word_shape:
            types = [shape_type_ids(w, e.word_ids) for w, e in zip(words, encs, strict=True)]
        else:
            types = [e.type_ids for e in encs]
        feeds = {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array(types, dtype=np.int64),
        }
        return feeds, [e.word_ids for e in encs]


class Tagger:
    """A token classifier on one backend; ``labels[i]`` is column ``i`` of every score row."""

    task = TOKEN_TASK  # what finslm.serve keys its routes on (/v1/entities)

    def __init__(
        self,
        model_dir: str | Path,
        backend: str = "auto",
        threads: int = 0,
        graph=None,
        decode: str | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.meta = read_meta(self.model_dir, ner=True)
        kind = self.meta.get("kind")
        if kind not in (TORCH_KIND, ONNX_KIND):
            raise ModelError(
                f"{self.model_dir}: kind {kind!r} is not a token classifier (want {TORCH_KIND} "
                "from `dvc repro train_ner@<m>` or ner-onnx from export_ner@<m>)"
            )
        if backend == "auto":
            backend = "torch-fp32" if kind == TORCH_KIND else "onnx-int8"
        if backend not in BACKENDS or (kind == ONNX_KIND and backend == "torch-fp32"):
            usable = BACKENDS[1:] if kind == ONNX_KIND else BACKENDS
            raise ModelError(f"backend {backend!r}: choose one of {', '.join(usable)}")
        self.backend = backend
        check_config(self.model_dir, self.meta)
        self.labels: list[str] = list(self.meta["labels"])
        self.max_length = int(self.meta.get("max_length", 128))
        # words of document context each side the model was trained with (0: none)
        self.context_words = int(self.meta.get("context_words", 0))
        self.decode = decode or str(self.meta.get("decode", "viterbi"))
        if self.decode not in DECODES:
            raise ModelError(f"decode {self.decode!r}: choose one of {', '.join(DECODES)}")
        self.encoder = WordEncoder(
            self.model_dir, self.max_length, word_shape=bool(self.meta.get("word_shape"))
        )
        if backend == "torch-fp32":
            import torch
            from transformers import AutoModelForTokenClassification

            from finslm.train.heads import no_hf_progress

            if threads > 0:
                torch.set_num_threads(threads)
            self._torch = torch
            with no_hf_progress():
                self.model = AutoModelForTokenClassification.from_pretrained(
                    self.model_dir, attn_implementation="eager"
                ).eval()
            import inspect

            self._inputs = set(inspect.signature(self.model.forward).parameters)
            self.graph_path = None
        else:
            from finslm.predict import OnnxPredictor

            folder = self.model_dir
            if kind == TORCH_KIND:  # models/<m> -> exports/<m>, as the sentiment predictor does
                folder = self.model_dir.parent.parent / "exports" / self.model_dir.name
            path = Path(graph) if graph else folder / ONNX_FILES[backend]
            if not path.is_file():
                raise ModelError(
                    f"{path}: missing; run `dvc repro export_ner@{self.meta.get('name')}`"
                )
            # The session (threads, providers) exactly as the sentiment ONNX backends open it.
            onnx = OnnxPredictor(folder, {**self.meta, "labels": self.labels}, threads, graph=path)
            self.session, self._inputs = onnx.session, set(onnx.input_names)
            self.graph_path = path

    @property
    def name(self) -> str:
        return f"{self.meta.get('name') or self.model_dir.name}/{self.backend}"

    def files(self) -> list[Path]:
        base = [self.model_dir / "finslm.json"] + [
            self.model_dir / f for f in TOKENIZER_FILES if (self.model_dir / f).is_file()
        ]
        if self.graph_path is not None:
            from finslm.predict import onnx_graph_files

            return base + onnx_graph_files(self.graph_path)
        weights = [p for p in self.model_dir.glob("*") if p.suffix in {".safetensors", ".bin"}]
        return base + [self.model_dir / "config.json", *weights]

    def sub_logits(self, words: list[list[str]]) -> tuple[np.ndarray, list[list]]:
        """(batch, seq, n_labels) float32 logits and each row's word ids."""
        feeds, word_ids = self.encoder(words)
        if self.graph_path is None:
            torch = self._torch
            tensors = {k: torch.from_numpy(v) for k, v in feeds.items() if k in self._inputs}
            with torch.inference_mode():
                logits = self.model(**tensors).logits.float().numpy()
        else:
            feeds = {k: v for k, v in feeds.items() if k in self._inputs}
            logits = self.session.run(None, feeds)[0]
        return logits, word_ids

    def word_logits(
        self,
        words: Sequence[Sequence[str]],
        batch_size: int = 32,
        bucket: bool = False,
        contexts: Sequence[Context] | None = None,
    ) -> list[np.ndarray]:
        """Per sentence, (n_words, n_labels) logits read off each word's first sub-token.

        ``bucket``: batch the sentences in order of length (little padding; bulk tagging), the
        results still in input order. Off for evaluation and parity, whose INT8 figures depend
        on batch-mates (dynamic activation scales), so they stay comparable with earlier runs.

        ``contexts``: per sentence, document words before and after it
        (:mod:`finslm.ner.context`; a model trained with ``context_words``), encoded around the
        sentence and not tagged. Where they do not fit in ``max_length`` with the whole
        sentence they are halved, then dropped, as in training.

        A sentence longer than the model's ``max_length`` sub-tokens is tagged in overlapping
        windows (:func:`window_plan`), so no word past the limit is lost (a word longer than a
        whole window is scored on its first sub-token, as any word is).
        """
        words = [list(w) for w in words]
        contexts = list(contexts) if contexts is not None else [NO_CONTEXT] * len(words)
        if len(contexts) != len(words):
            raise ValueError(f"{len(contexts)} contexts for {len(words)} sentences")
        out = [np.empty((len(w), len(self.labels)), dtype=np.float32) for w in words]
        big = np.zeros(len(self.labels), dtype=np.float32)
        big[0] = 30.0  # no room for even one sub-token (max_length <= 2): certain O
        # (sentence, first word of the window, first word this window writes, share of the
        # context kept: > 0 only for a whole sentence with context); a sentence of no words
        # has nothing to tag (its logits are (0, n_labels))
        todo = [(i, 0, 0, 1.0 if any(contexts[i]) else 0.0) for i in range(len(words)) if words[i]]
        while todo:
            if bucket and len(todo) > batch_size:
                todo.sort(key=lambda item: len(words[item[0]]) - item[1])
            later = []
            for b in range(0, len(todo), batch_size):
                chunk = todo[b : b + batch_size]
                inputs = [
                    join(words[i], contexts[i], keep) if keep else (words[i][s:] or ["."], 0)
                    for i, s, _, keep in chunk
                ]
                logits, ids = self.sub_logits([w for w, _ in inputs])
                for row, wid, (i, s, w0, keep), (joined, at) in zip(
                    logits, ids, chunk, inputs, strict=True
                ):
                    covered = 1 + max((x for x in wid if x is not None), default=-1)
                    if keep:  # with context: all of the sentence or try again with less
                        n = len(words[i])
                        if covered >= at + n:
                            out[i] = word_scores(row, wid, len(joined), o_index=0)[at : at + n]
                        else:
                            later.append((i, 0, 0, less(keep)))
                        continue
                    n = len(words[i]) - s
                    scores = word_scores(row, wid, n, o_index=0)
                    keep_words, step = window_plan(covered, n)
                    if keep_words == 0:  # not one sub-token fitted (see ``big``)
                        scores[0], keep_words, step = big, 1, 1
                    out[i][w0 : s + keep_words] = scores[w0 - s : keep_words]
                    if s + keep_words < len(words[i]):
                        later.append((i, s + step, s + keep_words, 0.0))
            todo = later
        return out

    def tag_words(
        self,
        words: Sequence[Sequence[str]],
        batch_size: int = 32,
        bucket: bool = False,
        contexts: Sequence[Context] | None = None,
    ) -> list[tuple[list[str], np.ndarray]]:
        """Per sentence: (IOB2 tags, probability of each word's tag), tags decoded by
        ``self.decode`` (an IO-labelled model's runs of ``I-T`` become ``B-T I-T …``);
        ``contexts`` as in :meth:`word_logits`."""
        results = []
        for logits in self.word_logits(words, batch_size, bucket, contexts):
            probs = _softmax(logits.astype(np.float64))
            ids = decode_tags(logits, self.labels, self.decode)
            tags = to_iob2([self.labels[i] for i in ids])
            results.append((tags, probs[np.arange(len(ids)), ids]))
        return results

    def entities(self, texts: Sequence[str], batch_size: int = 32) -> list[list[dict[str, Any]]]:
        """Entity spans per text: ``{text, type, start, end, score}``, character offsets into the
        text (``end`` exclusive), ``score`` the mean probability of the entity's word tags.
        Texts are batched in order of length and tagged whole (long ones in windows)."""
        split = [split_words(str(t)) for t in texts]
        tagged = self.tag_words([[w for w, _, _ in s] for s in split], batch_size, bucket=True)
        out = []
        for text, words, (tags, probs) in zip(texts, split, tagged, strict=True):
            found = []
            for kind, a, b in spans(tags):
                start, end = words[a][1], words[b - 1][2]
                found.append(
                    {
                        "text": str(text)[start:end],
                        "type": kind,
                        "start": start,
                        "end": end,
                        "score": round(float(np.mean(probs[a:b])), 4),
                    }
                )
            out.append(found)
        return out

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Sub-tokens per text as the model sees it (capped at ``max_length``): what a batch of
        these texts pads to (the server's batcher cuts rounds of requests by it)."""
        words = [[w for w, _, _ in split_words(str(t))] or ["."] for t in texts]
        feeds, _ = self.encoder(words)
        return [int(n) for n in feeds["attention_mask"].sum(axis=1)]

    def num_parameters(self) -> int:
        return int(self.meta.get("params", 0))
