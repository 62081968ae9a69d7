"""Read the Financial PhraseBank's native format: one ``sentence@label`` per line.

    >>> loaded = read_phrasebank(Path("FinancialPhraseBank-v1.0/Sentences_50Agree.txt"))
    >>> loaded.rows.columns.tolist()          # ['text', 'label', 'line', 'source']
    >>> folder = read_phrasebank_folder(Path("FinancialPhraseBank-v1.0"))
    >>> folder.rows["agreement"].unique()     # 1.0, 0.75, 0.66, 0.5

The files are ISO-8859-1 with CRLF and lone-CR line ends (see ``encoding``). A sentence may itself
contain '@' (e-mail addresses, "@ EUR 5"), so a line is split on its LAST '@'. Blank lines are
skipped; a line with no '@' or an empty label is a ``malformed_line`` reject, not a crash. The
text is kept as it is (tokenised, e.g. "company 's"): cleaning normalises it, nothing
detokenises it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from finslm.data.encoding import decode_bytes, read_text, split_lines
from finslm.data.errors import DataError
from finslm.data.schema import Loaded, rejects_frame, rows_frame

# Agreement tier of each file. The files are nested (AllAgree ⊂ 75 ⊂ 66 ⊂ 50), so a sentence's
# agreement is that of the highest tier it appears in; the 50Agree file holds every sentence.
AGREEMENT_FILES: dict[str, float] = {
    "Sentences_AllAgree.txt": 1.0,
    "Sentences_75Agree.txt": 0.75,
    "Sentences_66Agree.txt": 0.66,
    "Sentences_50Agree.txt": 0.5,
}
ALL_SENTENCES_FILE = "Sentences_50Agree.txt"


def parse_phrasebank(text: str, source: str) -> Loaded:
    """Parse decoded PhraseBank text; ``source`` names the file in rows, rejects and errors."""
    rows: list[dict] = []
    rejects: list[dict] = []
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue  # blank lines (e.g. the final line end) are layout, not data
        sentence, at, label = line.rpartition("@")
        if not at or not label.strip():
            # rpartition gives ("", "", line) when there is no '@': then there is no label.
            reject = {"line": number, "source": source, "reason": "malformed_line"}
            rejects.append(reject | {"text": line, "label": label if at else ""})
            continue
        rows.append({"text": sentence, "label": label, "line": number, "source": source})
    if not rows and rejects:
        first = rejects[0]["line"]
        raise DataError(
            f"{source}, line {first}: no line has the PhraseBank form 'sentence@label' "
            f"({len(rejects)} malformed). Fix: if this is a table, set data.format=csv or tsv."
        )
    return Loaded(rows_frame(rows), rejects_frame(rejects))


def read_phrasebank(path: Path) -> Loaded:
    """Read one PhraseBank ``.txt`` file (any encoding ``encoding.decode_bytes`` accepts)."""
    return parse_phrasebank(read_text(path), path.name)


def read_phrasebank_bytes(raw: bytes, source: str) -> Loaded:
    """Read PhraseBank bytes that are not a file on disk (a zip member from the hub)."""
    text = decode_bytes(raw, source)
    if not text.strip():
        raise DataError(f"{source}: empty file. Fix: check the download.")
    return parse_phrasebank(text, source)


def read_phrasebank_folder(folder: Path) -> Loaded:
    """Read a PhraseBank folder: the 50Agree rows plus an ``agreement`` column (0.5 … 1.0)."""
    missing = [name for name in AGREEMENT_FILES if not (folder / name).is_file()]
    if missing:
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise DataError(
            f"{folder}: not a complete Financial PhraseBank folder; missing "
            f"{', '.join(missing)} (found: {', '.join(found) or 'nothing'}). Fix: point "
            f"data.source at the folder of FinancialPhraseBank-v1.0, or at one .txt file "
            f"(no agreement column), e.g. -S data.source={folder / ALL_SENTENCES_FILE}"
        )
    loaded = read_phrasebank(folder / ALL_SENTENCES_FILE)
    rows = loaded.rows.copy()
    rows["agreement"] = _agreement(rows, folder)
    return Loaded(rows, loaded.rejects)


def _agreement(rows: pd.DataFrame, folder: Path) -> pd.Series:
    """Highest tier each row appears in, matched on (stripped text, lower-cased label)."""
    keys = list(zip(rows["text"].str.strip(), rows["label"].str.strip().str.lower(), strict=True))
    agreement = pd.Series(AGREEMENT_FILES[ALL_SENTENCES_FILE], index=rows.index, dtype="float64")
    # Lowest tier first, so each higher tier overwrites: the result is the maximum.
    for name, tier in sorted(AGREEMENT_FILES.items(), key=lambda item: item[1]):
        if name == ALL_SENTENCES_FILE:
            continue
        tier_rows = read_phrasebank(folder / name).rows
        in_tier = set(
            zip(
                tier_rows["text"].str.strip(),
                tier_rows["label"].str.strip().str.lower(),
                strict=True,
            )
        )
        agreement[[key in in_tier for key in keys]] = tier
    return agreement
