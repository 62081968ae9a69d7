"""Stage ``report``: one self-contained page of the pipeline's results, ``reports/index.html``.

    python stages/report.py                    # `dvc repro report`
    python stages/report.py --out /tmp/index.html --data metrics/data.json ...

Reads ``params.yaml`` (``models``: which models to expect), ``metrics/data.json``,
``metrics/benchmark.json``, ``plots/confusion/<m>/test.csv``, ``plots/train/<m>/``,
``metrics/explain.json`` and ``reports/explain/attributions.json``. A missing input gives a box
on the page saying what is missing, and a line on stderr; the stage still writes the page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from finslm.report import ReportInputs, render_page
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    d = ReportInputs()
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=d.params)
    parser.add_argument("--data", type=Path, default=d.data)
    parser.add_argument("--benchmark", type=Path, default=d.benchmark)
    parser.add_argument("--confusion", type=Path, default=d.confusion)
    parser.add_argument("--train", type=Path, default=d.train)
    parser.add_argument("--explain", type=Path, default=d.explain)
    parser.add_argument("--attributions", type=Path, default=d.attributions)
    parser.add_argument("--out", type=Path, default=Path("reports/index.html"))
    args = parser.parse_args(argv)
    return run_stage("report", lambda: _report(args))


def _report(args) -> None:
    inputs = ReportInputs(
        params=args.params,
        data=args.data,
        benchmark=args.benchmark,
        confusion=args.confusion,
        train=args.train,
        explain=args.explain,
        attributions=args.attributions,
    )
    page, missing = render_page(inputs, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    for line in missing:
        print(f"report: missing: {line}", file=sys.stderr)
    print(f"report: wrote {args.out} ({len(page) / 1024:.0f} KiB, {len(missing)} missing)")


if __name__ == "__main__":
    sys.exit(main())
