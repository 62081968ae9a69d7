"""Which encoder layers a NER model's INT8 graph should keep fp32: parity on validation.

    python tools/ner_int8_keep.py --model models/ner-minilm --export exports/ner-minilm \\
        --prepared data/prepared-ner --keep none --keep 0 --keep 0,5 --each-layer --out keep.json

For each keep set (``none``; integers = encoder layers, names = node-name pieces, as
``ner.int8_keep_fp32`` takes them; ``--each-layer`` adds every single layer) the optimised
graph is quantised again (dynamic INT8, per-channel, as the export does) and scored against
the PyTorch model with :func:`finslm.ner.export.token_parity` on the validation split only:
token-argmax agreement and the entity micro-F1 difference. The test split is not read.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def parse_keep(text: str) -> list[int | str]:
    if text == "none":
        return []
    return [int(p) if p.strip().isdigit() else p.strip() for p in text.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="models/<m> (PyTorch)")
    ap.add_argument("--export", type=Path, required=True, help="exports/<m> (model.opt.onnx)")
    ap.add_argument("--prepared", type=Path, required=True, help="prepare_ner's folder")
    ap.add_argument("--keep", action="append", default=[], help="'none' or e.g. '0,5'")
    ap.add_argument("--each-layer", action="store_true", help="also every single layer")
    ap.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    from finslm.export import quantize_graph, select_nodes
    from finslm.ner.export import token_parity
    from finslm.ner.predict import Tagger
    from finslm.ner.prepare import read_split

    opt = args.export / "model.opt.onnx"
    if not opt.is_file():
        raise SystemExit(f"{opt}: not found; run `dvc repro export_ner@<m>` (or export_ner.py)")
    val = read_split(args.prepared, "val")
    keeps = [parse_keep(k) for k in args.keep or ["none"]]
    if args.each_layer:
        config = json.loads((args.model / "config.json").read_text())
        layers = int(config["num_hidden_layers"])
        keeps += [[i] for i in range(layers) if [i] not in keeps]
    reference = Tagger(args.model, "torch-fp32")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ner-int8-keep-") as work:
        for keep in keeps:
            graph = Path(work) / "model.int8.onnx"
            nodes = select_nodes(opt, keep)
            quantize_graph(opt, graph, per_channel=args.per_channel, exclude=nodes)
            numbers = token_parity(reference, Tagger(args.export, "onnx-int8", graph=graph), val)
            row = {
                "keep_fp32": keep,
                "nodes_kept": len(nodes),
                "token_agreement": round(numbers["token_agreement"], 5),
                "entity_micro_f1": round(numbers["entity_micro_f1"], 4),
                "delta_pt": round(-numbers["f1_drop_pt"], 2),  # INT8 minus PyTorch
                "size_mb": round(graph.stat().st_size / 1e6, 3),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "model": str(args.model),
        "split": "val",
        "sentences": len(val),
        "entity_micro_f1_torch": round(numbers["entity_micro_f1_torch"], 4),
        "attempts": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
