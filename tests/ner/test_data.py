"""NER loaders and cleaning on invented CoNLL / JSONL / Parquet snippets written here."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from finslm.config import NerConfig
from finslm.data.errors import DataError
from finslm.ner.data import (
    assert_no_overlap,
    clean,
    document_split,
    drop_overlap,
    read_conll,
    read_hub,
    read_sentences,
    read_table,
    stratified_split,
    windows,
)
from finslm.ner.prepare import prepare
from finslm.ner.tags import detect_scheme, spans, to_iob2

CONLL = """-DOCSTART- -X- -X- O

Velmont NNP B-NP I-ORG
Trust NNP I-NP I-ORG
hired VBD B-VP O
Oswin NNP B-NP I-PER
Pelham NNP I-NP I-PER
. . O O

-DOCSTART- -X- -X- O


Kessington NNP B-NP I-LOC
grew VBD B-VP O
. . O O
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_conll_any_columns_docstart_and_blank_lines(tmp_path):
    four = read_conll(write(tmp_path, "a.conll", CONLL))
    two = read_conll(
        write(
            tmp_path,
            "b.conll",
            "\n".join(" ".join((ln.split() or [""])[::3]) for ln in CONLL.splitlines()),
        )
    )
    assert [s["tokens"] for s in four] == [
        ["Velmont", "Trust", "hired", "Oswin", "Pelham", "."],
        ["Kessington", "grew", "."],
    ]
    assert four[0]["tags"] == ["I-ORG", "I-ORG", "O", "I-PER", "I-PER", "O"]
    assert [s["line"] for s in four] == [3, 13]  # the first token's line
    assert [s["document"] for s in four] == ["1", "2"]  # -DOCSTART- lines counted
    assert [s["tokens"] for s in two] == [s["tokens"] for s in four]
    assert [s["tags"] for s in two] == [s["tags"] for s in four]


@pytest.mark.parametrize(
    ("tags", "scheme", "iob2"),
    [
        (["I-ORG", "I-ORG", "O", "I-PER"], "io", ["B-ORG", "I-ORG", "O", "B-PER"]),
        # IOB1: B- only between two adjacent entities of one type.
        (["I-PER", "I-PER", "B-PER", "O"], "iob1", ["B-PER", "I-PER", "B-PER", "O"]),
        (["B-LOC", "I-LOC", "B-LOC", "O"], "iob2", ["B-LOC", "I-LOC", "B-LOC", "O"]),
        (["O", "I-ORG", "I-PER", "I-PER"], "io", ["O", "B-ORG", "B-PER", "I-PER"]),
    ],
)
def test_schemes_normalise_to_iob2(tags, scheme, iob2):
    assert detect_scheme([tags]) == scheme
    assert to_iob2(tags) == iob2
    assert (
        clean([{"tokens": list("abcd"), "tags": tags, "source": "x", "line": 1}]).rows.tags[0]
        == iob2
    )


def test_spans_decode_iob2_and_stray_i():
    assert spans(["B-ORG", "I-ORG", "O", "I-PER", "I-PER", "B-PER"]) == [
        ("ORG", 0, 2),
        ("PER", 3, 5),
        ("PER", 5, 6),
    ]


def sent(tokens, tags, line=1):
    return {"tokens": tokens.split(), "tags": tags.split(), "source": "s.conll", "line": line}


BAD = [
    sent("Acme rose .", "B-ORG O O", 1),
    sent("Acme rose .", "B-ORG O O", 5),  # duplicate
    sent("Acme rose .", "O O O", 9),  # conflicting duplicate
    sent("Dagny Strand left", "B-PER I-PER", 13),  # length mismatch
    sent("Brindle fell", "B- O", 17),  # unknown tag (no type)
    sent("Brindle fell", "PER O", 19),  # unknown tag (no prefix)
    {"tokens": [], "tags": [], "source": "s.conll", "line": 21},  # empty
    sent("Varnholt Bank paid", "B-ORG I-ORG O", 23),
    sent("paid Corvik Inc. in", "O I-ORG I-ORG O", 27),  # orphan I- in IOB2 data
]


def test_an_i_tag_of_another_type_is_an_orphan():
    """I-PER right after B-ORG starts a new entity: illegal in IOB2, like an I- after O."""
    from finslm.ner.tags import orphan_positions

    assert orphan_positions(["B-ORG", "I-PER"]) == [1]
    assert orphan_positions(["B-ORG", "I-ORG", "O", "I-LOC"]) == [3]
    out = clean([sent("Corvik Marla paid", "B-ORG I-PER O", 1)], scheme="iob2", orphan_i="reject")
    assert out.rejects.reason.tolist() == ["orphan_i"] and out.rows.empty


@pytest.mark.parametrize("policy", ["repair", "reject"])
def test_rejects_counted_by_reason_and_nothing_lost(policy):
    out = clean(BAD, scheme="iob2", orphan_i=policy)
    assert len(out.rows) + len(out.rejects) == len(BAD)
    expected = {
        "duplicate": 1,
        "conflicting_duplicate": 1,
        "length_mismatch": 1,
        "unknown_tag": 2,
        "empty": 1,
    }
    if policy == "reject":
        expected["orphan_i"] = 1
        assert len(out.rows) == 2
    else:
        assert out.counts["repaired"] == 1
        assert out.rows.tags.iloc[-1] == ["O", "B-ORG", "I-ORG", "O"]
    assert out.rejects.reason.value_counts().to_dict() == expected
    mismatch = out.rejects[out.rejects.reason == "length_mismatch"].iloc[0]
    assert (mismatch.line, mismatch.detail) == (13, "3 tokens, 2 tags")


def test_conll_line_without_tag_is_a_counted_length_mismatch(tmp_path):
    path = write(tmp_path, "m.conll", "Acme B-ORG\nrose\n. O\n\nfell O\n")
    out = clean(read_conll(path))
    assert out.rejects.reason.tolist() == ["length_mismatch"]
    assert out.rejects.line.tolist() == [1]
    assert out.rows.tokens.tolist() == [["fell"]]


def test_label_selection_maps_other_types_to_o():
    rows = [sent("Dagny works at Calder Bank in Eastmere", "B-PER O O B-ORG I-ORG O B-MISC")]
    out = clean(rows, entity_types=["PER", "ORG"], label_map={"MISC": "LOC"})
    assert out.rows.tags[0] == ["B-PER", "O", "O", "B-ORG", "I-ORG", "O", "O"]
    assert out.counts["retyped_tokens"] == 1
    kept = clean(rows, entity_types=["PER", "LOC"], label_map={"MISC": "LOC"})
    assert kept.rows.tags[0][-1] == "B-LOC"


def test_windows_keep_every_word_and_avoid_cutting_entities():
    tokens = [f"w{i}" for i in range(10)]
    tags = ["O", "O", "O", "B-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O"]
    frame = pd.DataFrame([{"tokens": tokens, "tags": tags, "source": "x", "line": 1}])
    out, cut = windows(frame, 5)
    assert cut == 1
    assert [t for w in out.tokens for t in w] == tokens  # nothing truncated
    assert out.tokens.tolist()[0] == ["w0", "w1", "w2"]  # cut before the entity, not inside
    assert all(len(w) <= 5 for w in out.tokens)
    # A window that must start inside an entity begins with B-.
    frame = pd.DataFrame(
        [{"tokens": tokens[:6], "tags": ["B-ORG"] + ["I-ORG"] * 5, "source": "x", "line": 1}]
    )
    out, _ = windows(frame, 4)
    assert out.tags.tolist()[1][0] == "B-ORG"
    # A boundary only in the window's first half is not taken (a 1-word window would follow):
    # the window is full, and the entity is cut.
    tags = ["O", "B-ORG"] + ["I-ORG"] * 8 + ["O"] * 5
    frame = pd.DataFrame([{"tokens": [f"w{i}" for i in range(15)], "tags": tags, "line": 1}])
    out, _ = windows(frame, 8)
    assert [len(w) for w in out.tokens] == [8, 7]


def test_jsonl_and_errors_name_file_and_line(tmp_path):
    good = [{"tokens": ["Acme", "rose"], "tags": ["B-ORG", "O"]}, {"tokens": ["a"], "tags": []}]
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in good))
    out = clean(read_sentences(str(path)))
    assert (len(out.rows), out.rejects.reason.tolist()) == (1, ["length_mismatch"])
    bad = write(tmp_path, "bad.jsonl", json.dumps(good[0]) + "\n{oops\n")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        read_sentences(str(bad))
    missing = write(tmp_path, "cols.jsonl", json.dumps({"words": ["a"]}))
    with pytest.raises(DataError, match=r"cols.jsonl, line 1: needs a 'tokens' list"):
        read_sentences(str(missing))
    latin = tmp_path / "latin.conll"
    latin.write_bytes(b"Acme B-ORG\n\nCaf\xe9 O\n")
    with pytest.raises(DataError, match=r"latin.conll, line 3: not UTF-8"):
        read_sentences(str(latin))
    with pytest.raises(DataError, match="no such file"):
        read_sentences(str(tmp_path / "nope.conll"))
    with pytest.raises(DataError, match="cannot tell the format"):
        read_sentences(str(write(tmp_path, "x.xlsx", "")))


def hf_parquet(path, names, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {
        "tokens": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
        "ner_tags": {"feature": {"names": names, "_type": "ClassLabel"}, "_type": "Sequence"},
    }
    table = pa.table({"tokens": [r[0] for r in rows], "ner_tags": [r[1] for r in rows]})
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def test_parquet_label_names_come_from_the_dataset(tmp_path):
    # Names in an order no code could assume; id 9 is outside them -> unknown_tag.
    names = ["O", "B-Revenue", "I-Revenue", "B-Debt", "I-Debt"]
    path = tmp_path / "t.parquet"
    hf_parquet(path, names, [(["Revenue", "was", "5.2"], [0, 0, 1]), (["x"], [9])])
    records = read_table(path)
    assert records[0]["tags"] == ["O", "O", "B-Revenue"]
    out = clean(records, entity_types=["Revenue"])
    assert out.rejects.reason.tolist() == ["unknown_tag"]


def test_finer_hub_layout_with_a_local_fake(tmp_path, monkeypatch):
    import huggingface_hub

    root = tmp_path / "snapshot"
    (root / "finer-139" / "train").mkdir(parents=True)
    (root / "finer-139" / "test").mkdir(parents=True)
    names = ["O", "B-DebtInstrumentFaceAmount", "I-DebtInstrumentFaceAmount", "B-Revenues"]
    train_rows = [([f"Notes{i}", "of", "$", "40"], [0, 0, 0, 1]) for i in range(4)]
    hf_parquet(root / "finer-139/train/0000.parquet", names, train_rows)
    hf_parquet(root / "finer-139/test/0000.parquet", names, [(["Sales", "of", "9"], [0, 0, 3])])
    calls = []

    def fake(repo_id, **kwargs):
        calls.append((repo_id, kwargs["revision"]))
        return str(root)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    records = read_hub("hub:nlpaueb/finer-139", "train", "")
    assert records[0]["tags"][-1] == "B-DebtInstrumentFaceAmount"
    assert records[0]["source"] == "finer-139/train/0000.parquet"
    assert calls == [("nlpaueb/finer-139", "refs/convert/parquet")]
    cfg = NerConfig(
        source="hub:nlpaueb/finer-139",
        test_source="",
        entity_types=["DebtInstrumentFaceAmount"],
        val_size=0.5,
    )
    # A hub source takes its test split from the hub (hub_test_split); Revenues -> O.
    splits, _, report = prepare(cfg)
    assert splits["test"].tokens.tolist() == [["Sales", "of", "9"]]
    assert splits["test"].tags.tolist() == [["O", "O", "O"]]
    assert (len(splits["train"]), len(splits["val"])) == (2, 2)
    assert report["sources"]["test_source"]["retyped_tokens"] == 1
    with pytest.raises(DataError, match=r"ner.val_size: 4 usable sentence\(s\) left .* a smaller"):
        prepare(dataclasses.replace(cfg, val_size=0.99))


def test_a_failed_hub_download_names_ner_source(monkeypatch):
    """Audit #9: the offline fix for `ner fetch` / a hub ner.source is ner.source, not the
    sentiment pipeline's data.source."""
    import huggingface_hub

    def offline(repo_id, **kwargs):
        raise OSError("no network.\nAn error happened while trying to locate the files.")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DataError) as caught:
        read_hub("hub:nlpaueb/finer-139", "train", "")
    message = str(caught.value)
    assert "hub:nlpaueb/finer-139: download from the Hugging Face hub failed" in message
    assert "point ner.source at the local file (e.g. -S ner.source=" in message
    assert "data.source" not in message
    assert "OSError: no network. An error happened" in message and "\n" not in message


def _fake_download(monkeypatch):
    """``read_hub`` replaced by one invented sentence; returns the list of calls made."""
    import finslm.ner.data

    calls = []

    def fake(source, split, config):
        calls.append(source)
        return [{"tokens": ["Velmont", "Bank", "grew"], "tags": ["B-ORG", "I-ORG", "O"]}]

    monkeypatch.setattr(finslm.ner.data, "read_hub", fake)
    return calls


def test_ner_fetch_checks_out_before_downloading(tmp_path, monkeypatch):
    """Audit #3h/#4: a wrong --out fails at once, in one line, with nothing downloaded."""
    from typer.testing import CliRunner

    from finslm.cli import app

    runner = CliRunner()
    calls = _fake_download(monkeypatch)
    (tmp_path / "adir.parquet").mkdir()
    (tmp_path / "afile").write_text("x")
    cases = [
        (tmp_path / "nf.csv", "write a .parquet or .jsonl file (got .csv)"),
        (tmp_path / "nf.xlsx", "write a .parquet or .jsonl file (got .xlsx)"),
        (tmp_path / "nf", "write a .parquet or .jsonl file (got no suffix)"),
        (tmp_path / "adir.parquet", "is a folder; pass a file path"),
        (tmp_path / "afile" / "x.parquet", f"{tmp_path / 'afile'} is a file, not a folder"),
        (Path("/proc/nope/x.parquet"), "cannot write there"),
    ]
    for out, message in cases:
        result = runner.invoke(app, ["ner", "fetch", "--out", str(out)])
        assert result.exit_code == 2, (out, result.output)
        assert f"error: --out {out}: {message}" in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert calls == []
    assert not (tmp_path / "nf.csv").exists() and not (tmp_path / "nf.xlsx").exists()


def test_ner_fetch_writes_parquet_or_jsonl_into_new_folders(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from finslm.cli import app

    runner = CliRunner()
    calls = _fake_download(monkeypatch)
    for out in (tmp_path / "a" / "b" / "finer.parquet", tmp_path / "c" / "finer.JSONL"):
        result = runner.invoke(app, ["ner", "fetch", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert f"wrote 1 sentences from hub:nlpaueb/finer-139 (train) to {out}" in result.output
        assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no partial file
    frame = pd.read_parquet(tmp_path / "a" / "b" / "finer.parquet")
    assert frame.tokens.map(list).tolist() == [["Velmont", "Bank", "grew"]]
    line = json.loads((tmp_path / "c" / "finer.JSONL").read_text().splitlines()[0])
    assert line == {"tokens": ["Velmont", "Bank", "grew"], "tags": ["B-ORG", "I-ORG", "O"]}
    assert len(calls) == 2


def test_ner_fetch_write_failure_and_failed_download_are_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import finslm.ner.data
    from finslm.cli import app

    runner = CliRunner()
    _fake_download(monkeypatch)

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    out = tmp_path / "x.parquet"
    result = runner.invoke(app, ["ner", "fetch", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"error: --out {out}: cannot write (No space left on device)" in result.output
    assert list(tmp_path.iterdir()) == []

    def offline(source, split, config):
        raise DataError("hub:x: download from the Hugging Face hub failed")

    monkeypatch.setattr(finslm.ner.data, "read_hub", offline)
    out = tmp_path / "new" / "deeper" / "x.parquet"
    result = runner.invoke(app, ["ner", "fetch", "--out", str(out)])
    assert result.exit_code == 2 and "error: hub:x: download" in result.output
    assert list(tmp_path.iterdir()) == []  # the folders made for --out are gone again


def test_splits_stratified_and_disjoint(tmp_path):
    rows = pd.DataFrame(
        [
            {
                "tokens": [f"t{i}", "x"],
                "tags": ["B-ORG" if i % 2 else "O", "O"],
                "source": "s",
                "line": i,
            }
            for i in range(40)
        ]
    )
    rest, held = stratified_split(rows, 0.25, 0)
    assert len(held) == 10 and sum(t[0] != "O" for t in held.tags) == 5
    assert_no_overlap({"train": rest, "test": held})
    with pytest.raises(DataError, match="share 1 sentence"):
        assert_no_overlap({"train": rest, "test": pd.concat([held, rest.iloc[:1]])})
    train, dropped = drop_overlap(rows, rows.iloc[:3])
    assert len(train) == 37 and dropped.reason.tolist() == ["overlap_with_test"] * 3


def test_prepare_accounts_for_every_sentence(tmp_path):
    lines = []
    for i in range(30):
        lines += [f"Firm{i} I-ORG", "rose O", f"in{i % 7} O", ""]
    lines += ["Firm0 I-ORG", "rose O", "in0 O", ""]  # a duplicate
    train = write(tmp_path, "train.txt", "\n".join(lines))
    test = write(tmp_path, "test.txt", "Firm1 I-ORG\nrose O\nin1 O\n\nNew I-LOC\nthing O\n")
    cfg = NerConfig(
        source=str(train), test_source=str(test), val_size=0.2, max_words=4, entity_types=["ORG"]
    )
    splits, rejects, report = prepare(cfg)
    acc = report["accounting"]
    assert acc["read"] == acc["kept"] + acc["rejected"] == 33
    assert report["rejects"] == {"duplicate": 1, "overlap_with_test": 1}
    assert report["sources"]["source"]["scheme"] == "io"
    assert len(splits["test"]) == 2 and splits["test"].tags[0][0] == "B-ORG"


def doc_rows(sizes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"tokens": [f"w{d}_{i}"], "tags": ["O"], "source": "f", "line": i, "document": d}
            for d, n in sizes.items()
            for i in range(n)
        ]
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_document_split_holds_out_whole_documents_near_the_share(seed):
    rows = doc_rows({"1": 40, "2": 10, "3": 25, "4": 15, "5": 10})
    rest, held = document_split(rows, 0.2, seed)
    assert len(rest) + len(held) == 100
    assert not set(rest.document) & set(held.document)  # no document is split
    assert 10 <= len(held) <= 30  # 20 is the target: never further than the best single doc
    again = document_split(rows, 0.2, seed)[1]
    assert held.document.tolist() == again.document.tolist()  # seeded


def test_document_split_never_holds_out_everything_and_needs_two_documents():
    rest, held = document_split(doc_rows({"1": 50, "2": 50}), 0.15, 0)
    assert len(rest) == len(held) == 50  # both over twice the target: one is still held out
    with pytest.raises(DataError, match="at least 2 documents.*ner.val_by: sentence"):
        document_split(doc_rows({"0": 30}), 0.2, 0)


def test_prepare_validation_by_document(tmp_path):
    lines = []
    for d in range(4):
        lines += ["-DOCSTART- O", ""]
        for i in range(10):
            lines += [f"Firm{d}x{i} I-ORG", "rose O", ""]
    train = write(tmp_path, "train.txt", "\n".join(lines))
    test = write(tmp_path, "test.txt", "New I-LOC\nthing O\n")
    cfg = NerConfig(
        source=str(train),
        test_source=str(test),
        val_size=0.25,
        val_by="document",
        entity_types=["ORG"],
    )
    splits, _, report = prepare(cfg)
    assert report["splits"]["val"]["documents"] == 1
    assert report["splits"]["train"]["documents"] == 3
    assert report["splits"]["val"]["sentences"] == 10
    assert not set(splits["train"].document) & set(splits["val"].document)


def malformed(records):
    out = clean(records)
    bad = out.rejects[out.rejects.reason == "malformed_line"]
    return bad.line.tolist(), bad.detail.tolist(), out


def test_jsonl_records_of_the_wrong_shape_are_counted_rejects(tmp_path):
    good = '{"tokens": ["Acme", "rose"], "tags": ["B-ORG", "O"]}'
    lines = [
        good,
        "5",
        "null",
        '{"tokens": null, "tags": ["O"]}',
        '{"tokens": 5, "tags": ["O"]}',
        '{"tokens": ["a"], "tags": null}',
        '{"tokens": "AB", "tags": "OO"}',  # list("AB") would keep ['A', 'B'] / ['O', 'O']
        '{"tokens": {"a": 1}, "tags": {"O": 1}}',  # a dict would keep its keys
        '{"tokens": ["a", 5], "tags": ["O", "O"]}',
        '{"tokens": ["a"], "tags": [1]}',  # integers only in the ner_tags layout
        "[" * 100_000 + "]" * 100_000,  # valid JSON, too deep for the parser
    ]
    path = write(tmp_path, "shape.jsonl", "\n".join(lines))
    line, detail, out = malformed(read_sentences(str(path)))
    assert line == list(range(2, 12))
    assert len(out.rows) == 1 and len(out.rows) + len(out.rejects) == len(lines)
    assert detail[0] == "an int, not a JSON object"
    assert detail[5] == "'tokens' is a str, not a list"
    assert detail[-1] == "JSON nested too deeply"
    assert out.counts["malformed_line"] == 10


def test_integer_ner_tags_must_be_integers(tmp_path):
    names = ["O", "B-ORG", "I-ORG"]
    path = tmp_path / "ids.parquet"
    hf_parquet(path, names, [(["Acme"], [1]), (["b"], None)])  # a null list cell
    line, detail, _ = malformed(read_table(path))
    assert (line, detail) == ([2], ["'ner_tags' is null, not a list"])
    # The same label names, ids written as JSON: strings, null, floats and huge numbers are
    # rejects, not a crash, and 1.7 is not cut to 1.
    ids = ['["x"]', "[null]", "[1e400]", "[1.7]", "[true]", "[1]"]
    jsonl = write(
        tmp_path,
        "ids.jsonl",
        "\n".join(f'{{"tokens": ["a{i}"], "ner_tags": {t}}}' for i, t in enumerate(ids)),
    )
    line, detail, out = malformed(read_table(jsonl, names))
    assert line == [1, 2, 3, 4, 5]
    assert detail[3] == "'ner_tags' holds a float (1.7), not int"
    assert out.rows.tags.tolist() == [["B-ORG"]]


def test_parquet_null_and_string_cells_are_counted_rejects(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lists = pa.table(
        {
            "tokens": [["Acme", "rose"], None, ["a", None]],
            "tags": [["B-ORG", "O"], ["O"], ["O", "O"]],
        }
    )
    pq.write_table(lists, tmp_path / "nulls.parquet")
    line, detail, out = malformed(read_sentences(str(tmp_path / "nulls.parquet")))
    assert (line, detail) == (
        [2, 3],
        ["'tokens' is null, not a list", "'tokens' holds null (None), not str"],
    )
    strings = pa.table({"tokens": ["AB"], "tags": ["OO"]})  # string columns, not lists
    pq.write_table(strings, tmp_path / "str.parquet")
    line, detail, out = malformed(read_sentences(str(tmp_path / "str.parquet")))
    assert (line, len(out.rows)) == ([1], 0)


@pytest.mark.parametrize("content", [b"", b"PAR1 not really", b"hello world\n" * 10])
def test_unreadable_parquet_names_the_file(tmp_path, content):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "broken.parquet"
    if content == b"PAR1 not really":  # a real file, truncated
        pq.write_table(pa.table({"tokens": [["a"]], "tags": [["O"]]}), path)
        content = path.read_bytes()[:-20]
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"broken.parquet: not a readable Parquet file"):
        read_sentences(str(path))


def test_conll_splits_only_on_ascii_blanks_and_physical_lines(tmp_path):
    path = write(
        tmp_path,
        "u.conll",
        "Sales NN O\nof IN O\n5\u00a0000 CD O\nA\u2028B O\n\nnext O\r\nline\tO\rend O\n"
        "\u00a0\u3000\nlast O\n",
    )
    out = read_conll(path)
    assert out[0]["tokens"] == ["Sales", "of", "5\u00a0000", "A\u2028B"]
    assert out[0]["tags"] == ["O"] * 4
    assert out[1]["tokens"] == ["next", "line", "end"]
    assert out[1]["line"] == 6  # U+2028 did not add a line
    # A line of only non-ASCII blanks ends a sentence, as an empty line does.
    assert [s["tokens"] for s in out[2:]] == [["last"]] and out[2]["line"] == 10


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_utf16_conll_gets_an_iconv_hint_that_works(tmp_path, encoding):
    path = tmp_path / "wide.conll"
    path.write_bytes("Acme B-ORG\nrose O\n".encode(encoding))
    name = "UTF-32" if encoding == "utf-32" else "UTF-16"
    with pytest.raises(DataError, match=rf"wide.conll: .*{name}.*iconv -f {name}\S* -t UTF-8"):
        read_sentences(str(path))


def test_format_overrides_the_suffix(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "real.pq"
    pq.write_table(pa.table({"tokens": [["Acme"]], "tags": [["B-ORG"]]}), path)
    assert read_sentences(str(path), "parquet")[0]["tags"] == ["B-ORG"]
    jsonl = write(tmp_path, "rows.txt", '{"tokens": ["Acme"], "tags": ["B-ORG"]}\n')
    assert read_sentences(str(jsonl), "jsonl")[0]["tokens"] == ["Acme"]
    with pytest.raises(DataError, match=r"rows.txt: not a readable Parquet file"):
        read_sentences(str(jsonl), "parquet")


def test_document_values(tmp_path):
    rows = [
        '{"tokens": ["a"], "tags": ["O"]}',
        '{"tokens": ["b"], "tags": ["O"], "document": null}',
        '{"tokens": ["c"], "tags": ["O"], "document": 1.0}',
        '{"tokens": ["d"], "tags": ["O"], "document": "10-K 2019"}',
        '{"tokens": ["e"], "tags": ["O"], "document": 7}',
        '{"tokens": ["f"], "tags": ["O"], "document": [1]}',
        '{"tokens": ["g"], "tags": ["O"], "document": {"id": 1}}',
        '{"tokens": ["h"], "tags": ["O"], "document": 1.5}',
        '{"tokens": ["i"], "tags": ["O"], "document": true}',
        '{"tokens": ["j"], "tags": ["O"], "document": 0}',
    ]
    records = read_sentences(str(write(tmp_path, "docs.jsonl", "\n".join(rows))))
    line, detail, out = malformed(records)
    # no document is "", kept apart from a real document 0
    assert out.rows.document.tolist() == ["", "", "1", "10-K 2019", "7", "0"]
    assert (
        line == [6, 7, 8, 9]
        and detail[0] == "'document' is a list ([1]), not a string or an integer"
    )
    path = tmp_path / "docs.parquet"
    pd.DataFrame(  # pandas writes an integer column with a gap as floats (NaN for the gap)
        {"tokens": [["a"], ["b"]], "tags": [["O"], ["O"]], "document": [3, None]}
    ).to_parquet(path)
    assert [r["document"] for r in read_sentences(str(path))] == ["3", ""]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no sentence in the file"), ("Acme\nrose\n", "no usable sentence")],
)
def test_prepare_stops_on_an_unusable_test_source(tmp_path, text, message):
    train = write(tmp_path, "train.txt", "\n".join(f"Firm{i} B-ORG\nrose O\n" for i in range(20)))
    test = write(tmp_path, "test.txt", text)  # empty, or every sentence rejected
    cfg = NerConfig(source=str(train), test_source=str(test), entity_types=["ORG"])
    with pytest.raises(DataError, match=rf"test.txt: {message}"):
        prepare(cfg)


def _org_sentences(n: int) -> str:
    return "\n".join(f"Firm{i} B-ORG\nrose O\nin{i} O\n" for i in range(n))


def test_an_entity_type_absent_from_the_source_is_an_error_with_a_close_name(tmp_path):
    # A typo would map every LOC tag to O and train a head for a type with no example.
    train = write(tmp_path, "train.txt", _org_sentences(10) + "\nPort B-LOC\nHalden I-LOC\n")
    cfg = NerConfig(source=str(train), test_source="", entity_types=["ORG", "LCO"])
    with pytest.raises(
        DataError, match=r"ner.entity_types: 'LCO' has no entity .*did you mean 'LOC'"
    ):
        prepare(cfg)
    renamed = dataclasses.replace(cfg, entity_types=["ORG", "PLACE"], label_map={"LOC": "PLACE"})
    assert prepare(renamed)[2]["entity_types"] == ["ORG", "PLACE"]


def test_a_source_that_is_all_test_sentences_says_so(tmp_path):
    train = write(tmp_path, "train.txt", _org_sentences(6))
    copy = write(tmp_path, "copy.txt", _org_sentences(6))
    cfg = NerConfig(source=str(train), test_source=str(copy), entity_types=["ORG"])
    with pytest.raises(DataError, match=r"all 6 usable sentences also occur in ner.test_source"):
        prepare(cfg)


def test_test_source_equal_to_source_holds_out_a_share_of_it(tmp_path):
    """What `test_source: ""` does, in a form DVC accepts as a dependency."""
    train = write(tmp_path, "train.txt", _org_sentences(20))
    same = NerConfig(source=str(train), test_source=str(train), entity_types=["ORG"])
    empty = dataclasses.replace(same, test_source="")
    splits, _, report = prepare(same)
    assert len(splits["test"]) == 4 and "test_source" not in report["sources"]
    other, _, _ = prepare(empty)
    for name in ("train", "val", "test"):
        assert splits[name]["tokens"].tolist() == other[name]["tokens"].tolist()


def test_bioes_and_lowercase_tags_are_read_as_iob2(tmp_path):
    """S-/U- start a one-word entity, E-/L- end one, lower-case prefixes are upper-cased;
    each changed tag is counted."""
    path = write(
        tmp_path,
        "b.conll",
        "Acme S-ORG\nand O\nBell B-ORG\nCorp E-ORG\nmet o\nAnn b-PER\nLee L-PER\nin O\nOslo U-LOC\n",
    )
    cleaned = clean(read_conll(path))
    assert cleaned.rows["tags"].tolist() == [
        ["B-ORG", "O", "B-ORG", "I-ORG", "O", "B-PER", "I-PER", "O", "B-LOC"]
    ]
    assert cleaned.counts["normalised_tags"] == 6 and cleaned.scheme == "iob2"


def test_types_outside_entity_types_are_warned_about_and_none_at_all_is_an_error(tmp_path, caplog):
    text = "\n".join(f"Firm{i} B-ORG\npaid O\n$5 B-MONEY\n" for i in range(20))
    path = write(tmp_path, "m.conll", text)
    cfg = NerConfig(source=str(path), test_source="", entity_types=["ORG"])
    with caplog.at_level("WARNING", logger="finslm"):
        prepare(cfg)
    assert "not in ner.entity_types: MONEY; their 20 tokens are read as O" in caplog.text
    only_o = write(tmp_path, "o.conll", "\n".join(f"Firm{i} O\nrose O\n" for i in range(20)))
    with pytest.raises(DataError, match=r"no entity in any usable sentence"):
        prepare(NerConfig(source=str(only_o), test_source="", entity_types=[]))


def test_ner_tags_holding_strings_name_the_column_to_use(tmp_path):
    path = write(tmp_path, "s.jsonl", json.dumps({"tokens": ["Acme"], "ner_tags": ["B-ORG"]}))
    with pytest.raises(
        DataError, match=r"'ner_tags' hold tag strings.*rename 'ner_tags' to 'tags'"
    ):
        read_sentences(str(path))


def test_no_usable_sentence_names_the_first_rejects_line_and_reason(tmp_path):
    rows = [{"tokens": ["Acme", "rose"], "tags": [1, 0]}] * 2
    path = write(tmp_path, "ints.jsonl", "\n".join(json.dumps(r) for r in rows))
    cfg = NerConfig(source=str(path), test_source="", entity_types=["ORG"])
    with pytest.raises(DataError, match=r"ints.jsonl: no usable .*line 1: malformed_line \('tags'"):
        prepare(cfg)


def test_a_jsonl_row_without_the_columns_is_a_counted_reject(tmp_path):
    rows = [
        {"tokens": ["Acme", "rose"], "tags": ["B-ORG", "O"]},
        {"tokens": ["x"], "labels": ["O"]},
    ]
    path = write(tmp_path, "mixed.jsonl", "\n".join(json.dumps(r) for r in rows))
    out = clean(read_sentences(str(path)))
    assert len(out.rows) == 1
    assert out.rejects[["line", "reason"]].values.tolist() == [[2, "malformed_line"]]


def test_iob1_is_detected_from_any_sentence_with_an_orphan_i():
    """One sentence whose entity starts with I- makes the corpus IOB1, even when every other
    sentence would read as IOB2 (else `orphan_i: reject` drops valid IOB1 sentences)."""
    assert detect_scheme([["B-ORG", "O"], ["I-PER", "O"]]) == "iob1"
    assert detect_scheme([["B-ORG", "O"], ["B-PER", "I-PER"]]) == "iob2"


def test_document_split_never_holds_out_every_document():
    """Two documents and a 90% share: one is held out, the other stays to train on."""
    rows = pd.DataFrame(
        [
            {"tokens": [f"w{doc}_{i}"], "tags": ["O"], "source": "f", "line": i, "document": doc}
            for doc in ("1", "2")
            for i in range(50)
        ]
    )
    rest, held = document_split(rows, 0.9, 0)
    assert len(rest) == 50 and len(held) == 50
    assert set(rest["document"]).isdisjoint(held["document"])


def test_a_label_map_rename_is_not_counted_as_retyping():
    """ORG renamed to COMPANY by `label_map` is the user's mapping, not a repaired tag."""
    cleaned = clean(
        [{"tokens": ["Acme", "Corp", "sued"], "tags": ["B-ORG", "I-ORG", "O"]}],
        label_map={"ORG": "COMPANY"},
    )
    assert cleaned.counts.get("retyped_tokens", 0) == 0


def test_a_tab_separated_token_with_spaces_is_read_as_its_words(tmp_path):
    """On a line with a tab, columns split on tabs only: a spaced token keeps every word, the
    first with the tag, the rest inside the same entity (not cut to its first word)."""
    path = write(
        tmp_path,
        "t.conll",
        "New York Mellon\tNNP\tB-ORG\nreported\tVBD\tO\n5 000\tCD\tO\nshares\tNNS\tO\n"
        "Ann Lee\tI-PER\n\nplain O\n",
    )
    first, second = read_conll(path)
    assert first["tokens"] == [
        "New",
        "York",
        "Mellon",
        "reported",
        "5",
        "000",
        "shares",
        "Ann",
        "Lee",
    ]
    assert first["tags"] == ["B-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O", "I-PER", "I-PER"]
    assert (second["tokens"], second["tags"]) == (["plain"], ["O"])
