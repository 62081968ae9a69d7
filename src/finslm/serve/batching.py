"""Micro-batching: concurrent requests share model calls, one call at a time.

The engine runs best on one batch at a time with all cores (onnxruntime's intra-op threads), so
one worker thread runs the model and an asyncio task feeds it. The feeder takes the first
waiting request, waits at most ``max_wait_s`` for more, also takes everything already waiting
(up to ``max_batch`` texts), then sorts those texts by length and cuts them into calls of at
most ``max_batch`` texts: sorting keeps a short headline out of a batch padded to a long
paragraph (length-aware batching), which is what padding costs on CPU.

While a call runs, new requests queue; the next round takes them together. So at low load a
request runs alone at once (no wait), and under load batches grow by themselves: ``max_wait_s``
only matters when a bigger batch is worth a deliberate delay (a GPU, long texts).

A request whose caller gave up (timeout, disconnect) before its turn is skipped, and the number
of texts waiting is bounded (``max_queue``): past it :class:`QueueFull` tells the caller to come
back later instead of growing an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
from collections.abc import Callable

import numpy as np

PredictFn = Callable[[list[str]], np.ndarray]


class QueueFull(RuntimeError):
    """More texts are waiting than ``max_queue`` allows (HTTP 503, retry later)."""


class Closed(RuntimeError):
    """The batcher is draining for shutdown and takes no new work (HTTP 503)."""


@dataclasses.dataclass
class _Item:
    texts: list[str]
    future: asyncio.Future
    out: np.ndarray | None = None


class Batcher:
    """Runs ``predict(texts) -> (n, n_labels)`` for many concurrent callers in shared calls.

    ``on_batch(n_texts, seconds)`` is called after every model call (metrics).
    """

    def __init__(
        self,
        predict: PredictFn,
        max_batch: int = 1,
        max_wait_s: float = 0.0,
        max_queue: int = 512,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.predict = predict
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.max_queue = int(max_queue)
        self.on_batch = on_batch
        self.pending = 0  # texts submitted and not answered yet
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closing = False

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="finslm-model")
        self._closing = False
        self._task = asyncio.create_task(self._loop(), name="finslm-batcher")

    async def run_in_model_thread(self, fn: Callable, *args):
        """Run ``fn`` on the model thread (warm-up runs where requests will)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, texts: list[str]) -> np.ndarray:
        """Probabilities for ``texts``, shape (len(texts), n_labels), once their turn came."""
        if self._closing or self._queue is None:
            raise Closed("the server is shutting down")
        if self.pending + len(texts) > self.max_queue:
            raise QueueFull(
                f"{self.pending} texts are waiting for the model; the limit is {self.max_queue} "
                "(max_queue)"
            )
        item = _Item(list(texts), asyncio.get_running_loop().create_future())
        self.pending += len(item.texts)
        self._queue.put_nowait(item)
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(Closed("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _collect(self) -> list[_Item]:
        queue = self._queue
        items = [await queue.get()]
        n = len(items[0].texts)
        if self.max_wait_s > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.max_wait_s
            while n < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
                items.append(item)
                n += len(item.texts)
        while n < self.max_batch and not queue.empty():
            item = queue.get_nowait()
            items.append(item)
            n += len(item.texts)
        return [item for item in items if not item.future.done()]  # callers that gave up

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            if not items:
                continue
            # (length, item, position) for every text; sorted so each call pads little.
            order = sorted(
                ((len(t), i, j) for i, item in enumerate(items) for j, t in enumerate(item.texts)),
            )
            try:
                for start in range(0, len(order), self.max_batch):
                    chunk = order[start : start + self.max_batch]
                    texts = [items[i].texts[j] for _, i, j in chunk]
                    t0 = loop.time()
                    proba = await loop.run_in_executor(self._executor, self.predict, texts)
                    if self.on_batch is not None:
                        self.on_batch(len(texts), loop.time() - t0)
                    for row, (_, i, j) in zip(proba, chunk, strict=True):
                        item = items[i]
                        if item.out is None:
                            item.out = np.empty((len(item.texts), proba.shape[1]), proba.dtype)
                        item.out[j] = row
            except Exception as exc:  # the model failed: every caller in this round hears why
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item in items:
                if not item.future.done():
                    item.future.set_result(item.out)
