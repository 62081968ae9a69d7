"""Financial named-entity recognition (token classification) through the same pipeline.

- :mod:`finslm.ner.tags` — IO / IOB1 / IOB2 tag schemes, normalised to IOB2; entity spans;
- :mod:`finslm.ner.data` — CoNLL, JSONL/Parquet ``{tokens, tags}`` and FiNER-139 hub readers,
  cleaning with counted rejects, label selection, windows, splits;
- :mod:`finslm.ner.align` — words -> sub-tokens, first sub-token labelled, the rest ignored;
- :mod:`finslm.ner.train` — fine-tuning with the shared recipe machinery;
- :mod:`finslm.ner.evaluate` — entity-level (seqeval, strict IOB2) and token metrics;
- :mod:`finslm.ner.predict` — torch / ONNX taggers returning entity spans with character offsets;
- :mod:`finslm.ner.export` — ONNX fp32 / optimised / INT8 with a token-level parity gate;
- :mod:`finslm.ner.bench` — latency, throughput, size and RSS of the tagger variants;
- :mod:`finslm.ner.explain` — integrated gradients for one predicted entity.

See docs/ner.md.
"""
