"""Bulk scoring (`finslm predict --input/--output`, finslm.bulk): every format, order kept,
bad rows counted and written aside, chunked reading, length-sorted batches."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from finslm.bulk import BulkError, read_chunks, rejects_path, score_file
from finslm.cli import app
from finslm.labels import LABELS
from finslm.predict import Predictor, load_predictor

from .conftest import invented_sentences

GOOD = [t for t, _ in invented_sentences(2)]  # 12 invented sentences
LONG = "Zentavia reported widget orders. " * 100  # 3,300 characters: too_long at 2,000


def _inputs() -> tuple[list, dict[int, str]]:
    """Cells in input order and the expected reason per 1-based row for the bad ones."""
    cells = [GOOD[0], "", GOOD[1], "   ", GOOD[2], LONG, *GOOD[3:8]]
    return cells, {2: "empty", 4: "empty", 6: "too_long"}


def _write_input(path, cells) -> None:
    if path.suffix in (".csv", ".tsv"):
        sep = "\t" if path.suffix == ".tsv" else ","
        frame = pd.DataFrame({"id": range(len(cells)), "headline": cells})
        frame.to_csv(path, index=False, sep=sep)
    elif path.suffix == ".parquet":
        pd.DataFrame({"headline": cells}).to_parquet(path)
    elif path.suffix == ".jsonl":
        rows = [
            json.dumps({"id": i, "headline": c}, ensure_ascii=False) for i, c in enumerate(cells)
        ]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    else:
        path.write_text("\n".join(cells) + "\n", encoding="utf-8")


def _read_output(path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.DataFrame([json.loads(line) for line in path.read_text("utf-8").splitlines()])


@pytest.fixture(scope="module")
def tfidf(tiny_tfidf):
    return load_predictor(tiny_tfidf)


@pytest.mark.parametrize("fmt_in", [".csv", ".tsv", ".parquet", ".jsonl", ".txt"])
@pytest.mark.parametrize("fmt_out", [".csv", ".parquet", ".jsonl"])
def test_every_format_keeps_order_and_counts_rejects(tfidf, tmp_path, fmt_in, fmt_out):
    cells, bad = _inputs()
    source, target = tmp_path / f"in{fmt_in}", tmp_path / f"out{fmt_out}"
    _write_input(source, cells)
    result = score_file(tfidf, source, target, text_column="headline", chunk_rows=4)
    assert result.rows == len(cells) and result.kept == len(cells) - len(bad)
    assert result.rows == result.kept + sum(result.rejected.values())
    assert result.rejected["empty"] == 2 and result.rejected["too_long"] == 1

    out = _read_output(target)
    assert list(out.columns) == ["row", "text", "label", *(f"p_{lb}" for lb in LABELS), "truncated"]
    assert not out["truncated"].astype(bool).any()  # TF-IDF reads every word
    kept_rows = [i for i in range(1, len(cells) + 1) if i not in bad]
    assert out["row"].tolist() == kept_rows  # input order, numbered as in the input
    assert out["text"].tolist() == [cells[i - 1] for i in kept_rows]
    expected = tfidf.predict_proba(out["text"].tolist())
    got = out[[f"p_{lb}" for lb in LABELS]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert out["label"].tolist() == [LABELS[i] for i in expected.argmax(axis=1)]

    with open(rejects_path(target), newline="", encoding="utf-8") as fh:
        rejects = list(csv.DictReader(fh))
    assert {int(r["row"]): r["reason"] for r in rejects} == bad
    assert all(len(r["text"]) <= 200 for r in rejects)


def test_chunks_are_bounded_and_results_do_not_depend_on_them(tfidf, tmp_path):
    cells = GOOD * 3  # 36 rows
    source = tmp_path / "in.csv"
    _write_input(source, cells)
    sizes = [len(c) for c in read_chunks(source, "csv", "headline", 5)]
    assert max(sizes) <= 5 and sum(sizes) == 36  # streamed, never read whole
    a = score_file(tfidf, source, tmp_path / "a.jsonl", text_column="headline", chunk_rows=5)
    b = score_file(tfidf, source, tmp_path / "b.jsonl", text_column="headline", chunk_rows=1000)
    assert a.kept == b.kept == 36
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    assert not rejects_path(tmp_path / "a.jsonl").exists()  # nothing rejected: no rejects file


class _Recorder(Predictor):
    """A predictor that records its batches; p = (len, 1, 1) normalised, so order is checkable."""

    def __init__(self):
        super().__init__(Path("."), {"labels": list(LABELS)})
        self.batches: list[list[str]] = []

    def _predict_batch(self, texts):
        self.batches.append(list(texts))
        proba = np.asarray([[len(t), 1.0, 1.0] for t in texts], dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)


def test_batches_are_length_sorted_and_results_come_back_in_input_order(tmp_path):
    texts = [f"{'x' * n} y" for n in (50, 3, 20, 1, 40, 9, 30)]
    source = tmp_path / "in.txt"
    _write_input(source, texts)
    recorder = _Recorder()
    score_file(recorder, source, tmp_path / "out.csv", batch_size=3)
    flat = [t for batch in recorder.batches for t in batch]
    assert [len(t) for t in flat] == sorted(len(t) for t in texts)
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["text"].tolist() == texts
    share = np.array([len(t) / (len(t) + 2) for t in texts])
    np.testing.assert_allclose(out["p_negative"], share, atol=1e-6)


def test_non_text_and_non_utf8_cells_are_rejects(tfidf, tmp_path):
    source = tmp_path / "in.parquet"
    # A parquet column has one type: a list column is not text at all, an error (not N rejects).
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": pa.array([[1], None, [2, 3]])}), source)
    with pytest.raises(BulkError, match=r"column 'text' is list<\w+: int64>, not text; Fix"):
        score_file(tfidf, source, tmp_path / "o.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]

    # A UTF-8 file (it has a UTF-8 "€") with one latin-1 line: that line is a reject.
    raw = (
        b"text\n"
        + GOOD[0].encode()
        + b"\nUmsatz f\xe4llt\n"
        + GOOD[1].encode()
        + b" \xe2\x82\xac\n"
    )
    source = tmp_path / "in.csv"
    source.write_bytes(raw)
    result = score_file(tfidf, source, tmp_path / "o2.csv")
    assert (result.rows, result.kept, result.rejected["not_utf8"]) == (3, 2, 1)
    assert result.encoding == "utf-8-sig" and "latin-1" not in result.summary()
    rejects = pd.read_csv(rejects_path(tmp_path / "o2.csv"))
    assert rejects.to_dict("records") == [{"row": 2, "reason": "not_utf8", "text": "Umsatz fällt"}]

    source = tmp_path / "in2.csv"
    source.write_text(f"id,text\n1,{GOOD[0]}\n2,a,b,c\n\n3,{GOOD[1]}\n", encoding="utf-8")
    result = score_file(tfidf, source, tmp_path / "o4.csv")
    assert (result.rows, result.kept) == (4, 2)
    assert (result.rejected["malformed"], result.rejected["empty"]) == (1, 1)

    source = tmp_path / "in.txt"
    source.write_bytes(raw[5:])
    result = score_file(tfidf, source, tmp_path / "o3.csv")
    assert (result.rows, result.kept, result.rejected["not_utf8"]) == (3, 2, 1)


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_a_latin1_file_is_read_as_prepare_reads_it(tfidf, tmp_path, suffix):
    """No UTF-8 character anywhere and bytes that are not UTF-8: the whole file is latin-1 /
    Windows-1252 (0x80 is the euro sign), every row is scored, and the summary says so."""
    texts = ["Soci\xe9t\xe9 G\xe9n\xe9rale raised its outlook", "Umsatz f\xe4llt um 5 \x80"]
    expected = ["Société Générale raised its outlook", "Umsatz fällt um 5 €"]
    lines = [t.encode("latin-1") for t in texts]
    if suffix == ".csv":
        lines.insert(0, b"text")
    source = tmp_path / f"in{suffix}"
    source.write_bytes(b"\r\n".join(lines) + b"\r\n")
    result = score_file(tfidf, source, tmp_path / "o.csv")
    assert (result.rows, result.kept, result.encoding) == (2, 2, "latin-1")
    assert "read as latin-1 / Windows-1252" in result.summary()
    assert pd.read_csv(tmp_path / "o.csv")["text"].tolist() == expected


def test_max_chars_is_inclusive(tfidf, tmp_path):
    n = 40
    source = tmp_path / "in.txt"
    source.write_text("a" * (n - 3) + " up\n" + "b" * (n - 2) + " up\n", encoding="utf-8")
    result = score_file(tfidf, source, tmp_path / "o.csv", max_chars=n)
    assert (result.kept, result.rejected["too_long"]) == (1, 1)
    assert pd.read_csv(tmp_path / "o.csv")["row"].tolist() == [1]
    assert pd.read_csv(rejects_path(tmp_path / "o.csv"))["row"].tolist() == [2]


def test_texts_with_nothing_visible_are_empty_rejects(tfidf, tmp_path):
    """Zero-width, control and format characters alone are not text (as the server says)."""
    source = tmp_path / "in.jsonl"
    rows = [GOOD[0], "\u200b\u200b", "\x00", "\ufeff \t", GOOD[1], "\u20ac"]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows), encoding="utf-8")
    result = score_file(tfidf, source, tmp_path / "o.csv")
    assert (result.rows, result.kept, result.rejected["empty"]) == (6, 3, 3)
    rejects = pd.read_csv(rejects_path(tmp_path / "o.csv"), keep_default_na=False)
    assert rejects["row"].tolist() == [2, 3, 4] and set(rejects["reason"]) == {"empty"}
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["row"].tolist() == [1, 5, 6]  # "€" alone is a symbol: scored


def test_jsonl_lines_that_are_not_objects_with_text_are_rejects(tfidf, tmp_path):
    lines = [
        json.dumps({"text": GOOD[0], "id": 1}).encode(),
        b"not json at all",
        b"[1, 2]",
        b"",
        json.dumps({"id": 5}).encode(),  # no text key after the first object: missing_key
        json.dumps({"text": 42}).encode(),
        b'{"text": "Umsatz f\xe4llt"}',
        json.dumps({"text": GOOD[1]}).encode(),
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = score_file(tfidf, source, tmp_path / "o.jsonl")
    assert (result.rows, result.kept) == (8, 2)
    expected = {"malformed": 2, "empty": 1, "missing_key": 1, "not_text": 1, "not_utf8": 1}
    assert {reason: n for reason, n in result.rejected.items() if n} == expected
    rejects = pd.read_csv(rejects_path(tmp_path / "o.jsonl"), keep_default_na=False)
    assert rejects["row"].tolist() == [2, 3, 4, 5, 6, 7]
    assert rejects.set_index("row").loc[5].tolist() == ["missing_key", '{"id": 5}']
    # The output is a valid input again: scoring it reproduces the same labels.
    again = score_file(tfidf, tmp_path / "o.jsonl", tmp_path / "o2.jsonl")
    assert again.kept == 2
    first, second = _read_output(tmp_path / "o.jsonl"), _read_output(tmp_path / "o2.jsonl")
    assert second["label"].tolist() == first["label"].tolist()

    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"headline": "a"}\n', encoding="utf-8")
    with pytest.raises(BulkError, match=r"line 1: no key 'text'; it has 'headline'\. Fix"):
        score_file(tfidf, wrong, tmp_path / "o3.jsonl")


def test_binary_csv_is_named_not_utf8(tfidf, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(BulkError, match=r"line 1: the header is not UTF-8 text"):
        score_file(tfidf, source, tmp_path / "o.csv")


def test_transformer_bulk_matches_plain_prediction(tiny_export, tmp_path):
    predictor = load_predictor(tiny_export[0], "onnx-fp32", threads=1)
    texts = [t for t, _ in invented_sentences(1)] + ["Short.", "A longer sentence " * 10]
    source = tmp_path / "in.txt"
    _write_input(source, texts)
    result = score_file(predictor, source, tmp_path / "out.parquet", batch_size=2)
    out = pd.read_parquet(tmp_path / "out.parquet")
    expected = predictor.predict_proba(texts, batch_size=1)
    got = out[[f"p_{lb}" for lb in LABELS]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert not out["truncated"].any() and result.truncated == 0


def test_texts_over_the_models_max_tokens_are_flagged_and_counted(tiny_export, tmp_path):
    from tokenizers import Tokenizer

    predictor = load_predictor(tiny_export[0], "onnx-fp32", threads=1)
    texts = ["Short.", "Orders rose. " * 100, "Sales fell 4% in the quarter."]  # 1,300 chars
    full = Tokenizer.from_file(str(tiny_export[0] / "tokenizer.json"))
    full.no_truncation()
    full.no_padding()
    long = [len(full.encode(t).ids) > predictor.max_tokens for t in texts]
    assert long == [False, True, False]
    source = tmp_path / "in.txt"
    _write_input(source, texts)
    result = score_file(predictor, source, tmp_path / "out.jsonl")
    assert _read_output(tmp_path / "out.jsonl")["truncated"].tolist() == long
    assert result.truncated == 1
    assert f"1 texts longer than the model's {predictor.max_tokens} tokens" in result.summary()
    # Counted over every chunk, not the last one's alone.
    _write_input(source, [*texts, *texts])
    result = score_file(predictor, source, tmp_path / "out2.jsonl", chunk_rows=2)
    assert _read_output(tmp_path / "out2.jsonl")["truncated"].tolist() == long + long
    assert result.truncated == 2


runner = CliRunner()


def test_cli_bulk_reports_throughput_and_rejects(tiny_tfidf, tmp_path):
    cells, bad = _inputs()
    source, target = tmp_path / "news.csv", tmp_path / "scored.jsonl"
    _write_input(source, cells)
    args = ["predict", "--input", str(source), "--output", str(target), "--text-column"]
    result = runner.invoke(app, [*args, "headline", "--model", str(tiny_tfidf), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"scored {len(cells) - len(bad)} of {len(cells)} rows" in result.stderr
    assert "sentences/s" in result.stderr and "too_long 1" in result.stderr
    assert len(target.read_text().splitlines()) == len(cells) - len(bad)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--output", "o.jsonl", "--text-column", "body"],
            "no column 'body'; it has 'id', 'headline'. Fix: --text-column NAME",
        ),  # fmt: skip
        (["--output", "o.xlsx"], "--output o.xlsx: unsupported type '.xlsx'"),
        ([], "--input needs --output FILE"),
        (["--output", "o.csv", "some text"], "give no texts"),
    ],
)
def test_cli_bulk_errors_are_one_line(tiny_tfidf, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    _write_input(tmp_path / "news.csv", GOOD[:2])
    result = runner.invoke(
        app, ["predict", "--input", "news.csv", "--model", str(tiny_tfidf), *extra]
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_failure_part_way_leaves_no_output(tmp_path):
    class Failing(_Recorder):
        def _predict_batch(self, texts):
            if self.batches:
                raise RuntimeError("boom")
            return super()._predict_batch(texts)

    source, target = tmp_path / "in.txt", tmp_path / "out.parquet"
    _write_input(source, GOOD)
    with pytest.raises(RuntimeError):
        score_file(Failing(), source, target, chunk_rows=4, batch_size=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # no half file, no temp


@pytest.mark.parametrize("fmt_out", [".csv", ".parquet", ".jsonl"])
def test_a_token_classifier_writes_entity_spans_per_row(tmp_path, fmt_out):
    from .fake_tagger import FakeTagger

    tagger = FakeTagger(tmp_path)
    cells = ["Then Velmont Bank hired staff in Oslo.", "", "plain words", "x" * 2001, "Ask Corvik"]
    source, target = tmp_path / "in.csv", tmp_path / f"out{fmt_out}"
    _write_input(source, cells)
    result = score_file(tagger, source, target, text_column="headline", chunk_rows=2)
    assert (result.rows, result.kept) == (5, 3)
    assert result.rejected["empty"] == 1 and result.rejected["too_long"] == 1

    out = _read_output(target)
    assert list(out.columns) == ["row", "text", "n_entities", "entities"]
    assert out["row"].tolist() == [1, 3, 5] and out["n_entities"].tolist() == [2, 0, 1]
    spans = [e if isinstance(e, list) else json.loads(e) for e in out["entities"]]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in spans[0]] == [
        ("ORG", "Velmont Bank", 5, 17), ("LOC", "Oslo", 33, 37),
    ]  # fmt: skip
    assert spans[1] == [] and spans[2][0]["text"] == "Corvik"


def test_cli_task_option_checks_the_model_folder(tiny_tfidf, tmp_path):
    ner = tmp_path / "ner"
    ner.mkdir()
    (ner / "finslm.json").write_text(json.dumps({"kind": "ner-onnx", "labels": ["O"]}))
    runner = CliRunner()
    result = runner.invoke(app, ["predict", "--task", "ner", "x", "--model", str(tiny_tfidf)])
    assert result.exit_code == 2 and "is a sentiment classifier" in result.output
    result = runner.invoke(app, ["predict", "--task", "sentiment", "x", "--model", str(ner)])
    assert result.exit_code == 2 and "is a token classifier (ner)" in result.output
    result = runner.invoke(app, ["predict", "--task", "pos", "x", "--model", str(ner)])
    assert result.exit_code == 2 and "--task 'pos': unknown" in result.output
    # `finslm ner predict` and --decode refuse a sentence classifier instead of failing inside.
    result = runner.invoke(app, ["ner", "predict", "x", "--model", str(tiny_tfidf)])
    assert (
        result.exit_code == 2 and "a sentence classifier, not a token classifier" in result.output
    )
    result = runner.invoke(app, ["predict", "x", "--model", str(tiny_tfidf), "--decode", "argmax"])
    assert result.exit_code == 2 and "applies to token classifiers (ner) only" in result.output
    result = runner.invoke(app, ["ner", "predict", "--model", str(ner)], input="\n \n")
    assert result.exit_code == 2 and "no text given" in result.output  # no "-": stdin unread
    result = runner.invoke(app, ["ner", "predict", "-", "--model", str(ner)], input="\n \u200b\n")
    assert result.exit_code == 2
    assert "nothing to score: the 2 input line(s) are blank" in result.output


# --- regressions from the CLI audit (/tmp/audit-cli/REPORT.md, items 1, 5-9, 12) ---


def test_an_output_whose_rejects_file_is_the_input_is_refused(tiny_tfidf, tmp_path):
    """Re-scoring fixed rejects into the same --output would overwrite them (item 1)."""
    source = tmp_path / "scored.csv.rejects.csv"
    source.write_text(f"text,id\n{GOOD[0]},1\n,2\n{GOOD[1]},3\n", encoding="utf-8")
    before = source.read_bytes()
    target = tmp_path / "scored.csv"
    args = ["predict", "--input", str(source), "--output", str(target), "-m", str(tiny_tfidf)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"its rejects file {source} is the input file" in result.output
    assert "choose another --output" in result.output
    assert source.read_bytes() == before and not target.exists()
    # The same through a different spelling of the same file.
    with pytest.raises(BulkError, match="is the input file"):
        score_file(load_predictor(tiny_tfidf), source, tmp_path / "." / "sub" / ".." / target.name)
    assert source.read_bytes() == before


def test_a_parquet_column_that_is_not_text_is_an_error(tfidf, tmp_path):
    """Not a reject per row and exit 0 (item 5): the schema says so before any row is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"text": pa.array([1, 2, None]), "headline": ["a", "b", "c"]}), source)
    message = r"column 'text' is int64, not text; its text columns: 'headline'\. Fix: --text-column"
    with pytest.raises(BulkError, match=message):
        score_file(tfidf, source, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists() and not rejects_path(tmp_path / "o.csv").exists()
    assert score_file(tfidf, source, tmp_path / "o.csv", text_column="headline").kept == 3


@pytest.mark.parametrize("dtype", ["binary", "large_binary", "dictionary"])
def test_a_binary_parquet_column_is_decoded_as_utf8(tfidf, tmp_path, dtype):
    """Spark writes strings as binary: each cell is UTF-8 text, or a not_utf8 reject (item 5)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cells = [GOOD[0].encode(), None, "Umsatz f\xe4llt".encode("latin-1"), GOOD[1].encode()]
    column = pa.array(cells, pa.large_binary() if dtype == "large_binary" else pa.binary())
    if dtype == "dictionary":
        column = column.dictionary_encode()
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": column}), source)
    result = score_file(tfidf, source, tmp_path / "o.csv")
    assert (result.rows, result.kept) == (4, 2)
    assert (result.rejected["empty"], result.rejected["not_utf8"]) == (1, 1)
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["row"].tolist() == [1, 4] and out["text"].tolist() == [GOOD[0], GOOD[1]]
    rejects = pd.read_csv(rejects_path(tmp_path / "o.csv"), keep_default_na=False)
    assert rejects.to_dict("records") == [
        {"row": 2, "reason": "empty", "text": ""},
        {"row": 3, "reason": "not_utf8", "text": "Umsatz fällt"},
    ]


@pytest.mark.parametrize("read_chars", [1, 2, 3, 7, 1 << 20])
def test_txt_lines_are_split_as_predict_file_splits_them(tfidf, tmp_path, monkeypatch, read_chars):
    """CR-only, CRLF and LF line ends, as `predict --file` reads them (item 6); reads that cut a
    CRLF in two change nothing."""
    from finslm import bulk
    from finslm.cli import _decode_lines

    monkeypatch.setattr(bulk, "_READ_CHARS", read_chars)
    raw = "\ufeff{}\r{}\r\n\r{}\n{}\r\r\n{}".format(*GOOD[:5]).encode()
    lines = _decode_lines(raw, "--file x")
    assert len(lines) == 7 and lines[0] == GOOD[0] and lines[-1] == GOOD[4]
    source = tmp_path / "in.txt"
    source.write_bytes(raw)
    result = score_file(tfidf, source, tmp_path / "o.jsonl")
    assert (result.rows, result.kept, result.rejected["empty"]) == (7, 5, 2)
    out = _read_output(tmp_path / "o.jsonl")
    wanted = [(n, line) for n, line in enumerate(lines, start=1) if line]
    assert list(zip(out["row"], out["text"], strict=True)) == wanted
    # A final line end adds no row; rows stay line numbers around a line that is not UTF-8.
    # (A UTF-8 file: its "€" says so; else the whole file would be read as latin-1.)
    source.write_bytes(
        GOOD[0].encode() + b"\rUmsatz f\xe4llt\r" + GOOD[1].encode() + b" \xe2\x82\xac\r"
    )
    result = score_file(tfidf, source, tmp_path / "o2.jsonl")
    assert (result.rows, result.kept, result.rejected["not_utf8"]) == (3, 2, 1)
    assert _read_output(tmp_path / "o2.jsonl")["row"].tolist() == [1, 3]
    # JSONL lines are split the same way.
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\r" for t in GOOD[:3]), "utf-8")
    assert score_file(tfidf, source, tmp_path / "o3.jsonl").kept == 3


def test_an_output_that_is_a_folder_fails_before_scoring_and_writes_no_rejects(
    tiny_tfidf, tmp_path
):
    """Not a new rejects file beside a failed run (item 7)."""
    source = tmp_path / "in.csv"
    _write_input(source, ["", GOOD[0]])  # row 1 is an empty reject
    folder = tmp_path / "adir.csv"
    folder.mkdir()
    args = ["predict", "--input", str(source), "--output", str(folder), "-m", str(tiny_tfidf)]
    result = runner.invoke(app, [*args, "--text-column", "headline"])
    assert result.exit_code == 2 and not rejects_path(folder).exists()
    assert f"--output {folder}: is a folder; pass a file name" in result.output  # before scoring


def test_the_rejects_file_is_renamed_into_place_after_the_output(tiny_tfidf, tmp_path, monkeypatch):
    """Renaming the output fails at the very end: the previous run's pair is left as it was
    (item 7)."""
    import finslm.outputs

    source = tmp_path / "in.csv"
    _write_input(source, ["", GOOD[0]])  # row 1 is an empty reject
    target = tmp_path / "out.csv"
    target.write_text("old output\n")
    rejects_path(target).write_text("old rejects\n")
    replace = finslm.outputs.os.replace

    def failing(src, dst):
        if Path(dst) == target:
            raise PermissionError(13, "Permission denied")
        return replace(src, dst)

    monkeypatch.setattr(finslm.outputs.os, "replace", failing)
    with pytest.raises(PermissionError):
        score_file(load_predictor(tiny_tfidf), source, target, text_column="headline")
    assert target.read_text() == "old output\n"
    assert rejects_path(target).read_text() == "old rejects\n"
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"in.csv", "out.csv", "out.csv.rejects.csv"}  # no temporary file left


@pytest.mark.parametrize(
    ("content", "line", "gave_up"),
    [
        ('text,id\nA,1\n"Unbalanced quote,2\nMiddle,3\nAnother "x" here,4\nLast,5\n', 3, 5),
        ('text,id\n"two\nlines",1\n\n"Unclosed,2\nx,3\n', 5, 6),  # after a multi-line record
        ('text,id\nA,1\n"closed" then text,2\n', 3, None),
    ],
)
def test_a_csv_quote_error_names_the_line_where_the_record_began(
    tfidf, tmp_path, content, line, gave_up
):
    """Not the line where the parser gave up, often many lines later (item 8)."""
    source = tmp_path / "in.csv"
    source.write_text(content, encoding="utf-8")
    with pytest.raises(BulkError) as error:
        score_file(tfidf, source, tmp_path / "o.csv")
    message = str(error.value)
    assert f"{source}, line {line}: cannot parse CSV: a quoted field opened on this line" in message
    assert (f"gave up at line {gave_up}" in message) == (gave_up is not None)


def test_cli_bulk_input_that_is_a_folder_or_stdin_says_so(tiny_tfidf, tmp_path, monkeypatch):
    """Not "no such file" or "unsupported type '(no suffix)'"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "news.csv").mkdir()
    (tmp_path / "batch").mkdir()
    cases = {
        "news.csv": "--input news.csv: is a folder; pass a file",
        "batch": "--input batch: is a folder; pass a file",
        "-": "bulk scoring reads files, not stdin. Fix: for stdin (one text per line) use "
        "`finslm predict -` without --input/--output",
    }
    for given, message in cases.items():
        args = ["predict", "--input", given, "--output", "o.csv", "-m", str(tiny_tfidf)]
        result = runner.invoke(app, args, input=f"{GOOD[0]}\n")
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch", "news.csv"]


def test_cli_bulk_run_that_scores_no_row_fails(tiny_tfidf, tmp_path):
    # Every row rejected (here: all blank) is a wrong file or column, not a result to ship.
    blank = tmp_path / "blank.csv"
    blank.write_text("text\n\n \n", encoding="utf-8")
    out = tmp_path / "o.csv"
    args = ["predict", "--input", str(blank), "--output", str(out), "-m", str(tiny_tfidf)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no row could be scored" in result.output
    assert "scored 0 of 2 rows" in result.output  # the summary with the reasons comes first
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n", encoding="utf-8")  # no rows at all is not an error
    args = ["predict", "--input", str(empty), "--output", str(out), "-m", str(tiny_tfidf)]
    assert runner.invoke(app, args).exit_code == 0


def test_bulk_strips_a_text_before_its_length_limit_and_output(tmp_path):
    """Surrounding spaces neither count towards `max_chars` nor reach the output."""
    source = tmp_path / "in.txt"
    source.write_text("  Sales rose.  \n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = score_file(_Recorder(), source, out, max_chars=12, progress=False)
    assert result.kept == 1
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["text"] == "Sales rose."


@pytest.mark.parametrize(
    ("first_line", "message"),
    [
        ("text;id", r"header 'text;id' is semicolon-separated"),
        (f"{GOOD[2]},1", r"the first row \(.*\) looks like data, not a header"),
    ],
)
def test_a_csv_header_that_is_not_comma_separated_names_the_fix(
    tfidf, tmp_path, first_line, message
):
    source = tmp_path / "in.csv"
    source.write_text(f"{first_line}\n{GOOD[0]},2\n", encoding="utf-8")
    with pytest.raises(BulkError, match=message):
        score_file(tfidf, source, tmp_path / "o.csv")


@pytest.mark.parametrize(("kind", "expected"), [("ner-transformer", 100_000), ("tfidf", 2000)])
def test_bulk_max_chars_defaults_by_task(tmp_path, monkeypatch, kind, expected):
    """A token classifier's windows tag every word of a long text, so its bulk default keeps
    texts a classifier (which reads only a text's start) rejects as too_long; an explicit
    --max-chars wins for both."""
    from finslm import cli

    seen = {}
    monkeypatch.setattr(cli, "check_model_folder", lambda *a, **k: None)
    monkeypatch.setattr(cli, "_bulk", lambda options, i, o, **kw: seen.update(kw))
    (tmp_path / "finslm.json").write_text(json.dumps({"kind": kind, "labels": list(LABELS)}))
    source = tmp_path / "in.txt"
    source.write_text("text\n", encoding="utf-8")
    args = [
        "predict",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
        "-m",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["max_chars"] == expected
    CliRunner().invoke(app, [*args, "--max-chars", "50"])
    assert seen["max_chars"] == 50
