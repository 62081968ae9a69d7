"""The explanation report: one self-contained HTML page (inline CSS, images as data URIs).

    >>> html = render_report(ReportData(...))          # the stage's reports/explain/index.html
    >>> html = render_sentences_page(records, methods) # `finslm explain "..." --html out.html`

Sections: the faithfulness table (which method to trust for this model) and curves; error
analysis (per-class F1, confusions, calibration with the reliability diagram, words behind
errors); the worst errors; and every explained sentence with its words coloured per method, side
by side. Red words support the explained class, blue words oppose it; the stronger the colour,
the larger the attribution relative to that method's largest in the sentence (hover a word for
its value). No JavaScript, no external resources: the file opens anywhere, offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finslm.explain.attributions import METHOD_TITLES
from finslm.explain.faithfulness import METRICS
from finslm.pages import esc, fmt, png_data_uri

CSS = """
:root { --fg:#1d2330; --muted:#5b6474; --line:#e2e6ee; --bg:#f6f7fb; --card:#fff;
        --pos:255,0,81; --neg:0,139,251; --accent:#3454d1; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:22px 32px 16px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:650; }
header .meta { margin:0; color:#c9cfdb; font-size:14px; }
header code { background:#343d52; color:#fff; }
nav { margin-top:12px; display:flex; gap:18px; flex-wrap:wrap; }
nav a { color:#9fb4ff; text-decoration:none; font-size:14px; }
main { max-width:1360px; margin:0 auto; padding:8px 32px 48px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
          padding:18px 22px 20px; margin-top:20px; }
h2 { margin:0 0 10px; font-size:19px; }
h3 { margin:18px 0 8px; font-size:15px; color:var(--muted); text-transform:uppercase;
     letter-spacing:.04em; }
p.note { color:var(--muted); font-size:13px; margin:8px 0 0; max-width:120ch; }
.verdict { font-size:16px; margin:4px 0 12px; padding:10px 14px; background:#eef2ff;
           border-left:4px solid var(--accent); border-radius:4px; }
table { border-collapse:collapse; font-size:14px; }
/* A table wider than the screen scrolls inside its own box instead of the whole page. */
section table { display:block; max-width:100%; overflow-x:auto; }
th, td { padding:6px 12px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { background:#fafbfd; font-weight:600; color:#394152; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr.best td { background:#eef2ff; font-weight:600; }
tr.ref td { color:var(--muted); font-style:italic; }
.row { display:flex; gap:28px; flex-wrap:wrap; align-items:flex-start; }
.row > div { min-width:0; flex:0 1 auto; }
.row > div.col { flex:1 1 380px; max-width:660px; }
.warn { margin-top:20px; padding:10px 14px; background:#fff7e0; border:1px solid #f1d98a;
        border-radius:8px; font-size:14px; }
.cards { display:flex; gap:14px; flex-wrap:wrap; margin-bottom:8px; }
.card { border:1px solid var(--line); border-radius:8px; padding:10px 16px; min-width:150px; }
.card .v { font-size:22px; font-weight:650; }
.card .k { color:var(--muted); font-size:13px; }
img.plot { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
.legend { display:flex; flex-wrap:wrap; gap:6px 16px; align-items:center; font-size:13px; color:var(--muted); margin:0 0 10px; }
.legend > span:not(:last-child) { white-space:nowrap; flex-shrink:0; }
.swatch { display:inline-block; width:34px; height:14px; border-radius:3px; vertical-align:middle; margin-right:4px; }
.sentence { border:1px solid var(--line); border-radius:8px; margin:12px 0; overflow:hidden; }
.sentence .head { display:flex; gap:10px; align-items:center; flex-wrap:wrap; padding:8px 14px;
                  background:#fafbfd; border-bottom:1px solid var(--line); font-size:13px; }
.badge { padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; border:1px solid transparent; }
.badge.ok { background:#e7f6ec; color:#1e7a3c; border-color:#bfe6cc; }
.badge.err { background:#fde8ec; color:#b0173a; border-color:#f6c3cf; }
.label-negative { color:#b0173a; font-weight:600; }
.label-neutral { color:#5b6474; font-weight:600; }
.label-positive { color:#1e7a3c; font-weight:600; }
.methods { display:grid; grid-template-columns:repeat(auto-fit, minmax(290px, 1fr)); }
.method { padding:10px 14px; border-right:1px solid var(--line); }
.method:last-child { border-right:none; }
.method .name { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em;
                margin-bottom:4px; }
.text { line-height:1.9; }
.w { padding:1px 1px; border-radius:3px; }
code { background:#eef0f5; padding:1px 5px; border-radius:4px; font-size:13px; }
"""


def _label(label: str) -> str:
    return f'<span class="label-{esc(label)}">{esc(label)}</span>'


def coloured_text(text: str, spans: Sequence[Sequence[int]], values: Sequence[float]) -> str:
    """``text`` as HTML with each word's background showing its attribution.

    Red = supports the explained class, blue = opposes it; opacity is |value| over the largest
    |value| in this sentence for this method. Characters between words are kept as they are.
    """
    scale = max((abs(v) for v in values), default=0.0) or 1.0
    out, pos = [], 0
    for (start, end), v in zip(spans, values, strict=True):
        out.append(esc(text[pos:start]))
        alpha = 0.85 * abs(v) / scale
        rgb = "var(--pos)" if v >= 0 else "var(--neg)"
        out.append(
            f'<span class="w" style="background:rgba({rgb},{alpha:.2f})" '
            f'title="{esc(text[start:end])}: {v:+.4f}">{esc(text[start:end])}</span>'
        )
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


LEGEND = (
    '<p class="legend"><span><span class="swatch" style="background:rgba(var(--pos),.8)"></span>'
    'supports the explained class</span><span><span class="swatch" '
    'style="background:rgba(var(--neg),.8)"></span>opposes it</span>'
    "<span>strength: relative to the method's largest value in the sentence (hover a word for "
    "its value); attention rollout has no direction, only importance</span></p>"
)


def sentence_block(record: Mapping[str, Any], methods: Sequence[str]) -> str:
    """One sentence: a header (true label, prediction, confidence) and one cell per method."""
    probs = record["probabilities"]
    predicted = record["predicted"]
    head = [f"predicted {_label(predicted)} ({probs[predicted]:.2f})"]
    if "label" in record:
        ok = record["label"] == predicted
        head.insert(0, f"true {_label(record['label'])}")
        head.append(
            '<span class="badge ok">correct</span>'
            if ok
            else '<span class="badge err">error</span>'
        )
    if record.get("target") and record["target"] != predicted:
        head.append(f"explaining {_label(record['target'])}")
    cells = []
    for m in methods:
        if m not in record["attributions"]:
            continue
        body = coloured_text(record["text"], record["spans"], record["attributions"][m])
        cells.append(
            f'<div class="method"><div class="name">{esc(METHOD_TITLES.get(m, m))}</div>'
            f'<div class="text">{body}</div></div>'
        )
    return (
        f'<div class="sentence"><div class="head">{" · ".join(head)}</div>'
        f'<div class="methods">{"".join(cells)}</div></div>'
    )


def _page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="{esc(href)}">{esc(t)}</a>' for href, t in nav)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><p class="meta">{subtitle}</p>'
        f"{'<nav>' + links + '</nav>' if links else ''}</header><main>{body}</main></body></html>\n"
    )


def render_sentences_page(
    records: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    title: str = "finslm explain",
    subtitle: str = "",
    back: str | None = None,
) -> str:
    """A page with only explained sentences: the CLI's ``--html``, and the stage's one page per
    method (``back`` links to the main report). ``subtitle`` is HTML (escape what you pass)."""
    blocks = "".join(sentence_block(r, methods) for r in records)
    body = f'<section id="sentences"><h2>Explanations</h2>{LEGEND}{blocks}</section>'
    return _page(title, subtitle, [(back, "← report")] if back else [], body)


def method_pages(d: ReportData) -> dict[str, str]:
    """``{method: page}``: every explained sentence (errors first) coloured by one method."""
    records = _sorted_records(d.records)
    return {
        m: render_sentences_page(
            records,
            [m],
            title=f"{METHOD_TITLES.get(m, m)} — {d.model}",
            subtitle=f"validation split · {len(records)} sentences, errors first",
            back="index.html",
        )
        for m in d.methods
    }


def _sorted_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # Errors first, then by stratum, so the interesting sentences are at the top.
    return sorted(records, key=lambda r: (r["label"] == r["predicted"], r.get("stratum", "")))


@dataclass
class ReportData:
    """Everything the stage's report shows (see :func:`render_report`)."""

    model: str
    backend: str  # perturbation methods' predictor backend
    methods: list[str]
    labels: list[str]
    records: list[dict[str, Any]]  # explained sentences (to_record() + label, stratum)
    faithfulness: dict[str, dict[str, float]]  # per method (and "random"): metrics json entries
    ranks: dict[str, float]  # mean rank per method (1 = best)
    most_faithful: str
    fractions: list[float]
    recommendations: dict[str, Any]
    images: dict[str, bytes] = field(default_factory=dict)  # "faithfulness", "reliability" PNGs
    seconds: float = 0.0  # wall time of the whole run
    ig_delta: float | None = None  # mean |completeness gap| of IG
    notes: list[str] = field(default_factory=list)


def _faithfulness_section(d: ReportData) -> str:
    rows = []
    order = [m for m in d.methods if m in d.faithfulness] + (
        ["random"] if "random" in d.faithfulness else []
    )
    for m in order:
        f = d.faithfulness[m]
        cls = "best" if m == d.most_faithful else ("ref" if m == "random" else "")
        cells = "".join(f'<td class="num">{fmt(f[k])}</td>' for k in METRICS)
        rows.append(
            f'<tr class="{cls}"><td>{esc(METHOD_TITLES.get(m, m))}</td>{cells}'
            f'<td class="num">{fmt(f["seconds_per_sentence"], 3)}</td>'
            f'<td class="num">{fmt(d.ranks.get(m), 2) if m in d.ranks else "–"}</td></tr>'
        )
    ks = ", ".join(f"{round(100 * k)}%" for k in d.fractions)
    img = d.images.get("faithfulness")
    plot = (
        f'<div style="margin-top:14px"><img class="plot" src="{png_data_uri(img)}" '
        'alt="Comprehensiveness and sufficiency curves per method"></div>'
        if img
        else ""
    )
    n = len(d.records)
    delta = (
        f" Integrated gradients' mean completeness gap: {d.ig_delta:.4f}."
        if d.ig_delta is not None
        else ""
    )
    return (
        '<section id="faithfulness"><h2>Faithfulness</h2>'
        f'<p class="verdict">Most faithful for <code>{esc(d.model)}</code>: '
        f"<strong>{esc(METHOD_TITLES.get(d.most_faithful, d.most_faithful))}</strong> "
        f"(best mean rank over the three measures, {n} validation sentences).</p>"
        "<div><table><thead><tr><th>method</th>"
        '<th class="num">comprehensiveness ↑</th><th class="num">sufficiency ↓</th>'
        '<th class="num">LOO Spearman ↑</th><th class="num">s / sentence</th>'
        '<th class="num">mean rank</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<p class="note">Comprehensiveness: drop in p(explained class) when the top-ranked words '
        f"are deleted; sufficiency: drop when only they are kept (both averaged over the top {ks} "
        "of words, AOPC). LOO Spearman: rank correlation with the effect of deleting each word "
        "alone. Random: a random ranking, the floor every method should clear. Time: attribution "
        f"only, per sentence, on this machine.{delta}</p></div>"
        f"{plot}</section>"
    )


def _pairs(pairs: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{esc(p['true'])}→{esc(p['predicted'])} ×{p['count']}" for p in pairs)


def _errors_section(d: ReportData) -> str:
    rec = d.recommendations
    m = rec["metrics"]
    thr = rec["confidence_threshold"]
    cards = [
        ("accuracy", fmt(m["accuracy"])),
        ("macro-F1", fmt(m["macro_f1"])),
        ("ECE", fmt(rec["calibration"]["ece"])),
        (
            f"confidence threshold (≥ {thr['target_accuracy']:.0%} accurate above)",
            f"{thr['value']:.2f}",
        ),
    ]
    card_html = "".join(
        f'<div class="card"><div class="v">{v}</div><div class="k">{esc(k)}</div></div>'
        for k, v in cards
    )
    targets = {t["label"] for t in rec["target_classes"]}
    per_class = "".join(
        f"<tr><td>{_label(label)}{' ◀ target' if label in targets else ''}</td>"
        f'<td class="num">{fmt(c["precision"])}</td><td class="num">{fmt(c["recall"])}</td>'
        f'<td class="num">{fmt(c["f1"])}</td><td class="num">{c["support"]}</td></tr>'
        for label, c in m["per_class"].items()
    )
    confusions = (
        "".join(
            f"<tr><td>{_label(c['true'])}</td><td>{_label(c['predicted'])}</td>"
            f'<td class="num">{c["count"]}</td><td class="num">{c["rate"]:.1%}</td></tr>'
            for c in rec["confusions"]
        )
        or '<tr><td colspan="4">no errors</td></tr>'
    )
    tokens = (
        "".join(
            f'<tr><td><code>{esc(t["token"])}</code></td><td class="num">{t["error_attribution"]:.2f}</td>'
            f'<td class="num">{t["errors"]}</td><td class="num">{t["correct"]}</td>'
            f"<td>{_pairs(t['pairs'])}</td>"
            f'<td class="num">{t["val_sentences"]}</td><td class="num">{t["val_error_rate"]:.0%}</td></tr>'
            for t in rec["token_patterns"]
        )
        or '<tr><td colspan="7">too few explained errors to name words</td></tr>'
    )
    img = d.images.get("reliability")
    reliability = (
        f'<div><img class="plot" src="{png_data_uri(img)}" alt="Reliability diagram"></div>'
        if img
        else ""
    )
    return (
        '<section id="errors"><h2>Error analysis (validation)</h2>'
        f'<div class="cards">{card_html}</div>'
        '<div class="row"><div class="col"><h3>Per class</h3><table><thead><tr><th>class</th>'
        '<th class="num">precision</th><th class="num">recall</th><th class="num">F1</th>'
        f'<th class="num">support</th></tr></thead><tbody>{per_class}</tbody></table>'
        "<h3>Confusions</h3><table><thead><tr><th>true</th><th>predicted</th>"
        '<th class="num">count</th><th class="num">of true class</th></tr></thead>'
        f"<tbody>{confusions}</tbody></table>"
        f'<p class="note">{thr["n_below"]} validation sentences '
        f"fall below the confidence threshold {thr['value']:.2f} (accuracy there: "
        f"{fmt(thr['accuracy_below'])}); coverage above it: {thr['coverage']:.0%}.</p></div>"
        f"{reliability}</div>"
        f"<h3>Words behind errors ({esc(METHOD_TITLES.get(rec['token_method'], rec['token_method']))})</h3>"
        '<table><thead><tr><th>word</th><th class="num">error attribution</th>'
        '<th class="num">errors</th><th class="num">correct</th><th>confusions pushed</th>'
        '<th class="num">val sentences</th><th class="num">val error rate</th></tr></thead>'
        f"<tbody>{tokens}</tbody></table>"
        '<p class="note">Error attribution: over the explained misclassified sentences, the sum '
        "of the word's share of the attribution towards the wrong prediction. The targeted "
        f"fine-tune reads all of this from <code>analysis/{esc(d.model)}.json</code>.</p></section>"
    )


def _worst_section(d: ReportData) -> str:
    explained = {r["text"]: r for r in d.records}
    method = d.most_faithful
    rows = []
    for ex in d.recommendations["misclassified"]:
        r = explained.get(ex["text"])
        text = (
            coloured_text(r["text"], r["spans"], r["attributions"][method])
            if r and method in r["attributions"]
            else esc(ex["text"])
        )
        rows.append(
            f'<tr><td class="text">{text}</td><td>{_label(ex["label"])}</td>'
            f'<td>{_label(ex["predicted"])}</td><td class="num">{ex["confidence"]:.2f}</td></tr>'
        )
    body = "".join(rows) or '<tr><td colspan="4">no errors on validation</td></tr>'
    return (
        '<section id="worst"><h2>Worst errors</h2>'
        '<p class="note" style="margin:0 0 10px">Validation errors, most confident first; words '
        f"coloured by {esc(METHOD_TITLES.get(method, method))} where the sentence was explained.</p>"
        "<table><thead><tr><th>sentence</th><th>true</th><th>predicted</th>"
        f'<th class="num">confidence</th></tr></thead><tbody>{body}</tbody></table></section>'
    )


def render_report(d: ReportData) -> str:
    """The stage's report page."""
    records = _sorted_records(d.records)
    blocks = "".join(sentence_block(r, d.methods) for r in records)
    sentences = (
        f'<section id="sentences"><h2>Explanations ({len(records)} sentences, errors first)</h2>'
        f"{LEGEND}{blocks}</section>"
    )
    notes = "".join(f'<div class="warn">{esc(n)}</div>' for n in d.notes)
    subtitle = (
        f"validation split · {len(d.records)} of {d.recommendations['n']} sentences explained "
        f"(stratified by class and correctness) · SHAP/LIME on <code>{esc(d.backend)}</code>, "
        f"gradients and attention on <code>torch-fp32</code> · {d.seconds:.0f} s"
    )
    nav = [
        ("#faithfulness", "Faithfulness"),
        ("#errors", "Error analysis"),
        ("#worst", "Worst errors"),
        ("#sentences", "Explanations"),
        *((f"{m}.html", f"{METHOD_TITLES.get(m, m)} only") for m in d.methods),
    ]
    body = notes + _faithfulness_section(d) + _errors_section(d) + _worst_section(d) + sentences
    return _page(f"Why {d.model} decides what it decides", subtitle, nav, body)
