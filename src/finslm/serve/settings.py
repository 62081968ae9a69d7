"""The server's knobs in one frozen dataclass, so the CLI, tests and Ray Serve share defaults.

Limits exist because one request must not be able to stall the model for everyone else: the
model runs one batch at a time, so a 10,000-text request or a 1 MB sentence would hold every
other caller behind it. The explain limits are tighter because one explanation costs hundreds of
model calls (about a second), against a few milliseconds for a classification.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

API_KEY_ENV = "FINSLM_API_KEY"
EXPLAIN_METHODS = ("lime", "shap")  # perturbation methods: they run on the served predictor


class SettingError(ValueError):
    """A setting out of range: ``serve setting <setting>=<value>: must be <must>``; the CLI and
    the environment reader name it their way (:meth:`named`)."""

    def __init__(self, setting: str, value, must: str):
        super().__init__(f"serve setting {setting}={value!r}: must be {must}")
        self.setting, self.value, self.must = setting, value, must

    def named(self, name: str, sep: str = " ") -> str:
        """The message with the setting called ``name`` (a flag, an environment variable)."""
        return f"{name}{sep}{self.value!r}: must be {self.must}"


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """Every limit and batching choice of one server (see docs/serving.md for the defaults)."""

    host: str = "127.0.0.1"  # loopback unless told otherwise: exposing a port is a decision
    port: int = 8000
    # Batching: what is waiting when the model is free, up to max_batch texts, with no wait.
    # Measured fastest here (docs/serving.md): alone at low load (batch 1), batches under load.
    # Dynamic INT8 scales activations per batch, so a borderline text's label can depend on its
    # batch-mates; max_batch=1 makes every answer independent of other traffic.
    max_batch: int = 32
    max_wait_ms: float = 0.0  # how long the first text of a batch waits for company
    # A round of waiting texts is cut, sorted by tokens, into the calls that minimise padded
    # tokens + call_cost_tokens per call (0: runs of max_batch). 32 measured best of 8-64 on
    # CPU (docs/serving.md); a GPU's per-call cost is higher.
    call_cost_tokens: float = 32.0
    max_queue: int = 512  # texts waiting for the model; more -> 503 + Retry-After
    # Per-request limits.
    max_texts: int = 64
    max_chars: int = 2000
    # A token classifier (/v1/entities) reads every word of a text (in windows of the model's
    # max_length), so its cost grows with the words, not the texts: words in one request, all
    # texts together (64 sentences of 128 words; a classifier reads at most 128 tokens a text).
    max_words: int = 8192
    # Bytes in one request body; None: enough for max_texts texts of max_chars characters as
    # the most verbose JSON writes them (12 bytes a character: "\ud83d\ude00"), and 1 MiB at least.
    max_body_bytes: int | None = None
    request_timeout_s: float = 10.0
    body_timeout_s: float = 30.0  # the whole body must arrive within this; else 408, closed
    # /v1/explain: one at a time, short texts, small sampling budgets.
    explain_max_chars: int = 500
    explain_timeout_s: float = 30.0
    explain_queue: int = 2  # explanations allowed to wait behind the running one
    explain_samples: int = 80  # LIME samples and SHAP evaluations per explanation
    # Operations.
    api_key: str | None = None  # None: no authentication (the server binds to loopback)
    warmup: bool = True
    shutdown_timeout_s: float = 10.0
    retry_after_s: int = 1
    eval_metrics: Path | None = None  # metrics/eval/<model>.json, shown by GET /v1/model

    def __post_init__(self) -> None:
        # setting -> (ok?, what it must be)
        checks = {
            "max_batch": (self.max_batch >= 1, "at least 1"),
            "max_wait_ms": (self.max_wait_ms >= 0, "0 or more"),
            "call_cost_tokens": (self.call_cost_tokens >= 0, "0 or more"),
            "max_queue": (
                self.max_queue >= max(1, self.max_texts),
                f"at least max_texts ({self.max_texts}): a request of max_texts texts could "
                "never be admitted",
            ),
            "max_texts": (self.max_texts >= 1, "at least 1"),
            "max_chars": (self.max_chars >= 1, "at least 1"),
            "max_words": (self.max_words >= 1, "at least 1"),
            "max_body_bytes": (
                self.max_body_bytes is None or self.max_body_bytes >= 64,
                "at least 64",
            ),
            "request_timeout_s": (self.request_timeout_s > 0, "more than 0 s"),
            "body_timeout_s": (self.body_timeout_s > 0, "more than 0 s"),
            "explain_max_chars": (self.explain_max_chars >= 1, "at least 1"),
            "explain_timeout_s": (self.explain_timeout_s > 0, "more than 0 s"),
            "explain_queue": (self.explain_queue >= 0, "0 or more"),
            "explain_samples": (self.explain_samples >= 10, "at least 10"),
            "port": (0 <= self.port <= 65535, "0 to 65535"),
        }
        for name, (ok, must) in checks.items():
            if not ok:
                raise SettingError(name, getattr(self, name), must)

    @property
    def body_limit(self) -> int:
        """The request body cap in bytes: ``max_body_bytes``, or the default it documents."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return max(1_048_576, 12 * self.max_texts * self.max_chars + 65_536)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ServeSettings:
        """Settings from ``FINSLM_<NAME>`` variables (unset: the defaults) and the API key from
        ``FINSLM_API_KEY``: for deployments with no command line (``finslm.serve.ray_app``)."""
        given = {
            field: value
            for field, kind in ENV_SETTINGS.items()
            if (value := env_number(env, f"FINSLM_{field.upper()}", kind)) is not None
        }
        try:
            return cls(api_key=env.get(API_KEY_ENV) or None, **given)
        except SettingError as exc:  # named by its variable: "FINSLM_MAX_QUEUE=4: ..."
            raise ValueError(exc.named(f"FINSLM_{exc.setting.upper()}", "=")) from None

    @classmethod
    def with_env_key(cls, env: str = API_KEY_ENV, **kwargs) -> ServeSettings:
        """Settings whose API key comes from the environment variable ``env`` (unset: none).

        The key is read from the environment, never from a flag, so it stays out of ``ps`` and
        shell history.
        """
        return cls(api_key=os.environ.get(env) or None, **kwargs)

    def exposure_warning(self) -> str | None:
        """A warning when the server listens beyond this machine with no API key, else None."""
        import ipaddress

        if self.api_key is not None or self.host == "localhost":
            return None
        try:
            if ipaddress.ip_address(self.host).is_loopback:
                return None
        except ValueError:
            pass  # a host name: it may resolve to a public interface
        return (
            f"serving on {self.host}:{self.port} with no API key: anyone who can reach this "
            f"port can use the model. Set {API_KEY_ENV} (or --api-key-env) to require a key, "
            "or keep --host 127.0.0.1 behind a proxy that authenticates"
        )

    def public(self) -> dict:
        """The settings a client may see (``GET /v1/model``): everything but the key."""
        out = dataclasses.asdict(self)
        out.pop("api_key")
        out["eval_metrics"] = str(self.eval_metrics) if self.eval_metrics else None
        out["auth"] = self.api_key is not None
        out["max_body_bytes"] = self.body_limit
        return out


# ServeSettings fields an environment variable FINSLM_<NAME> may set (from_env), and their type.
ENV_SETTINGS: dict[str, type] = {
    "max_batch": int,
    "max_wait_ms": float,
    "call_cost_tokens": float,
    "max_queue": int,
    "max_texts": int,
    "max_chars": int,
    "max_words": int,
    "max_body_bytes": int,
    "request_timeout_s": float,
    "body_timeout_s": float,
    "explain_max_chars": int,
    "explain_timeout_s": float,
    "explain_queue": int,
    "explain_samples": int,
}


def env_number(env: Mapping[str, str], name: str, kind: type, default=None):
    """``env[name]`` as ``kind`` (int or float); ``default`` when unset or empty; a ValueError
    naming the variable when it is not such a number."""
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name}={value!r}: not {what}") from None
