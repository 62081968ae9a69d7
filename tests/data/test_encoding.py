"""Decoding and line splitting: UTF-8, latin-1, BOMs, cp1252, binary and empty files."""

from __future__ import annotations

import codecs

import pytest

from finslm.data.encoding import decode_bytes, read_text, split_lines, stream_encoding
from finslm.data.errors import DataError

TEXT = "Zentavia's Düsseldorf café sold 3 gizmos@positive"


def test_utf8_is_decoded_as_utf8():
    assert decode_bytes(TEXT.encode("utf-8"), "f.txt") == TEXT


def test_latin1_falls_back_when_not_valid_utf8():
    assert decode_bytes(TEXT.encode("latin-1"), "f.txt") == TEXT


def test_utf8_bom_is_dropped():
    assert decode_bytes(codecs.BOM_UTF8 + TEXT.encode("utf-8"), "f.txt") == TEXT


def test_utf16_with_bom_is_decoded():
    assert decode_bytes(TEXT.encode("utf-16"), "f.txt") == TEXT


def test_utf32_with_bom_is_decoded_not_read_as_utf16():
    # UTF-32 LE's byte-order mark starts with UTF-16 LE's.
    assert decode_bytes(TEXT.encode("utf-32"), "f.txt") == TEXT
    assert decode_bytes(codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"), "f.txt") == TEXT


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_named_with_the_conversion(codec):
    with pytest.raises(
        DataError,
        match=rf"s\.csv: looks like {codec.upper().replace('-LE', 'LE').replace('-BE', 'BE')} text",
    ):
        decode_bytes(("text,label\n" + TEXT + ",positive\n").encode(codec), "s.csv")


def test_c1_bytes_are_read_as_cp1252():
    # 0x80 is the euro sign and 0x92 a right quote in Windows-1252, invisible controls in latin-1.
    assert (
        decode_bytes(b"\x80 5 for Quillmoor\x92s gizmo \xe4", "f.txt")
        == "€ 5 for Quillmoor’s gizmo ä"
    )


def test_binary_file_is_a_data_error_naming_the_file():
    with pytest.raises(DataError, match=r"blob\.txt: binary file.*NUL"):
        decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "blob.txt")


def test_zip_gets_a_hint_to_extract_it():
    with pytest.raises(DataError, match="zip archive"):
        decode_bytes(b"PK\x03\x04\x14\x00\x00\x00", "data.txt")


@pytest.mark.parametrize(("raw", "what"), [(b"", "0 bytes"), (b" \r\n\r\n\t", "only whitespace")])
def test_empty_file_is_a_data_error(tmp_path, raw, what):
    path = tmp_path / "empty.txt"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=rf"empty\.txt: empty file \({what}\)"):
        read_text(path)


def test_split_lines_handles_crlf_lone_cr_and_lf():
    assert split_lines("a\r\nb\rc\nd\r\n") == ["a", "b", "c", "d", ""]


def test_split_lines_keeps_other_unicode_breaks_inside_a_line():
    # \x85 (NEL), \x0c (form feed) and \u2028 would shift line numbers with str.splitlines().
    assert split_lines("a\x85b\x0cc\u2028d\r\ne") == ["a\x85b\x0cc\u2028d", "e"]


@pytest.mark.parametrize(
    ("raw", "codec"),
    [
        (b"plain ascii\n", "utf-8-sig"),
        (codecs.BOM_UTF8 + "Société\n".encode(), "utf-8-sig"),
        ("Société\n".encode("latin-1"), "latin-1"),
        (b"Profit \x80 5 million\n", "latin-1"),  # cp1252's euro sign: not UTF-8
        # A UTF-8 file (its "é") with one corrupt byte stays UTF-8: the bad line is rejected.
        ("Société\n".encode() + b"Umsatz f\xe4llt\n", "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "Société\n".encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF32_LE + "x\n".encode("utf-32-le"), "utf-32"),
    ],
)
def test_stream_encoding_chooses_as_decode_bytes_does(tmp_path, raw, codec):
    path = tmp_path / "f.csv"
    path.write_bytes(raw)
    assert stream_encoding(path) == codec


def test_stream_encoding_looks_past_the_first_block(tmp_path):
    """A latin-1 byte after many ASCII blocks still makes the file latin-1; a UTF-8 character
    after the latin-1 byte, in a later block, makes it UTF-8 again."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"a" * 10_000 + b" f\xe4llt")  # the first read is 8 KiB
    assert stream_encoding(path, block=16) == "latin-1"
    path.write_bytes(b"a" * 10_000 + b" f\xe4llt " + b"b" * 50 + "é".encode())
    assert stream_encoding(path, block=16) == "utf-8-sig"


def test_a_file_of_nul_bytes_is_called_binary_not_utf16():
    """A data file that is nothing but NUL bytes (a failed download) is reported as a binary
    file, not as UTF-16 text with an iconv command that cannot help."""
    from finslm.data.encoding import decode_bytes
    from finslm.data.errors import DataError

    with pytest.raises(DataError, match="binary file") as err:
        decode_bytes(b"\x00" * 64, "train.txt")
    assert "iconv" not in str(err.value)
