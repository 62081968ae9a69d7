"""CSV / TSV / Parquet reading: columns, quoting, line numbers, numeric labels, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from finslm.data.errors import DataError
from finslm.data.tables import read_table

from .conftest import invented


def _write(tmp_path, name: str, text: str, enc: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(enc))
    return path


def test_csv_with_configured_columns(tmp_path):
    path = _write(tmp_path, "s.csv", f"id,sentence,sentiment\n7,{invented(1)},Positive\n")
    rows, rejects = read_table(path, "csv", "sentence", "sentiment")
    assert rows.to_dict("records") == [
        {"text": invented(1), "label": "Positive", "line": 2, "source": "s.csv"}
    ]
    assert rejects.empty


def test_quoted_newlines_keep_record_start_lines(tmp_path):
    text = (
        "text,label\r\n"
        '"Quillmoor said:\r\n""gizmos up""\r\nagain",positive\r\n'  # lines 2-4
        "Zentavia moved its pretend office,neutral\r\n"  # line 5
        '"Brindlecorp, a fictional firm,\nwarned",negative\n'  # lines 6-7
        "\n"  # line 8, blank
        "Vardenholt kept its forecast,neutral\n"  # line 9
    )
    rows, _ = read_table(_write(tmp_path, "q.csv", text), "csv", "text", "label")
    assert rows["line"].tolist() == [2, 5, 6, 9]
    assert rows.loc[0, "text"] == 'Quillmoor said:\r\n"gizmos up"\r\nagain'
    assert rows["label"].tolist() == ["positive", "neutral", "negative", "neutral"]


def test_tsv_with_unquoted_quotes_in_text(tmp_path):
    text = 'text\tlabel\nZentavia called it "fine"\tneutral\n'
    rows, _ = read_table(_write(tmp_path, "s.tsv", text), "tsv", "text", "label")
    assert rows.loc[0, "text"] == 'Zentavia called it "fine"'


def test_latin1_csv_is_decoded(tmp_path):
    path = _write(tmp_path, "l.csv", "text,label\nDüsseldorf gizmos,neutral\n", enc="latin-1")
    rows, _ = read_table(path, "csv", "text", "label")
    assert rows.loc[0, "text"] == "Düsseldorf gizmos"


def test_wrong_field_count_is_a_malformed_reject(tmp_path):
    text = f"text,label\n{invented(1)},neutral\nno comma here\n{invented(2)},neutral,extra\n"
    rows, rejects = read_table(_write(tmp_path, "m.csv", text), "csv", "text", "label")
    assert rows["line"].tolist() == [2]
    assert rejects[["line", "reason"]].to_dict("records") == [
        {"line": 3, "reason": "malformed_line"},
        {"line": 4, "reason": "malformed_line"},
    ]


def test_broken_quoting_is_a_data_error_with_its_line(tmp_path):
    text = f'text,label\n{invented(1)},neutral\n"never closed,neutral\n{invented(2)},neutral\n'
    with pytest.raises(
        DataError, match=r"b\.csv, line 3: cannot parse CSV: unexpected end of data"
    ):
        read_table(_write(tmp_path, "b.csv", text), "csv", "text", "label")


def test_missing_column_message_names_file_column_columns_and_fix(tmp_path):
    path = _write(tmp_path, "c.csv", f"sentence,label\n{invented(1)},neutral\n")
    with pytest.raises(DataError) as err:
        read_table(path, "csv", "text", "label")
    message = str(err.value)
    assert str(path) in message
    assert "no column 'text' (data.text_column)" in message
    assert "columns: 'sentence', 'label'" in message
    assert "-S data.text_column=sentence" in message


def test_missing_label_column_suggests_label_key(tmp_path):
    path = _write(tmp_path, "c.csv", f"text,sentiment\n{invented(1)},neutral\n")
    with pytest.raises(DataError, match=r"-S data\.label_column=sentiment"):
        read_table(path, "csv", "text", "label")


def test_header_only_csv_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        read_table(_write(tmp_path, "h.csv", "text,label\n"), "csv", "text", "label")


def test_parquet_numeric_labels_and_row_numbers(tmp_path):
    path = tmp_path / "p.parquet"
    frame = pd.DataFrame({"sentence": [invented(1), invented(2), None], "y": [0, 2, 1]})
    frame.to_parquet(path)
    rows, rejects = read_table(path, "parquet", "sentence", "y")
    assert rows["label"].tolist() == ["0", "2", "1"]
    assert rows["text"].tolist() == [invented(1), invented(2), ""]  # missing text -> ""
    assert rows["line"].tolist() == [1, 2, 3]
    assert rows["source"].unique().tolist() == ["p.parquet"]
    assert rejects.empty


def test_parquet_float_labels_with_missing_values(tmp_path):
    path = tmp_path / "f.parquet"
    pd.DataFrame({"text": [invented(1), invented(2)], "label": [1.0, float("nan")]}).to_parquet(
        path
    )
    rows, _ = read_table(path, "parquet", "text", "label")
    assert rows["label"].tolist() == ["1.0", ""]


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([b"Profit rose strongly"], "binary"),
        ([["Profit", "rose"]], "list<"),
        ([{"a": "Profit"}], "struct<a: string>"),
        ([pd.Timestamp("2020-01-01")], "timestamp"),
    ],
)
def test_parquet_text_column_that_is_not_text_is_a_data_error(tmp_path, values, kind):
    """Not silently trained on as "b'Profit rose strongly'" or "['Profit' 'rose']"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": values, "label": ["positive"]}), path)
    with pytest.raises(
        DataError, match=rf"t\.parquet: column 'text' \(data.text_column\) holds {kind}"
    ):
        read_table(path, "parquet", "text", "label")


def test_parquet_with_damaged_pandas_metadata_is_read(tmp_path):
    """Only the two columns are read, without pandas' metadata: a damaged index entry in it
    (KeyError inside pyarrow's pandas conversion) does not matter."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": [invented(1)], "label": ["neutral"]})
    meta = {"index_columns": ["nope"], "column_indexes": [], "columns": []}
    path = tmp_path / "m.parquet"
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}), path)
    rows, _ = read_table(path, "parquet", "text", "label")
    assert rows["text"].tolist() == [invented(1)] and rows["label"].tolist() == ["neutral"]


def test_a_duplicated_text_column_is_a_data_error(tmp_path):
    path = _write(tmp_path, "d.csv", f"text,text,label\n{invented(1)},x,positive\n")
    with pytest.raises(
        DataError,
        match=r"d\.csv: column 'text' \(data.text_column\) appears 2 times in the header \(columns 1, 2\)",
    ):
        read_table(path, "csv", "text", "label")


def test_invalid_parquet_is_a_data_error(tmp_path):
    path = _write(tmp_path, "bad.parquet", "not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable parquet file"):
        read_table(path, "parquet", "text", "label")


# --- issue #26 ---


@pytest.mark.parametrize(
    ("name", "fmt", "sep"), [("long.csv", "csv", ","), ("long.tsv", "tsv", "\t")]
)
def test_a_field_over_the_csv_limit_is_a_counted_too_long_reject(tmp_path, cfg, name, fmt, sep):
    # One 200,000-character cell used to abort the whole file (csv's 131,072 field limit).
    from finslm.data.clean import clean

    long_text = "Quillmoor " * 20_000
    text = f"text{sep}label\n{invented(1)}{sep}neutral\n{long_text}{sep}positive\n"
    loaded = read_table(_write(tmp_path, name, text), fmt, "text", "label")
    assert loaded.rows["line"].tolist() == [2, 3]
    kept, rejects, report = clean(loaded.rows, cfg(), loaded.rejects)
    assert report["dropped"]["too_long"] == 1 and len(kept) == 1
    assert rejects.loc[0, "line"] == 3 and rejects.loc[0, "reason"] == "too_long"
    import csv

    assert csv.field_size_limit() == 131072  # the limit is restored for other csv users


def test_tsv_read_as_csv_suggests_the_format(tmp_path):
    path = _write(tmp_path, "s.csv", f"text\tlabel\n{invented(1)}\tneutral\n")
    with pytest.raises(
        DataError, match=r"s.csv: read as CSV, .*TSV-separated. Fix: -S data.format=tsv"
    ):
        read_table(path, "csv", "text", "label")


def test_csv_read_as_tsv_suggests_the_format(tmp_path):
    path = _write(tmp_path, "s.tsv", f"text,label\n{invented(1)},neutral\n")
    with pytest.raises(DataError, match=r"Fix: -S data.format=csv"):
        read_table(path, "tsv", "text", "label")


def test_a_semicolon_separated_csv_says_so(tmp_path):
    """What a European-locale Excel writes as CSV: the fix is to re-save it, not a column."""
    path = _write(tmp_path, "eu.csv", f"text;label\n{invented(1)};neutral\n")
    with pytest.raises(DataError, match=r"eu.csv: its header 'text;label' is semicolon-separated"):
        read_table(path, "csv", "text", "label")


@pytest.mark.parametrize("label", ["negative", "Positive"])
def test_a_file_without_a_header_row_says_its_first_row_looks_like_data(tmp_path, label):
    path = _write(tmp_path, "nohead.csv", f"{invented(1)},{label}\n{invented(2)},neutral\n")
    with pytest.raises(DataError) as err:
        read_table(path, "csv", "text", "label")
    message = str(err.value)
    assert "looks like data, not a header" in message and "e.g. text,label" in message
    assert "-S data.text_column" not in message
    # A real header of short names still gets the column fix.
    path = _write(tmp_path, "named.csv", f"headline,label\n{invented(1)},{label}\n")
    with pytest.raises(DataError, match=r"-S data\.text_column=headline"):
        read_table(path, "csv", "text", "label")


def test_jsonl_rows_rejects_and_a_wrong_key(tmp_path):
    """JSON Lines: one object a line. Not an object, a missing key or a non-string text is a
    malformed_line reject with its line; numeric labels read as text; blank lines skipped."""
    import json

    lines = [
        json.dumps({"sentence": invented(1), "sentiment": "positive", "id": 1}),
        "",
        "not json",
        json.dumps([invented(2), "neutral"]),
        json.dumps({"sentence": invented(3)}),
        json.dumps({"sentence": 42, "sentiment": "neutral"}),
        json.dumps({"sentence": invented(4), "sentiment": 2}),
    ]
    path = _write(tmp_path, "d.jsonl", "\n".join(lines) + "\n")
    loaded = read_table(path, "jsonl", "sentence", "sentiment")
    assert loaded.rows[["text", "label", "line"]].values.tolist() == [
        [invented(1), "positive", 1],
        [invented(4), "2", 7],
    ]
    assert loaded.rejects["line"].tolist() == [3, 4, 5, 6]
    assert set(loaded.rejects["reason"]) == {"malformed_line"}
    with pytest.raises(
        DataError,
        match=r"d.jsonl, line 1: no key 'text' \(data.text_column\); the object has 'sentence', "
        r"'sentiment', 'id'. Fix: -S data.text_column=sentence",
    ):
        read_table(path, "jsonl", "text", "sentiment")
