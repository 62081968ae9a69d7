"""The slim serving install (serve/requirements.txt: no torch, transformers, pandas, …) must be
able to import the server and tag with an ONNX export. The slow test builds that venv; this one
checks the same import closure in seconds, by making the heavy packages unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Installed for training and analysis, absent from serve/requirements.txt.
HEAVY = (
    "torch", "transformers", "pandas", "pyarrow", "sklearn", "scipy", "dvc", "dvclive",
    "shap", "lime", "captum", "onnx", "peft", "optuna", "seqeval", "accelerate", "datasets",
)  # fmt: skip


def _run_without_heavy(code: str) -> subprocess.CompletedProcess:
    blocker = textwrap.dedent(
        f"""
        import importlib.abc, sys
        HEAVY = {HEAVY!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in HEAVY:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (slim install)")
                return None
        sys.meta_path.insert(0, Block())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_server_and_an_onnx_tagger_need_no_heavy_package(tiny_tagger_layout, tiny_export):
    _, ner_export = tiny_tagger_layout
    export, _ = tiny_export
    proc = _run_without_heavy(
        f"""
        import json
        from finslm.serve.server import load
        from finslm.serve import create_app, ServeSettings
        import finslm.cli  # the `finslm serve` entry point
        tagger = load({str(ner_export)!r}, "onnx-fp32")
        spans = tagger.entities(["Acme Bank hired Jane Doe in Boston."])
        classifier = load({str(export)!r}, "onnx-int8")
        labels = classifier.predict(["Profit rose."])
        create_app(tagger, ServeSettings()), create_app(classifier, ServeSettings())
        print(json.dumps({{"spans": len(spans), "labels": len(labels)}}))
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"spans": 1, "labels": 1}


def test_the_blocker_blocks():
    proc = _run_without_heavy("import pandas")
    assert proc.returncode != 0 and "slim install" in proc.stderr
