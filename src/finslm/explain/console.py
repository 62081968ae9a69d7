"""``finslm explain``: one text's word attributions in the terminal (rich) and as an HTML page.

    finslm explain "Operating profit fell to EUR 2.1 mn." --method shap --method ig
    finslm explain "Sales rose." --model models/minilm --html why.html

Colours follow the report: red words support the explained class, blue words oppose it, and the
stronger the colour the larger the value relative to the method's largest in the sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from finslm.explain.attributions import METHOD_TITLES, Explainer, Explanation, MethodSettings

POS_RGB = (255, 0, 81)
NEG_RGB = (0, 139, 251)


def _background(value: float, scale: float) -> str:
    alpha = 0.85 * abs(value) / scale if scale > 0 else 0.0
    base = POS_RGB if value >= 0 else NEG_RGB
    r, g, b = (round(255 + (c - 255) * alpha) for c in base)
    return f"black on rgb({r},{g},{b})"


def coloured_line(explanation: Explanation, method: str):
    """The text as a rich ``Text`` with each word's background showing its attribution."""
    from rich.text import Text

    values = explanation.attributions[method]
    scale = float(max(abs(v) for v in values)) if len(values) else 0.0
    text, out, pos = explanation.text, Text(), 0
    for word, value in zip(explanation.words, values, strict=True):
        out.append(text[pos : word.start])
        out.append(text[word.start : word.end], style=_background(float(value), scale))
        pos = word.end
    out.append(text[pos:])
    return out


def print_explanation(explanation: Explanation, methods: Sequence[str], console=None, top: int = 3):
    """Header (prediction, explained class), then per method the coloured text and top words."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    labels = explanation.labels
    probs = "  ".join(f"{lab} {p:.3f}" for lab, p in zip(labels, explanation.proba, strict=True))
    console.print(
        Text.assemble(
            ("predicted ", "dim"),
            (explanation.predicted, "bold"),
            ("   explaining p(", "dim"),
            (labels[explanation.target], "bold"),
            (")   ", "dim"),
            (probs, "dim"),
        )
    )
    for method in methods:
        values = explanation.attributions[method]
        order = sorted(range(len(values)), key=lambda i: -values[i])[:top]
        tops = ", ".join(f"{explanation.words[i].text} {values[i]:+.3g}" for i in order)
        seconds = explanation.seconds.get(method, 0.0)
        console.print(
            Text.assemble(
                (f"{METHOD_TITLES.get(method, method)}", "bold"),
                (f"  ({seconds:.2f} s; top: {tops})", "dim"),
            )
        )
        console.print(coloured_line(explanation, method))
    console.print(
        Text("red: supports the explained class · blue: opposes it · strength: relative", "dim")
    )


def explain_text(
    text: str,
    model_dir: Path,
    methods: Sequence[str],
    backend: str = "auto",
    export_dir: Path | None = None,
    target: str | None = None,
    settings: MethodSettings | None = None,
    threads: int = 0,
) -> tuple[Explanation, str, bool]:
    """(explanation, backend used for SHAP/LIME, whether the text is longer than the model's max
    tokens). ``auto``: ONNX INT8 when an export exists (``export_dir``, default
    ``exports/<model folder name>``, or ``<model>/onnx/``), else PyTorch.

    An ``export_dir`` given is used or refused, never skipped: it must hold the graphs and have
    been exported from ``model_dir`` (:func:`finslm.explain.runner.check_export`), else a
    ModelError. The default one is used only when it was; when it exists but is not used, a
    note on stderr says why."""
    import sys

    from finslm.explain.attributions import TORCH_METHODS
    from finslm.explain.runner import open_predictors

    model_dir = Path(model_dir)
    given = export_dir is not None
    if export_dir is None:
        export_dir = model_dir.parent.parent / "exports" / model_dir.name
    wanted, fallback = ("onnx-int8", "torch-fp32") if backend == "auto" else (backend, "")
    predictor, torch_model, used, notes = open_predictors(
        model_dir,
        export_dir,
        wanted,
        fallback,
        threads,
        need_torch=bool(TORCH_METHODS.intersection(methods)),
        export_given=given,
    )
    if notes and not given and Path(export_dir).is_dir():
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    explainer = Explainer(predictor, torch_model, settings, methods)
    return explainer.explain(text, target=target), used, bool(predictor.truncated([text])[0])
