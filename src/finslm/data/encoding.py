"""Turn the bytes of a text data file into ``str`` and physical lines, or fail with a clear error.

    >>> text = read_text(Path("Sentences_50Agree.txt"))   # latin-1, CRLF: both handled
    >>> lines = split_lines(text)                          # lines[0] is line 1

Decoding order, and why:

1. A UTF-32 or UTF-16 BOM -> that encoding (Excel's "Unicode text" export is UTF-16; it is full
   of NUL bytes, so this must come before the binary check).
2. A NUL byte in the first 8 KiB -> a ``DataError``: UTF-16 without a BOM (NUL in every other
   byte) is named as such with the ``iconv`` line that converts it; anything else is a binary
   file (the same heuristic git uses).
3. UTF-8, strictly, after dropping a UTF-8 BOM. Strict first because a UTF-8 file read as
   latin-1 silently turns every accent into mojibake ("ä" -> "Ã¤"), while latin-1 text is almost
   never valid UTF-8 by accident, so a successful strict decode is a reliable signal.
4. Otherwise ISO-8859-1 (latin-1): the Financial PhraseBank is distributed in it, and every byte
   string is valid latin-1, so this never fails. Bytes 0x80-0x9F, which are invisible C1
   controls in latin-1, are read as Windows-1252 (euro sign, curly quotes), as browsers do for
   files labelled ISO-8859-1.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from finslm.data.errors import DataError

# Physical line ends: CRLF, lone CR (old Mac; the PhraseBank files mix them) and LF. Not
# str.splitlines(): that also splits on \x0b, \x0c, \x1c-\x1e, \x85 and \u2028, which can occur
# inside a latin-1 sentence and would shift every later line number.
_LINE_END = re.compile(r"\r\n|\r|\n")
_C1 = re.compile("[\x80-\x9f]")
# cp1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined; those stay as latin-1 code points.
_CP1252_C1 = {
    code: bytes([code]).decode("cp1252")
    for code in range(0x80, 0xA0)
    if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_BINARY_PROBE = 8192  # bytes inspected for NUL, like git's buffer_is_binary()


def decode_bytes(raw: bytes, name: str) -> str:
    """Decode a text file's bytes (see the module docstring for the order); ``name`` is for errors."""
    if codec := bom_codec(raw):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{name}: starts with a {codec.upper()} byte-order mark but is not valid "
                f"{codec.upper()} ({exc.reason} at byte {exc.start}). Fix: re-save the file "
                "as UTF-8."
            ) from None
    if b"\x00" in raw[:_BINARY_PROBE]:
        hint = " (it looks like a zip archive: extract it first)" if raw[:2] == b"PK" else ""
        if not hint and (codec := bomless_utf16(raw[:_BINARY_PROBE])):
            raise DataError(
                f"{name}: looks like {codec.upper()} text without a byte-order mark (every "
                f"other byte is NUL). Fix: iconv -f {codec.upper()} -t UTF-8 {name} > "
                f"{Path(name).stem}.utf8{Path(name).suffix}"
            )
        raise DataError(
            f"{name}: binary file, not text{hint}; it contains NUL bytes. Fix: point "
            "data.source at a UTF-8 or latin-1 text file (PhraseBank .txt, .csv, .tsv) or a "
            ".parquet file."
        )
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return cp1252_controls(raw.decode("latin-1"))


def cp1252_controls(text: str) -> str:
    """Latin-1 text with its C1 controls (bytes 0x80-0x9F) read as Windows-1252 (step 4)."""
    return text.translate(_CP1252_C1) if _C1.search(text) else text


# A well-formed UTF-8 multi-byte character. Latin-1 text almost never holds one by accident
# (it would need e.g. "Ã" followed by a byte in 0x80-0xBF).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def stream_encoding(path: Path, block: int = 1 << 20) -> str:
    """The codec to stream ``path`` with (``open(path, encoding=...)``), chosen as
    :func:`decode_bytes` chooses for a whole file, a block at a time:

    - a UTF-32 / UTF-16 byte-order mark: that codec;
    - ``latin-1`` (then :func:`cp1252_controls` on what is read) for a file with bytes that are
      not UTF-8 and no UTF-8 multi-byte character anywhere: a latin-1 or Windows-1252 file;
    - else ``utf-8-sig``: UTF-8, or a UTF-8 file with a few corrupt bytes, whose bad lines the
      caller rejects one by one rather than turning every accent of the file into mojibake.

    A file with NUL bytes near its start gets ``utf-8-sig`` too (the caller's errors apply).
    """
    with open(path, "rb") as fh:
        chunk = fh.read(_BINARY_PROBE)
        if codec := bom_codec(chunk):
            return codec
        if b"\x00" in chunk:
            return "utf-8-sig"
        decoder = codecs.getincrementaldecoder("utf-8")()
        invalid = multibyte = False
        while chunk:
            if not invalid:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    invalid = True
            multibyte = multibyte or _UTF8_MULTIBYTE.search(chunk) is not None
            if invalid and multibyte:
                break
            chunk = fh.read(block)
    return "latin-1" if invalid and not multibyte else "utf-8-sig"


def bom_codec(raw: bytes) -> str | None:
    """``utf-32`` or ``utf-16`` when ``raw`` starts with that byte-order mark, else None
    (UTF-32 first: its little-endian mark begins with UTF-16's)."""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def bomless_utf16(probe: bytes) -> str | None:
    """``utf-16le`` / ``utf-16be`` when NULs fill one byte of nearly every pair (mostly-ASCII
    text written as UTF-16 without a byte-order mark), else None."""
    pairs = len(probe) // 2
    if pairs < 4:
        return None
    for codec, offset in (("utf-16le", 1), ("utf-16be", 0)):
        nul = probe[offset : 2 * pairs : 2].count(0)
        other = probe[1 - offset : 2 * pairs : 2].count(0)
        if nul >= 0.9 * pairs and other <= 0.1 * pairs:
            return codec
    return None


def read_text(path: Path) -> str:
    """Read and decode a text data file; an empty or whitespace-only file is a ``DataError``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:  # permissions, a folder where a file was expected, I/O errors
        raise DataError(
            f"{path}: cannot read: {exc.strerror or exc}. Fix: check the path."
        ) from None
    text = decode_bytes(raw, str(path))
    if not text.strip():
        what = "0 bytes" if not raw else "only whitespace"
        raise DataError(
            f"{path}: empty file ({what}). Fix: check the download, or point data.source at "
            "a file with data."
        )
    return text


def split_lines(text: str) -> list[str]:
    """Split on CRLF, lone CR and LF only; element ``i`` is physical line ``i + 1``."""
    return _LINE_END.split(text)
