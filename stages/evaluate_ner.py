"""Evaluate one trained token classifier on the NER validation and test splits.

    python stages/evaluate_ner.py ner-minilm   # metrics/eval/ner-minilm.json

Entity-level micro/macro P/R/F1 and per-type scores (seqeval, strict IOB2), token accuracy and
a token-level confusion of types, for ``val`` and ``test``. With ``--explain-out DIR`` (as
dvc.yaml runs it; the PyTorch backend) it also explains the first predicted entity of the first
``ner.explain_entities`` test sentences that have one (integrated gradients, ``ner.ig_steps``)
into ``DIR/<name>.json``, which the report's NER section shows, and measures how faithful those
explanations are (``explain_faithfulness`` in the metrics: :mod:`finslm.ner.faithfulness`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finslm.models import ModelError
from finslm.ner.evaluate_run import score
from finslm.ner.predict import Tagger
from finslm.ner.prepare import read_split
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("name")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared-ner"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("metrics/eval"))
    parser.add_argument("--backend", default="torch-fp32")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--explain-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.explain_out is not None and args.backend != "torch-fp32":
        raise ModelError(f"--explain-out needs --backend torch-fp32 (got {args.backend})")
    tagger = Tagger(args.models / args.name, args.backend, threads=args.threads)
    types = tagger.meta["entity_types"]
    result = {
        "model": args.name,
        "backend": args.backend,
        "task": "token-classification",
        "decode": tagger.decode,
        # A refit model (ner.models.<m>.refit) was trained on validation too: its val block
        # measures fit, not transfer.
        "val_in_training": bool(tagger.meta.get("refit_epochs")),
    }
    for split in ("val", "test"):
        result[split] = score(tagger, read_split(args.prepared, split), types)
    if args.explain_out is not None:
        result["explain_faithfulness"] = _explain(args, tagger)
    out = args.out / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    t = result["test"]
    print(
        f"wrote {out}: test entity micro-F1 {t['entity_micro_f1']:.4f}, "
        + ", ".join(
            f"{k} {v['f1']:.3f}" if v.get("support", 1) else f"{k} — (no test entity)"
            for k, v in t["per_type"].items()
        )
    )
    if "explain_faithfulness" in result:
        f = result["explain_faithfulness"]
        print(
            f"explanations of {f['n']} entities: comprehensiveness {f['ig']['comprehensiveness']:.3f}"
            f" (random {f['random']['comprehensiveness']:.3f}), sufficiency "
            f"{f['ig']['sufficiency']:.3f} (random {f['random']['sufficiency']:.3f})"
            if f["n"]
            else "no test entity to explain"
        )
    return 0


def _explain(args, tagger) -> dict:
    """Explain entities into ``--explain-out``; their faithfulness (numbers only, no text)."""
    from tqdm import tqdm

    from finslm.config import load_ner_config
    from finslm.ner.explain import explain_examples
    from finslm.ner.faithfulness import explanations_faithfulness
    from finslm.outputs import atomic_path

    cfg = load_ner_config(args.params)
    test = read_split(args.prepared, "test")
    with tqdm(total=cfg.explain_entities, desc="explain entities", unit="entity") as bar:
        found = explain_examples(
            tagger,
            [list(t) for t in test.tokens],
            cfg.explain_entities,
            cfg.ig_steps,
            progress=lambda k: bar.update(k - bar.n),
        )
    faithfulness = explanations_faithfulness(tagger, found, seed=cfg.seed)
    out = args.explain_out / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        body = {"explanations": found, "faithfulness": faithfulness}
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(found)} entities explained (integrated gradients)")
    return faithfulness


if __name__ == "__main__":
    sys.exit(run_stage("evaluate_ner", main))
