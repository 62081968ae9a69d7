"""Load-test a running finslm server with Locust: a container, a cluster, Ray Serve, any host.

    pip install -e ".[loadtest]"          # or only: pip install locust==2.47.0
    locust -f serve/locustfile.py --host http://127.0.0.1:8000            # web UI on :8089
    locust -f serve/locustfile.py --host http://my-server:8000 --headless -u 32 -r 8 -t 60s \
        --texts news.csv --texts-per-request 4 --csv load --html load.html

Each simulated user posts texts back to back (``--wait-ms`` adds think time) to the route the
server's ``GET /v1/model`` names: ``/v1/classify`` for a sentence classifier, ``/v1/entities``
for a token classifier. An answer counts as a failure unless it is a 200 with one result per
text sent; a 4xx/5xx failure carries the server's error message. ``FINSLM_API_KEY``, when set,
is sent as a Bearer token. Texts come from ``--texts``: ``.txt`` (one per line), ``.csv``
(column ``text``) or ``.jsonl`` (key ``text``); by default the embedded sample's sentences.
Locust exits with status 1 when any request failed, so a CI job can gate on it.

``python -m finslm.serve.loadtest`` (``make loadtest``) is the other tool: bounded to
127.0.0.1, it starts the server itself, checks the answers against ``finslm predict`` and
compares served with offline speed; its figures are the ones in docs/serving.md. This file is
for a server that already runs somewhere, with Locust's ramp-up, web UI and CSV/HTML reports.
It imports nothing from finslm, so any machine with Locust can run it.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
from pathlib import Path

from locust import FastHttpUser, events, task

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "sentences.csv"
ROUTES = {"token-classification": "/v1/entities"}  # any other task: /v1/classify


def read_texts(path: Path) -> list[str]:
    """Non-blank texts of a .txt, .csv (column ``text``) or .jsonl (key ``text``) file."""
    if not path.is_file():
        raise SystemExit(f"--texts {path}: no such file")
    suffix = path.suffix.lower()
    with open(path, encoding="utf-8-sig", newline="") as fh:
        if suffix == ".csv":
            reader = csv.DictReader(fh)
            if "text" not in (reader.fieldnames or []):
                raise SystemExit(f"--texts {path}: no column 'text'; it has {reader.fieldnames}")
            texts = [row["text"] for row in reader]
        elif suffix == ".jsonl":
            texts = []
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        texts.append(json.loads(line)["text"])
                    except (ValueError, KeyError, TypeError):
                        raise SystemExit(
                            f'--texts {path}, line {number}: not a JSON object with a "text" key'
                        ) from None
        elif suffix == ".txt":
            texts = fh.read().split("\n")
        else:
            raise SystemExit(f"--texts {path}: use a .txt, .csv or .jsonl file")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise SystemExit(f"--texts {path}: no non-blank texts")
    return texts


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument(
        "--texts", default=str(SAMPLE), help=".txt, .csv (text) or .jsonl (text) of texts to send"
    )
    parser.add_argument("--texts-per-request", type=int, default=1, help="texts in each request")
    parser.add_argument("--wait-ms", type=float, default=0.0, help="think time between requests")


@events.init.add_listener
def _load(environment, **_kwargs) -> None:
    options = environment.parsed_options
    if options is not None:  # None when a library user builds the Environment by hand
        if options.texts_per_request < 1:
            raise SystemExit("--texts-per-request: must be at least 1")
        environment.finslm_texts = read_texts(Path(options.texts))


class FinslmUser(FastHttpUser):
    """One client: asks the server what it serves, then posts texts from the list in turn."""

    def wait_time(self) -> float:
        return self.environment.parsed_options.wait_ms / 1000.0

    def on_start(self) -> None:
        key = os.environ.get("FINSLM_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        texts = self.environment.finslm_texts
        start = random.randrange(len(texts))  # users do not all send the same text at once
        self.texts = itertools.cycle(texts[start:] + texts[:start])
        self.per_request = self.environment.parsed_options.texts_per_request
        self.route = "/v1/classify"
        with self.client.get("/v1/model", headers=self.headers, catch_response=True) as r:
            if r.status_code == 200:
                self.route = ROUTES.get(r.json().get("task"), "/v1/classify")
            else:
                r.failure(_why(r))

    @task
    def post_texts(self) -> None:
        batch = [next(self.texts) for _ in range(self.per_request)]
        with self.client.post(
            self.route, json={"texts": batch}, headers=self.headers, catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(_why(r))
            elif len(r.json().get("results", ())) != len(batch):
                r.failure(f"{len(batch)} texts sent, {len(r.json().get('results', ()))} results")


def _why(response) -> str:
    """``"<status>: <the server's error message>"`` (the body's start if it is not finslm's)."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = (response.text or "")[:200]
    return f"{response.status_code}: {message}"
