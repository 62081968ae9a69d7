"""Render an HTML page in headless Chromium: screenshot, console errors, network requests.

    python -m tools.browser reports/index.html --out .tmp/report-check   # `make report-check`
    >>> result = check_page(Path("reports/index.html"), Path("shot.png"))
    >>> result.problems          # [] when the page is clean

Talks to Chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in NUL on fds 3 and 4), so it needs no Python package beyond the standard
library, only a Chromium binary: ``$FINSLM_CHROMIUM``, else ``chromium``, ``chromium-browser``,
``google-chrome`` or ``chrome`` on PATH (Debian: ``apt-get install chromium``). DNS is mapped to
nowhere, so the page cannot reach the network; any request other than ``file:``, ``data:`` and
``about:`` is reported as a problem, as are console errors, uncaught exceptions, failed loads
and images that do not decode.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")
WIDTH = 1280
MAX_HEIGHT = 16000  # px: a screenshot taller than this is cut there


class BrowserError(RuntimeError):
    """Chromium could not be found, started or driven."""


def find_chromium() -> str | None:
    """The Chromium binary to use, or None."""
    env = os.environ.get("FINSLM_CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


@dataclass
class PageCheck:
    url: str
    screenshot: Path | None = None
    size: tuple[int, int] = (0, 0)  # CSS px of the whole page
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    broken_images: int = 0
    title: str = ""
    text: str = ""  # document.body.innerText

    @property
    def problems(self) -> list[str]:
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"uncaught exception: {m}" for m in self.exceptions]
            + [f"failed load: {m}" for m in self.failed_loads]
            + [f"external request: {u}" for u in self.external_requests]
            + ([f"{self.broken_images} image(s) did not decode"] if self.broken_images else [])
        )


class _Pipe:
    """A DevTools-protocol client over Chromium's ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, profile: str, timeout: float):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # Chromium reads fd 3 and writes fd 4; park ours above them so dup2 cannot clobber one.
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire():  # in the child, before exec: dup2 leaves 3 and 4 inheritable
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",  # root in containers and CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--mute-audio",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network, whatever the page asks
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},900",
            "about:blank",
        ]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        try:
            self.proc = subprocess.Popen(
                args,
                preexec_fn=wire,
                close_fds=False,  # our other fds are close-on-exec already
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
            )
        finally:
            os.close(child_r)
            os.close(child_w)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._buf = b""
        self._id = 0

    def _recv(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._r], [], [], max(left, 0))
            if not ready:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited: {self.stderr_tail()}")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._w, json.dumps(message).encode() + b"\0")
        except BrokenPipeError as exc:
            raise BrowserError(f"Chromium exited: {self.stderr_tail()}") from exc
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._recv(deadline))

    def drain(self, seconds: float) -> None:
        """Collect events for ``seconds`` more (late errors, image decodes)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._recv(deadline))
        except BrowserError:
            pass

    def stderr_tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(BrowserError):
                    self.call("Browser.close")
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            os.close(self._w)
            os.close(self._r)
            self._log.close()


def _console_text(params: dict[str, Any]) -> str:
    parts = [str(a.get("value", a.get("description", a.get("type")))) for a in params["args"]]
    return " ".join(parts)


def check_page(
    page: Path,
    screenshot: Path | None = None,
    binary: str | None = None,
    timeout: float = 60.0,
    settle: float = 0.5,
) -> PageCheck:
    """Open ``page`` in headless Chromium, screenshot the whole page, report what went wrong."""
    binary = binary or find_chromium()
    if not binary:
        raise BrowserError(
            "no Chromium found: install it (Debian/Ubuntu: apt-get install chromium) or set "
            "FINSLM_CHROMIUM to its binary"
        )
    url = page.resolve().as_uri()
    result = PageCheck(url=url)
    with tempfile.TemporaryDirectory(prefix="finslm-chromium-") as profile:
        pipe = _Pipe(binary, profile, timeout)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})
            session = pipe.call(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                pipe.call(f"{domain}.enable", None, session)
            pipe.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session,
            )
            pipe.events.clear()
            pipe.call("Page.navigate", {"url": url}, session)
            pipe.wait_for("Page.loadEventFired", timeout)
            pipe.drain(settle)
            state = pipe.call(
                "Runtime.evaluate",
                {
                    "expression": "JSON.stringify({title: document.title, "
                    "text: document.body ? document.body.innerText : '', "
                    "broken: Array.from(document.images).filter("
                    "i => !i.complete || i.naturalWidth === 0).length})",
                    "returnByValue": True,
                },
                session,
            )
            info = json.loads(state["result"]["value"])
            result.title, result.text, result.broken_images = (
                info["title"],
                info["text"],
                info["broken"],
            )
            size = pipe.call("Page.getLayoutMetrics", None, session)["cssContentSize"]
            result.size = (int(size["width"]), int(size["height"]))
            if screenshot is not None:
                height = min(result.size[1], MAX_HEIGHT)
                shot = pipe.call(
                    "Page.captureScreenshot",
                    {
                        "format": "png",
                        "captureBeyondViewport": True,
                        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
                    },
                    session,
                )
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                result.screenshot = screenshot
        finally:
            pipe.close()
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            result.console_errors.append(_console_text(params))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            exc = details.get("exception", {}).get("description", "")
            result.exceptions.append(f"{details.get('text', '')} {exc}".strip())
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            result.console_errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            request_url = params["request"]["url"]
            if not request_url.startswith(LOCAL_SCHEMES):
                result.external_requests.append(request_url)
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            result.failed_loads.append(params.get("errorText", "?"))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", type=Path, nargs="+", help="HTML files to open")
    parser.add_argument("--out", type=Path, default=Path(".tmp/report-check"),
                        help="screenshots go here, one <page-parent>-<page-stem>.png each")  # fmt: skip
    args = parser.parse_args(argv)
    failed = 0
    for page in args.pages:
        if not page.is_file():
            print(f"{page}: does not exist (run `dvc repro` first)", file=sys.stderr)
            failed += 1
            continue
        shot = args.out / f"{page.parent.name or 'page'}-{page.stem}.png"
        started = time.monotonic()
        try:
            result = check_page(page, shot)
        except BrowserError as exc:
            print(f"{page}: {exc}", file=sys.stderr)
            return 2
        seconds = time.monotonic() - started
        width, height = result.size
        status = "ok" if not result.problems else f"{len(result.problems)} problem(s)"
        print(f"{page}: {status}; {width}x{height} px; screenshot {shot} ({seconds:.1f} s)")
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
        failed += bool(result.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
