"""Batch-32 tagging throughput, input order vs length-bucketed, interleaved in one process."""
import json, statistics, sys, time
from pathlib import Path
from finslm.ner.predict import Tagger
from finslm.ner.prepare import read_split

root = Path(sys.argv[1])
test = read_split(root / "prepared", "test")
words = [list(t) for t in test.tokens]
taggers = {
    "torch-fp32": Tagger(root / "seed42/models/ner-minilm", "torch-fp32", threads=1),
    "onnx-int8": Tagger(root / "seed42/exports/ner-minilm", "onnx-int8", threads=1),
}
for t in taggers.values():
    t.tag_words(words[:64], 32)
rates = {f"{n}/{o}": [] for n in taggers for o in ("input", "bucketed")}
for _ in range(5):
    for n, t in taggers.items():
        for o in ("input", "bucketed"):
            t0 = time.perf_counter()
            t.tag_words(words, 32, bucket=(o == "bucketed"))
            rates[f"{n}/{o}"].append(len(words) / (time.perf_counter() - t0))
out = {k: round(statistics.median(v), 1) for k, v in rates.items()}
for n in taggers:
    out[f"{n}/ratio"] = round(out[f"{n}/bucketed"] / out[f"{n}/input"], 2)
out["n"] = len(words)
print(json.dumps(out, indent=1))
