"""The HTML report parses, has every section and method, and escapes the text it shows."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np

from finslm.explain.analysis import prediction_frame, recommendations
from finslm.explain.attributions import METHOD_TITLES, METHODS
from finslm.explain.page import (
    ReportData,
    coloured_text,
    method_pages,
    render_report,
    render_sentences_page,
)
from finslm.explain.plots import faithfulness_plot, reliability_plot
from finslm.explain.words import split_words
from finslm.labels import LABELS


class Page(HTMLParser):
    """Collects ids, images, text and checks tags are balanced (void tags aside)."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, html: str):
        super().__init__()
        self.ids, self.images, self.text, self.stack, self.errors = set(), [], [], [], []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def _record(text, label, predicted, seed):
    words = split_words(text)
    rng = np.random.default_rng(seed)
    probs = dict(zip(LABELS, [0.1, 0.2, 0.7], strict=True))
    return {
        "text": text,
        "target": predicted,
        "predicted": predicted,
        "label": label,
        "probabilities": probs,
        "words": [w.text for w in words],
        "spans": [[w.start, w.end] for w in words],
        "attributions": {m: rng.standard_normal(len(words)).tolist() for m in METHODS},
        "stratum": f"{label}/{'correct' if label == predicted else 'error'}",
    }


def _report(tmp_path, data_only: bool = False):
    records = [
        _record("Net sales rose 8% <script>alert(1)</script> & more.", "positive", "positive", 0),
        _record("The meeting is on 5 May.", "neutral", "positive", 1),
    ]
    frame = prediction_frame(
        [r["text"] for r in records],
        [r["label"] for r in records],
        np.array([[0.1, 0.2, 0.7], [0.1, 0.3, 0.6]]),
        LABELS,
    )
    rec = recommendations(
        frame, records, LABELS, model="minilm", backend="onnx-int8", token_method="shap"
    )
    faith = {
        m: {"comprehensiveness": 0.5 - i / 10, "sufficiency": 0.1 + i / 10, "loo_spearman": 0.6,
            "seconds_per_sentence": 0.2}
        for i, m in enumerate([*METHODS, "random"])
    }  # fmt: skip
    curves = {
        m: {"comprehensiveness": [0.2, 0.3, 0.5], "sufficiency": [0.3, 0.2, 0.1]} for m in faith
    }
    images = {
        "faithfulness": faithfulness_plot(curves, [0.1, 0.2, 0.5], tmp_path / "f.png").read_bytes(),
        "reliability": reliability_plot(rec["calibration"], tmp_path / "r.png").read_bytes(),
    }
    data = ReportData(
        model="minilm", backend="onnx-int8", methods=list(METHODS), labels=list(LABELS),
        records=records, faithfulness=faith, ranks={m: 1.0 + i for i, m in enumerate(METHODS)},
        most_faithful="shap", fractions=[0.1, 0.2, 0.5], recommendations=rec, images=images,
        seconds=12.0, ig_delta=0.001, notes=["backend onnx-int8 unavailable"],
    )  # fmt: skip
    return data if data_only else render_report(data)


def test_report_has_every_section_and_method(tmp_path):
    html = _report(tmp_path)
    page = Page(html)
    assert page.errors == [] and page.stack == []
    assert {"faithfulness", "errors", "worst", "sentences"} <= page.ids
    text = page.all_text
    for method in METHODS:
        # In the faithfulness table and once per sentence.
        assert text.count(METHOD_TITLES[method]) >= 3, method
    assert "Random (reference)" in text
    assert "Most faithful for" in text and "SHAP (partition)" in text
    squashed = text.replace(" ", "")  # coloured words are separate elements
    assert "Worst errors" in text and "Themeetingison5May." in squashed
    assert "analysis/minilm.json" in text
    assert len(page.images) == 2
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert "backend onnx-int8 unavailable" in text


def test_report_escapes_the_sentences(tmp_path):
    html = _report(tmp_path)
    assert "<script" not in html and "</script" not in html
    assert "&lt;" in html and "&gt;" in html and "&amp;" in html


def test_coloured_text_keeps_the_text_and_signs():
    text = "Sales fell 5%."
    words = split_words(text)
    html = coloured_text(text, [[w.start, w.end] for w in words], [0.5, -1.0, 0.0, 0.0, 0.0])
    assert Page(html).all_text.replace(" ", "") == text.replace(" ", "")
    assert "rgba(var(--pos),0.42)" in html  # 0.85 * 0.5 / 1.0
    assert "rgba(var(--neg),0.85)" in html
    assert 'title="fell: -1.0000"' in html


def test_sentences_page_for_the_cli():
    record = _record("Orders surged.", "positive", "positive", 3)
    page = Page(render_sentences_page([record], ["shap", "ig"], title="Why"))
    assert page.errors == [] and "sentences" in page.ids
    assert "SHAP (partition)" in page.all_text and "Integrated Gradients" in page.all_text
    assert "LIME" not in page.all_text


def test_one_page_per_method(tmp_path):
    pages = method_pages(_report(tmp_path, data_only=True))
    assert list(pages) == list(METHODS)
    for method, html in pages.items():
        page = Page(html)
        assert page.errors == []
        others = [METHOD_TITLES[m] for m in METHODS if m != method]
        assert METHOD_TITLES[method] in page.all_text
        assert not any(f">{title}<" in html for title in others)
        assert 'href="index.html"' in html
