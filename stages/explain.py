"""Stage ``explain``: why one model decides, how faithful each explanation is, where it fails.

    python stages/explain.py                   # `dvc repro explain`; the model is params explain.model
    python stages/explain.py --params params.yaml --models models --exports exports \
        --val data/prepared/val.parquet --reports reports/explain --metrics metrics/explain.json \
        --analysis analysis --plots plots/explain

Reads ``explain.*`` (and ``models`` to check the model is a transformer), ``models/<m>/``,
``exports/<m>/`` (ONNX graphs for SHAP/LIME; falls back per ``explain.fallback_backend``) and
the validation split only. Writes ``reports/explain/`` (index.html, attributions.json),
``metrics/explain.json``, ``analysis/<m>.json`` and ``plots/explain/``. Bad params, data or
models print one message to stderr and exit 1, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from finslm.config import load_explain_config
from finslm.explain.runner import ExplainPaths, run_explain
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--exports", type=Path, default=Path("exports"))
    parser.add_argument("--val", type=Path, default=Path("data/prepared/val.parquet"))
    parser.add_argument("--reports", type=Path, default=Path("reports/explain"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/explain.json"))
    parser.add_argument("--analysis", type=Path, default=Path("analysis"))
    parser.add_argument("--plots", type=Path, default=Path("plots/explain"))
    args = parser.parse_args(argv)
    return run_stage("explain", lambda: _explain(args))


def _explain(args) -> None:
    cfg = load_explain_config(args.params)
    paths = ExplainPaths(
        model_dir=args.models / cfg.model,
        export_dir=args.exports / cfg.model,
        val=args.val,
        report_dir=args.reports,
        metrics=args.metrics,
        analysis=args.analysis / f"{cfg.model}.json",
        plots_dir=args.plots,
    )
    run_explain(cfg, paths)


if __name__ == "__main__":
    sys.exit(main())
