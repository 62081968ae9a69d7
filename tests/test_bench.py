"""The benchmark harness on the tiny model: every key present, every value sane."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from finslm.bench import (
    Variant,
    _measure_all_rss,
    _rotations,
    markdown_table,
    measure_rss,
    plot_frontier,
    run_benchmark,
    write_csv,
)
from finslm.config import ConfigError, load_benchmark_config
from finslm.labels import LABELS
from finslm.models import ModelError

from .conftest import invented_sentences, load_stage

ROWS = invented_sentences(3)
TEXTS, LABELS_TRUE = [t for t, _ in ROWS], [y for _, y in ROWS]
KNOBS = dict(threads=1, warmup=2, latency_sentences=12, repeats=2, batch_size=8)


@pytest.fixture(scope="module")
def layout(tmp_path_factory, tiny_classifier, tiny_export, tiny_tfidf):
    """models/<tiny, tfidf> and exports/<tiny> as the benchmark stage expects them."""
    root = tmp_path_factory.mktemp("bench")
    (root / "models").mkdir()
    (root / "exports").mkdir()
    (root / "models" / "tiny").symlink_to(tiny_classifier)
    (root / "models" / "tfidf").symlink_to(tiny_tfidf)
    (root / "exports" / "tiny").symlink_to(tiny_export[0])
    return root


@pytest.fixture(scope="module")
def result(layout):
    variants = [
        Variant("tiny/torch-fp32", layout / "models/tiny", "torch-fp32"),
        Variant("tiny/onnx-fp32", layout / "exports/tiny", "onnx-fp32"),
        Variant("tiny/onnx-int8", layout / "exports/tiny", "onnx-int8"),
        Variant("tfidf/sklearn", layout / "models/tfidf", "sklearn"),
    ]
    return run_benchmark(
        variants,
        TEXTS,
        LABELS_TRUE,
        reference="tiny/torch-fp32",
        rss=False,
        settle_s=0.0,
        peak_fill_s=0.01,  # the probes run, briefly: the figures are checked for shape, not speed
        progress=False,
        log=lambda _: None,
        **KNOBS,
    )


def test_every_variant_has_sane_numbers(result):
    rows = result["variants"]
    assert list(rows) == ["tiny/torch-fp32", "tiny/onnx-fp32", "tiny/onnx-int8", "tfidf/sklearn"]
    for name, r in rows.items():
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"], name
        assert r["mean_ms"] > 0 and r["throughput_bs8"] > 0
        for key in ("accuracy", "macro_f1", *(f"f1_{label}" for label in LABELS)):
            assert 0.0 <= r[key] <= 1.0, (name, key)
        assert r["size_mb"] > 0 and r["params"] > 0
        assert 0 < r["first_pass_p95_ms"] <= r["first_pass_max_ms"], name
        assert 0.0 <= r["agreement_ref"] <= 1.0
        assert all(math.isfinite(r[k]) for k in ("speedup_p50", "throughput_ratio"))
    ref = rows["tiny/torch-fp32"]
    assert ref["speedup_p50"] == 1.0 and ref["throughput_ratio"] == 1.0
    assert ref["accuracy_delta_pt"] == 0.0 and ref["agreement_fp32"] == 1.0
    # The baseline learns the invented templates; the untrained tiny BERT does not.
    assert rows["tfidf/sklearn"]["accuracy"] >= 0.9
    assert "agreement_fp32" not in rows["tfidf/sklearn"]  # no tfidf/torch-fp32 to agree with
    # INT8 is a quarter of fp32 on disk; its size counts the tokenizer too.
    assert rows["tiny/onnx-int8"]["size_mb"] < rows["tiny/onnx-fp32"]["size_mb"]
    assert rows["tiny/onnx-fp32"]["params"] == ref["params"]


def test_env_records_machine_threads_and_versions(result):
    env = result["env"]
    assert env["threads"] == 1 and env["cpu_count"] >= 1 and env["cpu"]
    assert {"torch", "onnxruntime", "transformers"} <= set(env["versions"])
    assert env["latency_sentences"] == 12 and env["repeats"] == 2 and env["n_test"] == len(TEXTS)
    for probe in (env["probe_before"], env["probe_after"]):
        # Positive and finite; no speed bound: a busy machine is slow, not wrong.
        assert 0 < probe["python_loop_ms"] < float("inf") and 0 < probe["matmul_ms"] < float("inf")


def test_host_probe_is_in_the_table_and_an_old_env_without_it_still_renders(result):
    env = {**result["env"], "probe_before": {"python_loop_ms": 55.4, "matmul_ms": 12.34}}
    env["probe_after"] = {"python_loop_ms": 201.0, "matmul_ms": 40.0}
    md = markdown_table({**result, "env": env})
    assert "10⁶ additions 55 ms before the run, 201 ms after" in md
    assert "matmuls 12.3 / 40.0 ms" in md
    old = {k: v for k, v in env.items() if not k.startswith("probe_")}
    assert "Host speed probe" not in markdown_table({**result, "env": old})


def test_first_call_per_length_is_timed_apart_from_the_steady_state():
    """A model that is slow the first time it sees a length (kernels built per shape, as
    PyTorch's oneDNN does) shows it in the first pass, not in the timed repetitions."""
    import time

    from finslm.bench import first_pass

    seen: set[int] = set()

    def call(text: str) -> None:
        if len(text) not in seen:
            seen.add(len(text))
            time.sleep(0.02)

    texts = ["a" * n for n in range(1, 9)]
    cold = first_pass(call, texts, warmup=2)
    assert len(seen) == 8  # every length built in the first pass
    assert cold["first_pass_max_ms"] >= 20 and cold["first_pass_p95_ms"] >= 20
    t0 = time.perf_counter()
    for text in texts:
        call(text)
    assert (time.perf_counter() - t0) * 1e3 < 20  # what the repetitions then time


def test_turns_are_round_robin_and_rotated():
    turns = _rotations(3, 3)
    assert turns == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    assert {t[0] for t in turns} == {0, 1, 2}  # each variant goes first once


def test_peak_rss_probes_run_side_by_side_and_come_back_in_order(layout):
    """Each probe is a fresh process; the benchmark runs them concurrently, and each figure
    must still be its own entry's: the ONNX model's process is above the no-model floor."""
    int8 = Variant("tiny/onnx-int8", layout / "exports/tiny", "onnx-int8")
    int8_mb, floor = _measure_all_rss([int8, None], TEXTS[:4], 1, 4, progress=False)
    assert 10 < floor < int8_mb < 2000
    assert floor == pytest.approx(measure_rss(None, TEXTS[:4], threads=1, batch_size=4), rel=0.1)


def test_outputs_csv_markdown_plots(result, tmp_path):
    write_csv(result, tmp_path / "b.csv")
    table = pd.read_csv(tmp_path / "b.csv")
    assert list(table["variant"]) == list(result["variants"])
    assert {"model", "backend", "accuracy", "p50_ms", "size_mb"} <= set(table.columns)
    md = markdown_table(result)
    assert md.count("\n| `") == len(result["variants"])
    assert "Machine:" in md and "1 threads" in md
    paths = plot_frontier(result, tmp_path / "plots")
    assert all(p.stat().st_size > 1000 for p in paths)


def _write_params(root, variants, **knobs):
    bench = {"variants": variants, "reference": variants[0], "rss": False, **KNOBS, **knobs}
    (root / "params.yaml").write_text(yaml.safe_dump({"benchmark": bench}))


def _run_stage(root):
    stage = load_stage("benchmark")
    args = ["--params", str(root / "params.yaml"), "--models", str(root / "models")]
    args += ["--exports", str(root / "exports"), "--test", str(root / "test.parquet")]
    args += ["--metrics", str(root / "metrics/benchmark.json")]
    args += ["--csv", str(root / "reports/benchmark.csv"), "--markdown", str(root / "reports/b.md")]
    args += ["--plots", str(root / "plots/benchmark")]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = stage.main(args)
    return code, err.getvalue()


def test_stage_writes_every_output(layout):
    pd.DataFrame({"text": TEXTS, "label": LABELS_TRUE}).to_parquet(layout / "test.parquet")
    _write_params(layout, ["tiny/onnx-int8", "tfidf/sklearn"], repeats=1)
    code, err = _run_stage(layout)
    assert code == 0, err
    metrics = json.loads((layout / "metrics/benchmark.json").read_text())
    assert set(metrics) == {"tiny/onnx-int8", "tfidf/sklearn", "env"}
    assert (layout / "reports/benchmark.csv").is_file() and (layout / "reports/b.md").is_file()
    assert len(list((layout / "plots/benchmark").glob("*.png"))) == 2


def test_stage_names_the_missing_stage(layout):
    _write_params(layout, ["tiny/onnx-int8", "nope/onnx-int8"])
    code, err = _run_stage(layout)
    assert code == 1  # every stage: a user error is status 1 and one line (finslm.stage)
    assert err.startswith("benchmark: error: ") and len(err.strip().splitlines()) == 1
    assert "'nope/onnx-int8' needs" in err and "dvc repro export@nope" in err


def test_benchmark_config_validation(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"benchmark": {"variants": ["minilm/onnx-int4"]}}))
    with pytest.raises(ConfigError, match=r"benchmark.variants: got 'minilm/onnx-int4'"):
        load_benchmark_config(path)
    path.write_text(
        yaml.safe_dump({"benchmark": {"variants": ["a/sklearn"], "reference": "b/sklearn"}})
    )
    with pytest.raises(ConfigError, match="benchmark.reference: got 'b/sklearn'"):
        load_benchmark_config(path)
    path.write_text(yaml.safe_dump({"benchmark": {"latency_sentence": 10}}))
    with pytest.raises(ConfigError, match="unknown key"):
        load_benchmark_config(path)
    path.write_text("{}")
    assert load_benchmark_config(path).latency_sentences == 300


def test_unknown_backend_is_a_model_error(layout):
    with pytest.raises(ModelError, match="backend 'onnx-int4': unknown; choose one of"):
        run_benchmark(
            [Variant("tiny/onnx-int4", layout / "exports/tiny", "onnx-int4")],
            TEXTS,
            LABELS_TRUE,
            reference="tiny/onnx-int4",
            rss=False,
            progress=False,
        )


def test_fraction_of_peak_and_padding(result):
    env, rows = result["env"], result["variants"]
    assert set(env["peak_gops"]) == {"torch-fp32", "ort-fp32", "ort-int8"}
    assert all(v > 0 for v in env["peak_gops"].values())
    bs = KNOBS["batch_size"]
    for name, engine in [
        ("tiny/torch-fp32", "torch-fp32"),
        ("tiny/onnx-fp32", "ort-fp32"),
        ("tiny/onnx-int8", "ort-int8"),
    ]:
        r = rows[name]
        assert r["peak_engine"] == engine
        assert r["gop_per_sentence"] > 0 and r["tokens_per_sentence"] > 2
        for key in ("peak_frac_bs1", f"peak_frac_bs{bs}"):
            assert 0 < r[key] <= 1.5, (name, key, r[key])
        assert 0 <= r[f"padding_waste_bs{bs}"] < 0.5  # length-bucketed batches pad little
        assert r["gops_bs1"] == pytest.approx(
            r["peak_frac_bs1"] * env["peak_gops"][engine], rel=0.01
        )
    assert "peak_frac_bs1" not in rows["tfidf/sklearn"]
    table = markdown_table(result)
    assert "% peak bs 1" in table and "ort-int8" in table


def test_percentiles_and_first_pass_warm_up():
    from finslm.bench import _percentiles, first_pass

    p = _percentiles([i / 1e3 for i in range(1, 101)])
    assert p["p50_ms"] == pytest.approx(50.5) and p["p95_ms"] == pytest.approx(95.05)
    calls = []
    out = first_pass(calls.append, ["a", "b", "c"], warmup=2)
    assert calls == ["a", "b", "a", "b", "c"] and out["first_pass_max_ms"] >= 0


def test_ratios_against_the_reference(result):
    rows, env = result["variants"], result["env"]
    ref = rows[env["reference"]]
    for r in rows.values():
        assert r["speedup_p50"] == pytest.approx(ref["p50_ms"] / r["p50_ms"], rel=0.02)
        assert r["throughput_ratio"] == pytest.approx(
            r["throughput_bs8"] / ref["throughput_bs8"], rel=0.02
        )
        assert r["accuracy_delta_pt"] == pytest.approx(
            100 * (r["accuracy"] - ref["accuracy"]), abs=0.06
        )
    assert rows["tfidf/sklearn"]["accuracy_delta_pt"] != 0  # the one row where it differs
    probe = env["peak_probe"]
    for e, v in env["peak_gops"].items():
        assert v == max(probe["before"][e], probe["after"][e])


def test_first_pass_p95_is_the_95th_percentile():
    import time

    from finslm.bench import first_pass

    out = first_pass(lambda t: time.sleep(len(t) / 1e3), ["a" * n for n in range(1, 11)], warmup=0)
    assert 8.5 < out["first_pass_p95_ms"] <= out["first_pass_max_ms"]  # p50 would be ~5.5


def test_batch1_rate_counts_the_latency_sentences_only(result, layout):
    from finslm.opcount import EncoderShape, sentence_ops
    from finslm.predict import load_predictor

    n = KNOBS["latency_sentences"]
    assert len(TEXTS) > n
    p = load_predictor(layout / "exports/tiny", "onnx-fp32", threads=1)
    ops = sentence_ops(
        EncoderShape.from_folder(layout / "exports/tiny"), p.lengths(TEXTS[:n]).tolist()
    )
    r = result["variants"]["tiny/onnx-fp32"]
    assert r["gops_bs1"] == pytest.approx(ops / n / (r["mean_ms"] / 1e3) / 1e9, rel=0.02)


def test_throughput_is_texts_over_time_summed_over_the_repetitions(layout, monkeypatch):
    # A predictor that costs a fixed 2 ms per text: 500 texts/s at most, whatever the repeats.
    import finslm.predict
    from finslm.bench import run_benchmark

    real = finslm.predict.load_predictor

    def slow(*args, **kwargs):
        predictor = real(*args, **kwargs)
        fast = predictor.predict_proba

        def predict_proba(texts, *a, **k):
            time.sleep(0.002 * len(texts))
            return fast(texts, *a, **k)

        predictor.predict_proba = predict_proba
        return predictor

    monkeypatch.setattr(finslm.predict, "load_predictor", slow)
    variant = Variant("tfidf/sklearn", layout / "models/tfidf", "sklearn")
    out = run_benchmark(
        [variant], TEXTS, LABELS_TRUE, reference="tfidf/sklearn", rss=False, settle_s=0.0,
        peak_fill_s=0.01, progress=False, log=lambda _: None, **KNOBS,
    )  # fmt: skip
    assert 300 < out["variants"]["tfidf/sklearn"]["throughput_bs8"] < 500  # counted once: < 250


def test_padding_waste_counts_the_engines_pad_multiple():
    """The benchmark's padding-waste figure counts the tokens an engine really pads to: a
    predictor that pads every batch up to a multiple of 8 tokens wastes more than one that pads
    only to the batch's longest sentence."""
    from finslm.bench import _Arithmetic
    from finslm.opcount import EncoderShape, sentence_ops

    shape = EncoderShape(layers=1, hidden=4, intermediate=8, labels=3, pooler=False)
    predictor = SimpleNamespace(pad_multiple=8, plan=lambda chunk, bs: [np.array([0, 1])])
    arith = _Arithmetic("ort-int8", shape, np.array([3, 5]))
    row = arith.rates(predictor, [["a b", "c d e f"]], 2, 1.0, 1.0, 2, {"ort-int8": 1.0})
    useful = sentence_ops(shape, [3, 5])
    executed = 2 * 2 * shape.macs(8)  # two sentences, each padded to 8 tokens
    assert row["padding_waste_bs2"] == pytest.approx(1 - useful / executed)
