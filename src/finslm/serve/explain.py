"""``POST /v1/explain``: one sentence's word attributions (LIME or SHAP) on the served model.

Reuses :class:`finslm.explain.Explainer` on the served predictor, so an explanation is of the
exact model that answers ``/v1/classify``. One explanation costs ``explain_samples`` model calls
(about a second), so explanations run one at a time in their own thread, beside the batcher's
model thread, with at most ``explain_queue`` waiting (more: 503) and their own timeout. A timed-out
explanation keeps its slot until its thread finishes: the Explainer is not re-entrant, and an
abandoned computation still occupies the CPU.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util

from finslm.serve.errors import ApiError
from finslm.serve.settings import ServeSettings

# Third-party package each method needs (absent from the slim serving install).
METHOD_PACKAGES = {"lime": "lime", "shap": "shap"}


class ExplainService:
    def __init__(self, predictor, settings: ServeSettings):
        self.predictor = predictor
        self.settings = settings
        self._explainer = None
        self._slot = asyncio.Semaphore(1)
        self._waiting = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="finslm-explain"
        )

    def _explainer_for(self):
        if self._explainer is None:
            from finslm.explain.attributions import Explainer, MethodSettings

            n = self.settings.explain_samples
            settings = MethodSettings(shap_max_evals=n, lime_samples=n, batch_size=64)
            self._explainer = Explainer(self.predictor, None, settings, methods=("lime", "shap"))
        return self._explainer

    def _run(self, text: str, method: str, target: str | None):
        return self._explainer_for().explain(text, target=target, methods=(method,))

    async def explain(self, text: str, method: str, target: str | None) -> dict:
        package = METHOD_PACKAGES[method]
        if importlib.util.find_spec(package) is None:
            raise ApiError(
                501,
                "method_unavailable",
                f"method: {method!r} needs the {package!r} package, which this install lacks "
                "(the slim serving install has no explainers); install finslm with its full "
                "dependencies, or use another method",
                "method",
            )
        if self._slot.locked() and self._waiting >= self.settings.explain_queue:
            raise ApiError(
                503,
                "busy",
                f"explain: {self._waiting} explanations are already waiting (explain_queue); "
                "retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        self._waiting += 1
        try:
            await self._slot.acquire()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, self._run, text, method, target)
        job.add_done_callback(lambda _: self._slot.release())
        try:
            explanation = await asyncio.wait_for(
                asyncio.shield(job), self.settings.explain_timeout_s
            )
        except TimeoutError:
            raise ApiError(
                504,
                "timeout",
                f"explain: took longer than {self.settings.explain_timeout_s:g} s "
                "(explain_timeout_s); try a shorter text",
            ) from None
        except ValueError as exc:  # e.g. a text with no words
            raise ApiError(422, "unexplainable", f"text: {exc}", "text") from None
        record = explanation.to_record()
        # Words past the model's max tokens cannot move its answer: say the text was cut.
        cut = bool(self.predictor.truncated([text])[0])
        return {
            "model": self.predictor.name,
            "method": method,
            "text": record["text"],
            "predicted": record["predicted"],
            "target": record["target"],
            "probabilities": record["probabilities"],
            "words": record["words"],
            "spans": record["spans"],
            "attributions": record["attributions"][method],
            "seconds": round(explanation.seconds.get(method, 0.0), 4),
            "truncated": cut,
        }

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
