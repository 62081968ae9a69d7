"""Micro-batching: concurrent requests share model calls, one call at a time.

The engine runs best on one batch at a time with all cores (onnxruntime's intra-op threads), so
one model thread runs every call. It takes the first waiting request, waits at most
``max_wait_s`` for more, also takes everything already waiting (up to ``max_batch`` texts),
then sorts those texts by length and cuts them into calls of at most ``max_batch`` texts:
sorting keeps a short headline out of a batch padded to a long paragraph (length-aware
batching), which is what padding costs on CPU.

Where the cuts go (:func:`plan_calls`): with ``call_cost`` > 0 and a ``lengths`` function
(tokens per text; characters without one), the sorted round is cut into the calls that minimise
the padded tokens plus ``call_cost`` tokens per call, so a round of concurrent requests, whose
lengths are as mixed as the traffic, is run as a few calls of similar lengths instead of one
call padded to its longest text (measured in docs/serving.md: about 1.3x the sentences/s on
CPU). ``call_cost=0`` cuts plain runs of ``max_batch``.

While a call runs, new requests queue; the next round takes them together. So at low load a
request runs alone at once (no wait), and under load batches grow by themselves: ``max_wait_s``
only matters when a bigger batch is worth a deliberate delay (a GPU, long texts). The thread
pulls from a plain ``queue.Queue`` and answers through ``call_soon_threadsafe``: two thread
hand-offs per request and no extra event-loop task in between, which is most of the overhead
left at batch 1.

A request whose caller gave up (timeout, disconnect) is skipped, before its turn or between the
calls of its round, and the number
of texts waiting is bounded (``max_queue``): past it :class:`QueueFull` tells the caller to come
back later instead of growing an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

PredictFn = Callable[[list[str]], Sequence]
LengthsFn = Callable[[list[str]], Sequence[int]]


def plan_calls(lengths: Sequence[int], max_batch: int, call_cost: float = 0.0) -> list[int]:
    """Where to cut texts sorted by ``lengths`` (ascending) into model calls: the end of each.

    A call of ``n`` texts costs ``call_cost + n * (its longest length)`` (every text is padded
    to the longest); the plan minimises the sum over calls, at most ``max_batch`` texts a call
    (dynamic programming, O(len * max_batch)). ``call_cost <= 0``: runs of ``max_batch``.
    """
    n = len(lengths)
    if call_cost <= 0 or n <= 1:
        return [min(end, n) for end in range(max_batch, n + max_batch, max_batch)]
    best = [0.0] + [float("inf")] * n
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[j - 1]
        for i in range(max(0, j - max_batch), j):
            cost = best[i] + call_cost + (j - i) * longest
            if cost < best[j]:  # ties keep the smaller i: fewer, larger calls
                best[j], start[j] = cost, i
    ends, j = [], n
    while j > 0:
        ends.append(j)
        j = start[j]
    return ends[::-1]


class QueueFull(RuntimeError):
    """More texts are waiting than ``max_queue`` allows (HTTP 503, retry later)."""


class Closed(RuntimeError):
    """The batcher is draining for shutdown and takes no new work (HTTP 503)."""


@dataclasses.dataclass
class _Item:
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    out: list | None = None

    def answer(self, result=None, error: BaseException | None = None) -> None:
        """Resolve the caller's future from the model thread (unless the caller gave up)."""

        def resolve() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(resolve)


_STOP = object()


def stack_rows(rows: list):
    """One caller's answers in its order: rows of probabilities as one (n, n_labels) array;
    anything else (a token classifier's entity lists) as the list itself."""
    return np.stack(rows) if rows and isinstance(rows[0], np.ndarray) else rows


class Batcher:
    """Runs ``predict(texts) -> (n, n_labels)`` for many concurrent callers in shared calls
    (or ``predict(texts) -> one answer per text``, such as a token classifier's entity lists).

    ``on_batch(n_texts, seconds)`` is called after every model call (metrics), on the model
    thread.
    """

    def __init__(
        self,
        predict: PredictFn,
        max_batch: int = 1,
        max_wait_s: float = 0.0,
        max_queue: int = 512,
        on_batch: Callable[[int, float], None] | None = None,
        lengths: LengthsFn | None = None,
        call_cost: float = 0.0,
    ):
        self.predict = predict
        self.lengths = lengths
        self.call_cost = float(call_cost)
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.max_queue = int(max_queue)
        self.on_batch = on_batch
        self.pending = 0  # texts submitted and not answered yet (event-loop side)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closing = False

    async def start(self) -> None:
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="finslm-model", daemon=True)
        self._thread.start()

    async def run_in_model_thread(self, fn: Callable, *args):
        """Run ``fn`` where requests run, between batches (warm-up)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((fn, args, future, loop))
        return await future

    async def submit(self, texts: list[str]) -> np.ndarray:
        """Probabilities for ``texts``, shape (len(texts), n_labels), once their turn came."""
        if self._closing or self._thread is None:
            raise Closed("the server is shutting down")
        if self.pending + len(texts) > self.max_queue:
            raise QueueFull(
                f"{self.pending} texts are waiting for the model; the limit is {self.max_queue} "
                "(max_queue)"
            )
        loop = asyncio.get_running_loop()
        item = _Item(list(texts), loop.create_future(), loop)
        self.pending += len(item.texts)
        self._queue.put(item)
        try:
            return await item.future
        finally:
            self.pending -= len(item.texts)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking work, let queued and running requests finish (up to ``timeout_s``)."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pending > 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, max(0.0, deadline - loop.time()) + 1)

    # --- the model thread ---

    def _get(self, timeout: float | None = None):
        """The next queued entry; warm-up jobs run at once, in queue order."""
        while True:
            entry = self._queue.get(timeout=timeout) if timeout is not None else self._queue.get()
            if isinstance(entry, tuple):  # (fn, args, future, loop) from run_in_model_thread
                fn, args, future, loop = entry
                try:
                    result, error = fn(*args), None
                except Exception as exc:
                    result, error = None, exc
                _Item([], future, loop).answer(result, error)
                continue
            return entry

    def _collect(self) -> tuple[list[_Item], bool]:
        """(items for the next round, stop?)."""
        first = self._get()
        if first is _STOP:
            return [], True
        items, n, stop = [first], len(first.texts), False
        deadline = time.monotonic() + self.max_wait_s
        while n < self.max_batch:
            left = deadline - time.monotonic()
            try:
                item = self._get(timeout=max(0.0, left))  # 0: only what is already queued
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            items.append(item)
            n += len(item.texts)
        return [item for item in items if not item.future.done()], stop

    def _loop(self) -> None:
        while True:
            items, stop = self._collect()
            if items:
                self._run(items)
            if stop:
                return

    def _lengths(self, texts: list[str]) -> list[int]:
        if self.lengths is not None and self.call_cost > 0 and len(texts) > 1:
            return [int(n) for n in self.lengths(texts)]
        return [len(t) for t in texts]

    def _run(self, items: list[_Item]) -> None:
        try:
            where = [(i, j) for i, item in enumerate(items) for j in range(len(item.texts))]
            lengths = self._lengths([items[i].texts[j] for i, j in where])
            # (length, item, position) for every text; sorted so each call pads little.
            order = sorted((n, i, j) for n, (i, j) in zip(lengths, where, strict=True))
            ends = plan_calls([n for n, _, _ in order], self.max_batch, self.call_cost)
            for start, end in zip([0, *ends[:-1]], ends, strict=True):
                # A caller that gave up (timeout, disconnect) since the round began: skip the
                # rest of its texts, so abandoned work does not delay the requests behind it.
                chunk = [(n, i, j) for n, i, j in order[start:end] if not items[i].future.done()]
                if not chunk:
                    continue
                texts = [items[i].texts[j] for _, i, j in chunk]
                t0 = time.perf_counter()
                answers = self.predict(texts)
                if self.on_batch is not None:
                    self.on_batch(len(texts), time.perf_counter() - t0)
                for row, (_, i, j) in zip(answers, chunk, strict=True):
                    item = items[i]
                    if item.out is None:
                        item.out = [None] * len(item.texts)
                    item.out[j] = row
        except Exception as exc:  # the model failed: every caller in this round hears why
            for item in items:
                item.answer(error=exc)
            return
        for item in items:
            if not item.future.done():  # done is final: a skipped text's caller has left
                item.answer(stack_rows(item.out))
