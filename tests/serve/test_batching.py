"""The micro-batcher on its own: grouping, length-aware order, give-ups, errors, drain."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from finslm.serve.batching import Batcher, Closed, QueueFull, plan_calls


class Recorder:
    """predict() that records each call and can be held at a gate."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.entered.set()
        self.calls.append(list(texts))
        assert self.gate.wait(10)
        return np.array([[len(t), 0.0] for t in texts])


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_waiting_requests_share_calls_sorted_by_length():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=4, max_wait_s=0.0)
        await b.start()
        rec.gate.clear()
        first = asyncio.create_task(b.submit(["first"]))
        await asyncio.to_thread(rec.entered.wait, 5)  # the model is busy with `first`
        texts = ["a" * n for n in (9, 1, 7, 3, 5, 2)]
        rest = [asyncio.create_task(b.submit([t])) for t in texts]
        await asyncio.sleep(0.05)
        rec.gate.set()
        out = await asyncio.gather(first, *rest)
        await b.close()
        return texts, out

    texts, out = run(main())
    # The six that queued behind `first`: the next round takes the first 4 (max_batch) in
    # arrival order and runs them shortest first; the last 2 make the round after.
    assert rec.calls[0] == ["first"]
    assert [len(t) for t in rec.calls[1]] == [1, 3, 7, 9]
    assert [len(t) for t in rec.calls[2]] == [2, 5]
    # Each caller got its own row back.
    assert [int(o[0, 0]) for o in out[1:]] == [len(t) for t in texts]


def test_a_request_larger_than_max_batch_is_split_and_reassembled():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=2)
        await b.start()
        out = await b.submit(["ccc", "a", "bb"])
        await b.close()
        return out

    out = run(main())
    assert out[:, 0].tolist() == [3, 1, 2]  # request order, whatever the call order
    assert [len(c) for c in rec.calls] == [2, 1]


def test_max_wait_groups_requests_that_arrive_close_together():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=8, max_wait_s=0.2)
        await b.start()
        tasks = []
        for t in ("x", "yy", "zzz"):
            tasks.append(asyncio.create_task(b.submit([t])))
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        await b.close()

    run(main())
    assert rec.calls == [["x", "yy", "zzz"]]


def test_queue_bound_gave_up_callers_and_model_errors():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=1, max_queue=2)
        await b.start()
        rec.gate.clear()
        busy = asyncio.create_task(b.submit(["busy"]))
        await asyncio.to_thread(rec.entered.wait, 5)
        with pytest.raises(TimeoutError):  # gives up while waiting
            await asyncio.wait_for(b.submit(["gave up"]), 0.05)
        with pytest.raises(QueueFull, match=r"limit is 2 \(max_queue\)"):
            await b.submit(["a", "b", "c"])
        rec.gate.set()
        await busy
        await asyncio.sleep(0.05)
        await b.close()

    run(main())
    assert ["gave up"] not in rec.calls  # skipped, never run

    def broken(texts):
        raise RuntimeError("engine exploded")

    async def failing():
        b = Batcher(broken)
        await b.start()
        with pytest.raises(RuntimeError, match="engine exploded"):
            await b.submit(["x"])
        assert (await b.run_in_model_thread(lambda: 41 + 1)) == 42
        await b.close()

    run(failing())


def test_close_drains_in_flight_requests_then_refuses_new_ones():
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=1)
        await b.start()
        rec.gate.clear()
        in_flight = [asyncio.create_task(b.submit([t])) for t in ("one", "two")]
        await asyncio.to_thread(rec.entered.wait, 5)
        closing = asyncio.create_task(b.close(timeout_s=5))
        await asyncio.sleep(0.05)
        with pytest.raises(Closed):
            await b.submit(["late"])
        rec.gate.set()
        done = await asyncio.gather(*in_flight)
        await closing
        return done

    done = run(main())
    assert [int(d[0, 0]) for d in done] == [3, 3]
    assert rec.calls == [["one"], ["two"]]


def test_plan_calls_cuts_where_padding_costs_more_than_a_call():
    from finslm.serve.batching import plan_calls

    assert plan_calls([], 4) == [] and plan_calls([5], 4, 32) == [1]
    assert plan_calls([1] * 5, 2) == [2, 4, 5]  # no call cost: runs of max_batch
    # Four short texts and two long ones: two calls beat one padded to 100 (224 < 610) ...
    assert plan_calls([1, 1, 1, 1, 100, 100], 8, 10) == [4, 6]
    # ... unless a call costs more than the padding it saves; and never more than max_batch.
    assert plan_calls([1, 1, 1, 1, 100, 100], 8, 500) == [6]
    assert plan_calls([1, 1, 1, 1, 100, 100], 3, 500) == [3, 6]
    assert plan_calls([10, 11, 12, 13], 8, 5) == [4]  # similar lengths stay together


def test_a_round_of_mixed_lengths_runs_as_calls_of_similar_lengths():
    rec = Recorder()
    texts = ["a" * n for n in (40, 2, 41, 3, 2, 39)]

    async def main():
        b = Batcher(rec, max_batch=8, lengths=lambda ts: [len(t) for t in ts], call_cost=8)
        await b.start()
        rec.gate.clear()
        first = asyncio.create_task(b.submit(["first"]))
        await asyncio.to_thread(rec.entered.wait, 5)
        rest = [asyncio.create_task(b.submit([t])) for t in texts]
        await asyncio.sleep(0.05)
        rec.gate.set()
        out = await asyncio.gather(first, *rest)
        await b.close()
        return out

    out = run(main())
    assert [[len(t) for t in call] for call in rec.calls[1:]] == [[2, 2, 3], [39, 40, 41]]
    assert [int(o[0, 0]) for o in out[1:]] == [len(t) for t in texts]


def test_plan_calls_ties_keep_fewer_larger_calls():
    # one call: 1 + 2*2 = 5; two calls: (1+1) + (1+2) = 5: a tie -> one call
    assert plan_calls([1, 2], max_batch=2, call_cost=1) == [2]


def test_a_model_error_reaches_every_caller_in_the_round():
    import asyncio

    from finslm.serve.batching import Batcher

    def broken(texts):
        raise RuntimeError("engine exploded")

    async def main():
        b = Batcher(broken, max_batch=8, max_wait_s=0.3)
        await b.start()
        results = await asyncio.wait_for(
            asyncio.gather(b.submit(["a"]), b.submit(["b"]), return_exceptions=True), 3
        )
        await b.close()
        return results

    results = asyncio.run(main())
    assert [type(r).__name__ for r in results] == ["RuntimeError", "RuntimeError"]


def test_a_caller_who_gives_up_mid_round_has_the_rest_of_its_calls_skipped():
    # One request of 6 texts runs as 3 calls of 2; its caller times out during the first call.
    # Its other calls must not run (they would hold up everyone queued behind them).
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=2)
        await b.start()
        rec.gate.clear()
        big = asyncio.create_task(b.submit([f"t{i}" for i in range(6)]))
        await asyncio.to_thread(rec.entered.wait, 5)
        big.cancel()  # the caller leaves (a timeout cancels the same way)
        await asyncio.sleep(0.05)
        rec.gate.set()
        after = await b.submit(["next"])  # the model thread is alive and answers
        await b.close()
        return after

    after = run(main())
    assert [len(call) for call in rec.calls] == [2, 1]  # the first call, then "next"
    assert rec.calls[-1] == ["next"] and int(after[0, 0]) == 4
