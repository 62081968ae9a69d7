"""The report page's "Token classification (NER)" section (finslm.report calls :func:`section`)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import yaml


def _e(x) -> str:
    return html.escape(str(x))


def _read(path: Path, stage: str) -> dict:
    from finslm.report import Missing

    if not path.is_file():
        raise Missing(f"{path} is missing: run `dvc repro {stage}`")
    return json.loads(path.read_text(encoding="utf-8"))


def section(params: Path = Path("params.yaml"), root: Path = Path(".")) -> tuple[str, list[str]]:
    """(html, missing inputs): data, per-model test scores by type, export parity, benchmark."""
    from finslm.report import Missing

    raw = yaml.safe_load(params.read_text(encoding="utf-8")) or {} if params.is_file() else {}
    ner = raw.get("ner")
    if not ner:
        return "<p>No <code>ner</code> section in params.yaml: the NER stages are off.</p>", []
    parts, missing = [], []
    try:
        data = _read(root / "metrics/data-ner.json", "prepare_ner")
        s = data["splits"]
        parts.append(
            "<p>Sentences (windows) — "
            + ", ".join(f"{k}: {v['sentences']} ({v['windows']})" for k, v in s.items())
            + f"; rejected: {_e(data.get('rejects') or 'none')}; types: "
            + _e(", ".join(data["entity_types"]))
            + ".</p>"
        )
    except Missing as exc:
        missing.append(str(exc))
    for name in ner.get("models") or {}:
        try:
            ev = _read(root / f"metrics/eval/{name}.json", f"evaluate_ner@{name}")
        except Missing as exc:
            missing.append(str(exc))
            continue
        t = ev["test"]
        rows = "".join(
            f"<tr><td>{_e(k)}</td><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td>"
            f"<td>{v['f1']:.3f}</td><td>{v['support']}</td></tr>"
            for k, v in t["per_type"].items()
        )
        parts.append(
            f"<h3>{_e(name)} (test, {t['sentences']} sentences)</h3><p>Entity micro-F1 "
            f"<b>{t['entity_micro_f1']:.4f}</b> (P {t['entity_micro_precision']:.3f}, R "
            f"{t['entity_micro_recall']:.3f}), macro-F1 {t['entity_macro_f1']:.4f}, token "
            f"accuracy {t['token_accuracy']:.4f} (seqeval, strict IOB2).</p><table><tr><th>type"
            f"</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>"
        )
        conf = t["type_confusion"]
        head = "".join(f"<th>{_e(c)}</th>" for c in conf["labels"])
        body = "".join(
            f"<tr><th>{_e(r)}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
            for r, row in zip(conf["labels"], conf["matrix"], strict=True)
        )
        parts.append(
            f"<p>Token-level type confusion (rows gold, columns predicted):</p><table><tr><th>"
            f"</th>{head}</tr>{body}</table>"
        )
        export = root / f"metrics/export/{name}.json"
        if export.is_file():
            m = json.loads(export.read_text(encoding="utf-8"))
            parts.append(
                "<p>Export parity (validation): "
                + "; ".join(
                    f"{b}: token agreement {m[b]['token_agreement']:.4f}, entity-F1 "
                    f"{round(-m[b]['f1_drop_pt'], 2) + 0.0:+.2f} pt, {m[b]['size_mb']:.1f} MB"
                    for b in ("onnx-fp32", "onnx-opt", "onnx-int8")
                    if b in m
                )
                + ".</p>"
            )
        parts.append(_explanations(root / f"reports/explain-ner/{name}.json"))
    bench = root / "metrics/benchmark-ner.json"
    if bench.is_file():
        from finslm.ner.bench import markdown_table
        from finslm.report import markdown_table_html

        parts.append("<h3>Benchmark (test split)</h3>")
        parts.append(markdown_table_html(markdown_table(json.loads(bench.read_text("utf-8")))))
    else:
        missing.append(f"{bench} is missing: run `dvc repro benchmark_ner`")
    from finslm.report import _missing_box

    return "".join(parts) + "".join(_missing_box(m) for m in missing), missing


def _explanations(path: Path) -> str:
    """Each explained entity as its sentence with words shaded by |attribution| (green: for the
    entity, red: against) and the entity underlined; empty when the file is absent."""
    if not path.is_file():
        return ""
    data = json.loads(path.read_text(encoding="utf-8"))
    found = data.get("explanations") or []
    if not found:
        return "<p>No test sentence had a predicted entity to explain.</p>"
    rows = []
    for item in found:
        ent = item["entity"]
        words = []
        for w in item["words"]:
            a = float(w["attribution"])
            colour = "22,163,74" if a >= 0 else "220,38,38"
            inside = ent["start"] <= w["start"] and w["end"] <= ent["end"]
            style = f"background:rgba({colour},{min(1.0, abs(a) * 2):.2f})"
            style += ";text-decoration:underline" if inside else ""
            words.append(f'<span style="{style}" title="{a:+.3f}">{_e(w["word"])}</span>')
        top = max(item["words"], key=lambda w: w["attribution"])
        rows.append(
            f"<li><b>{_e(ent['type'])}</b> “{_e(ent['text'])}” — strongest word "
            f"“{_e(top['word'])}” ({top['attribution']:+.2f}):<br>{' '.join(words)}</li>"
        )
    return (
        "<p>Which words drove a predicted entity (integrated gradients on the word embeddings; "
        "green for the entity, red against; the entity underlined):</p><ul>"
        + "".join(rows)
        + "</ul>"
        + _faithfulness(data.get("faithfulness"))
    )


def _faithfulness(f: dict | None) -> str:
    """One table: each metric for integrated gradients and the random floor."""
    if not f or not f.get("n"):
        return ""
    metrics = (
        ("comprehensiveness", "↑: p drop when the top words are masked"),
        ("sufficiency", "↓: p drop when only the top words are kept"),
        ("loo_spearman", "↑: rank agreement with masking each word alone"),
    )
    rows = "".join(
        f"<tr><td>{key}</td><td>{f['ig'][key]:.3f}</td><td>{f['random'][key]:.3f}</td>"
        f"<td>{_e(what)}</td></tr>"
        for key, what in metrics
    )
    fractions = ", ".join(f"{k:g}" for k in f.get("fractions", []))
    return (
        f"<p>Faithfulness of these {f['n']} explanations (words masked, the entity's score p "
        f"recomputed; top fractions {fractions}; <code>finslm.ner.faithfulness</code>):</p>"
        "<table><tr><th>metric</th><th>integrated gradients</th><th>random</th><th></th></tr>"
        f"{rows}</table>"
    )
