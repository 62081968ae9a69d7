"""The project report page: every section from invented inputs, a box per missing input, and a
clean render in headless Chromium (skipped, with the reason, where no Chromium is installed)."""

from __future__ import annotations

import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from finslm.explain.words import split_words
from finslm.report import ReportInputs, pareto_front, pick_samples, render_page
from stages.report import main as report_main
from tests.conftest import needs_chromium
from tools.browser import check_page

SECTIONS = ("data", "benchmark", "models", "explanations")


class Page(HTMLParser):
    """Ids, image sources, links, visible text; unbalanced tags end up in ``errors``."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, html: str):
        super().__init__()
        self.ids, self.images, self.links, self.text, self.stack, self.errors = (
            set(), [], [], [], [], []
        )  # fmt: skip
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _record(text: str, label: str, predicted: str) -> dict:
    words = split_words(text)
    return {
        "text": text,
        "target": predicted,
        "predicted": predicted,
        "label": label,
        "probabilities": {"negative": 0.2, "neutral": 0.2, "positive": 0.6},
        "words": [w.text for w in words],
        "spans": [[w.start, w.end] for w in words],
        "attributions": {"lime": [0.5 - i / 10 for i in range(len(words))]},
        "stratum": f"{label}/{'correct' if label == predicted else 'error'}",
    }


def _write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")


def _variant(acc: float, p50: float, size: float, params: int) -> dict:
    return {
        "rss_mb": 200.0, "size_mb": size, "params": params, "accuracy": acc, "macro_f1": acc - 0.05,
        "p50_ms": p50, "p95_ms": p50 * 1.5, "p99_ms": p50 * 2, "mean_ms": p50 * 1.1,
        "throughput_bs32": 1000 / p50, "speedup_p50": 8.0 / p50, "throughput_ratio": 8.0 / p50,
        "accuracy_delta_pt": 0.0, "agreement_ref": 1.0, "agreement_fp32": 1.0,
    }  # fmt: skip


ENV = {
    "cpu": "test CPU", "cpu_count": 2, "platform": "linux", "python": "3.11",
    "versions": {"numpy": "2"}, "threads": 2, "n_test": 9, "rss_floor_mb": 30.0,
    "reference": "minilm/torch-fp32", "latency_sentences": 9, "repeats": 1, "warmup": 2,
    "batch_size": 32,
}  # fmt: skip


def make_inputs(root: Path, onnx: bool = True) -> ReportInputs:
    """Every input of the report stage, invented, under ``root`` (as after `dvc repro`)."""
    _write(
        root / "params.yaml",
        yaml.safe_dump({"models": {"minilm": {"kind": "transformer"}, "tfidf": {"kind": "tfidf"}}}),
    )
    _write(root / "metrics/data.json", {
        "rows_in": 40, "rows_out": 37,
        "dropped": {"malformed_line": 0, "duplicate": 2, "too_short": 1},
        "repaired": {"mojibake": 1, "unicode": 0, "whitespace": 3},
        "splits": {"train": 25, "val": 3, "test": 9},
        "labels": {
            "train": {"negative": 5, "neutral": 12, "positive": 8},
            "val": {"negative": 1, "neutral": 1, "positive": 1},
            "test": {"negative": 2, "neutral": 4, "positive": 3},
        },
    })  # fmt: skip
    variants = {"minilm/torch-fp32": _variant(0.78, 8.0, 91.6, 22_700_000)}
    if onnx:
        variants["minilm/onnx-int8"] = _variant(0.79, 2.0, 30.7, 22_700_000)
    variants["tfidf/sklearn"] = _variant(0.70, 0.4, 0.3, 17_000)
    _write(root / "metrics/benchmark.json", {**variants, "env": ENV})
    pairs = [("negative", "negative"), ("neutral", "neutral"), ("positive", "neutral")] * 3
    for model in ("minilm", "tfidf"):
        _write(
            root / f"plots/confusion/{model}/test.csv",
            "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in pairs),
        )
    (root / "plots/train/tfidf").mkdir(parents=True, exist_ok=True)
    curves = root / "plots/train/minilm/plots/metrics"
    _write(curves / "train/loss.tsv", "step\tloss\n0\t1.0\n1\t0.7\n2\t0.5\n")
    _write(curves / "val/macro_f1.tsv", "step\tmacro_f1\n0\t0.3\n1\t0.6\n2\t0.5\n")
    _write(root / "metrics/explain.json", {
        m: {"comprehensiveness": 0.5 - i / 10, "sufficiency": 0.1 + i / 10, "loo_spearman": 0.4,
            "seconds_per_sentence": 0.2}
        for i, m in enumerate(["shap", "lime", "ig", "attention", "random"])
    } | {"n_sentences": 3, "seconds_total": 4.2})  # fmt: skip
    sentences = [
        _record("Quarterly orders at Fernhill Tools fell <sharply> & fast.", "negative", "neutral"),
        _record("Brambleton Foods opened a depot in May.", "neutral", "neutral"),
        _record("Kestrel Bank raised its dividend by 4 percent.", "positive", "positive"),
    ]
    _write(root / "reports/explain/attributions.json", {
        "model": "minilm", "backend": "onnx-int8", "split": "val", "methods": ["lime"],
        "labels": ["negative", "neutral", "positive"], "fractions": [0.1, 0.2, 0.5],
        "most_faithful": "lime", "sentences": sentences,
    })  # fmt: skip
    _write(root / "reports/explain/index.html", "<!doctype html><title>explain</title>")
    return ReportInputs(
        params=root / "params.yaml",
        data=root / "metrics/data.json",
        benchmark=root / "metrics/benchmark.json",
        confusion=root / "plots/confusion",
        train=root / "plots/train",
        explain=root / "metrics/explain.json",
        attributions=root / "reports/explain/attributions.json",
    )


def _assert_self_contained(html: str, page: Page) -> None:
    assert page.errors == [] and page.stack == []
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert all(src.startswith("data:image/") for src in page.images)


def test_page_has_every_section(tmp_path):
    inputs = make_inputs(tmp_path)
    html, missing = render_page(inputs, tmp_path / "reports/index.html")
    assert missing == []
    page = Page(html)
    _assert_self_contained(html, page)
    assert set(SECTIONS) <= page.ids
    text = page.all_text
    assert "Missing" not in text
    # Data: counts, rejects by reason, splits, class balance.
    assert "rows read" in text and "too short" in text and "mojibake" in text
    assert "train 25 (68%) 5 (20%) 12 (48%) 8 (32%)" in text
    # Benchmark table and the frontier plot.
    assert "minilm/onnx-int8" in text and "p50 ms" in text and "test CPU" in text
    assert any(src.startswith("data:image/svg+xml;base64,") for src in page.images)
    # Per model: confusion matrix, curves for the transformer, a note for TF-IDF.
    assert text.count("Confusion matrix (test)") == 2
    assert "9 test sentences, accuracy 0.667" in text
    assert "TF-IDF fits in one step" in text
    assert len(page.images) == 2  # frontier + minilm curves
    # Explanations: faithfulness, samples (escaped), the link to the full report.
    assert "Most faithful for" in text and "LIME" in text and "Random (reference)" in text
    assert "explain/index.html" in page.links
    squashed = text.replace(" ", "")
    assert "Kestrel" in squashed and "FernhillTools" in squashed
    assert "&lt;" in html and "&amp;" in html and "<sharply" not in html
    # What the numbers are from, at the top: the data, the split's size, the machine.
    assert "data: data/sample/sentences.csv (the embedded sample)" in text
    assert "test split 9 sentences (one sentence = 11.11 pt)" in text
    assert "benchmark on test CPU, 2 thread(s)" in text


def test_missing_inputs_give_boxes_not_a_crash(tmp_path):
    inputs = ReportInputs(
        params=tmp_path / "params.yaml",
        data=tmp_path / "metrics/data.json",
        benchmark=tmp_path / "metrics/benchmark.json",
        confusion=tmp_path / "plots/confusion",
        train=tmp_path / "plots/train",
        explain=tmp_path / "metrics/explain.json",
        attributions=tmp_path / "reports/explain/attributions.json",
    )
    html, missing = render_page(inputs, tmp_path / "reports/index.html")
    page = Page(html)
    assert page.errors == [] and set(SECTIONS) <= page.ids
    assert len(missing) == 4
    text = page.all_text
    for path, stage in (
        ("metrics/data.json", "prepare"),
        ("metrics/benchmark.json", "benchmark"),
        ("metrics/explain.json", "explain"),
    ):
        assert path in text and f"dvc repro {stage}" in text
    assert "no models" in text


def test_partial_pipeline_names_what_is_missing(tmp_path):
    inputs = make_inputs(tmp_path, onnx=False)
    (inputs.confusion / "tfidf/test.csv").unlink()
    for tsv in (inputs.train / "minilm").rglob("*.tsv"):
        tsv.unlink()
    inputs.attributions.unlink()
    inputs.benchmark.write_text("{not json")
    _, missing = render_page(inputs, tmp_path / "reports/index.html")
    joined = "\n".join(missing)
    assert "benchmark.json is unreadable" in joined
    assert "dvc repro evaluate@tfidf" in joined
    assert "dvc repro train@minilm" in joined
    assert "attributions.json does not exist" in joined

    inputs.benchmark.unlink()
    make_inputs(tmp_path, onnx=False)
    html, missing = render_page(inputs, tmp_path / "reports/index.html")
    assert missing == ["minilm: no ONNX variant benchmarked (not exported? list it in params "
                       "export.models and add minilm/onnx-int8 to benchmark.variants)"]  # fmt: skip
    assert "not exported?" in Page(html).all_text


def test_pareto_front_and_samples():
    assert pareto_front([8.0, 2.0, 0.4, 2.1], [0.78, 0.79, 0.70, 0.75]) == [2, 1]
    assert pareto_front([1.0, 1.0], [0.5, 0.7]) == [1]  # same latency: the better one only
    records = [{"label": "a", "predicted": p, "i": i} for i, p in enumerate("abbaa")]
    assert [r["i"] for r in pick_samples(records, 4)] == [1, 0, 2, 3]


def test_stage_writes_the_page(tmp_path, capsys):
    inputs = make_inputs(tmp_path)
    out = tmp_path / "reports/index.html"
    args = ["--out", str(out)]
    for name in ("params", "data", "benchmark", "confusion", "train", "explain", "attributions"):
        args += [f"--{name}", str(getattr(inputs, name))]
    assert report_main(args) == 0
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert "0 missing" in capsys.readouterr().out


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def chromium(test):
    """Needs Chromium (CI has it), and a browser process is slow to start: not in test-fast."""
    return pytest.mark.slow(needs_chromium(test))


@chromium
def test_page_renders_in_chromium_without_errors(tmp_path):
    inputs = make_inputs(tmp_path)
    out = tmp_path / "reports/index.html"
    html, _ = render_page(inputs, out)
    out.write_text(html, encoding="utf-8")
    result = check_page(out, tmp_path / "shot.png")
    assert result.problems == []
    assert result.title == "finslm report"
    for heading in ("Data", "Benchmark (test split)", "Models", "Explanations"):
        assert heading in result.text
    width, height = _png_size(tmp_path / "shot.png")
    assert width == 1280 and height == result.size[1] > 1000


@chromium
def test_chromium_check_catches_errors_and_fetches(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!doctype html><title>bad</title><img src="https://example.invalid/x.png">'
        "<script>console.error('boom'); missingFunction();</script>",
        encoding="utf-8",
    )
    problems = "\n".join(check_page(page).problems)
    assert "console error: boom" in problems
    assert "missingFunction" in problems
    assert "external request: https://example.invalid/x.png" in problems
    assert "did not decode" in problems


def test_ner_section_shows_a_box_for_each_missing_input(tmp_path):
    # The header counts missing inputs "see the yellow boxes": every one must have its box.
    from finslm.ner.report import section

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ner": {"models": {"ner-minilm": {}}}}))
    html, missing = section(params, tmp_path)
    assert len(missing) == 3  # data, the model's evaluation, the benchmark
    assert html.count('class="missing"') == len(missing)
    assert "dvc repro benchmark_ner" in html


def test_confusion_shade_is_the_share_of_the_actual_class():
    """The report's confusion cells are shaded and titled by the share of the actual class (the
    row), not of the predicted one."""
    from finslm.report import confusion_table

    pairs = [("negative", "negative"), ("negative", "positive"), ("positive", "positive")]
    html = confusion_table(pairs)
    assert 'title="negative → negative: 50% of negative"' in html
    assert 'title="negative → positive: 50% of negative"' in html
    assert 'title="positive → positive: 100% of positive"' in html
