"""Generate the embedded NER sample (data/sample/ner/*.conll): invented financial sentences.

Every company, person and most places are invented from the syllables and templates below;
the sentences are written for this project (CC0), not taken from any corpus. Entity types match
the default model's labels (PER, ORG, LOC). Deterministic: the same seed writes the same files.

    python tools/make_ner_sample.py            # data/sample/ner/train.conll, test.conll

train.conll: four columns (token, POS placeholder, chunk placeholder, tag), IOB2, with
``-DOCSTART-`` lines; test.conll: two columns (token, tag), IO tags — so the sample exercises
both layouts and the scheme normalisation.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

SYLLABLES = [
    "Ar",
    "bel",
    "Cor",
    "dan",
    "Vel",
    "ton",
    "Mar",
    "quis",
    "Lun",
    "dor",
    "Bra",
    "vik",
    "Ost",
    "ren",
    "Kal",
    "mere",
    "Sel",
    "wyn",
    "Tam",
    "ber",
    "Hol",
    "ridge",
    "Fen",
    "cast",
]
ORG_SUFFIX = [
    ["Corp."],
    ["Inc."],
    ["Holdings"],
    ["Bank"],
    ["Capital", "LLC"],
    ["Trust", "Company"],
    ["Partners", "L.P."],
    ["Financial", "Group"],
    ["Industries"],
    ["Bancorp"],
]
FIRST = [
    "Marla",
    "Torin",
    "Elspeth",
    "Dagny",
    "Oswin",
    "Perrin",
    "Calla",
    "Idris",
    "Junia",
    "Rowan",
    "Thea",
    "Lazlo",
    "Brisa",
    "Emeric",
    "Nola",
    "Caspar",
    "Wren",
    "Anselm",
]
LAST = [
    "Quenby",
    "Hathwell",
    "Ostrander",
    "Velloso",
    "Brackley",
    "Fennimore",
    "Tolliver",
    "Ashgrove",
    "Marchetti",
    "Dunleavy",
    "Okonkwo-Reyes",
    "Strand",
    "Pelham",
    "Vashti",
]
PLACES = [
    ["Port", "Halden"],
    ["Eastmere"],
    ["Calder", "Falls"],
    ["New", "Ostria"],
    ["Brindle", "County"],
    ["Varnholt"],
    ["Lake", "Severin"],
    ["Delaware"],
    ["Nevada"],
    ["Ontario"],
    ["Kessington"],
    ["South", "Marrow"],
]
AMOUNTS = ["$1,250,000", "$4.2 million", "$310,000", "$18.75 million", "$2,000,000", "$96,400"]
DATES = [
    "January 12, 2021",
    "March 3, 2019",
    "June 30, 2022",
    "September 1, 2020",
    "the Closing Date",
    "December 31, 2023",
]

# {ORG} {PER} {LOC} are entities; {AMT} {DATE} plain words.
TEMPLATES = [
    "This Credit Agreement is dated as of {DATE} between {ORG} and {ORG2} .",
    "{PER} , Chief Financial Officer of {ORG} , signed the note on {DATE} .",
    "The Borrower , {ORG} , a {LOC} corporation , shall repay {AMT} to the Lender .",
    "{ORG} reported net income of {AMT} for the quarter .",
    "Notices shall be sent to {PER} at the offices of {ORG} in {LOC} .",
    "The loan is secured by property located in {LOC} .",
    "{ORG2} agreed to acquire {ORG} for {AMT} in cash .",
    "{PER} was appointed President of {ORG} effective {DATE} .",
    "The guarantor , {PER} , resides in {LOC} .",
    "Payments are due to {ORG} no later than {DATE} .",
    "{ORG} , as Agent , and {PER} , as Guarantor , executed this Amendment .",
    "The facility of {AMT} was arranged by {ORG} and {ORG2} .",
    "Interest accrues at the rate announced by {ORG} from time to time .",
    "This Agreement shall be governed by the laws of {LOC} .",
    "{PER} and {PER2} serve as directors of {ORG} .",
    "Shares of {ORG} fell after the company cut its forecast .",
    "The lease covers office space in {LOC} leased from {ORG} .",
    "Witness my hand this {DATE} , {PER} , Notary Public , {LOC} .",
    "The Company had {AMT} outstanding under the revolving facility .",
    "Each Lender shall fund its share of the Advance on {DATE} .",
]


def org(rng: random.Random) -> list[str]:
    name = (rng.choice(SYLLABLES) + rng.choice(SYLLABLES)).capitalize()
    return [name, *rng.choice(ORG_SUFFIX)]


def person(rng: random.Random) -> list[str]:
    return [rng.choice(FIRST), rng.choice(LAST)]


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for word in rng.choice(TEMPLATES).split():
        kind, words = None, [word]
        if word in ("{ORG}", "{ORG2}"):
            kind, words = "ORG", org(rng)
        elif word in ("{PER}", "{PER2}"):
            kind, words = "PER", person(rng)
        elif word == "{LOC}":
            kind, words = "LOC", rng.choice(PLACES)
        elif word == "{AMT}":
            words = rng.choice(AMOUNTS).split()
        elif word == "{DATE}":
            words = rng.choice(DATES).replace(",", " ,").split()
        for i, w in enumerate(words):
            out.append((w, "O" if kind is None else f"{'B' if i == 0 else 'I'}-{kind}"))
    return out


def write(path: Path, sentences: list[list[tuple[str, str]]], columns: int, io: bool) -> None:
    lines = ["-DOCSTART- -X- -X- O", ""] if columns == 4 else []
    for k, s in enumerate(sentences):
        if columns == 4 and k and k % 40 == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        for word, tag in s:
            if io and tag.startswith("B-"):
                tag = "I-" + tag[2:]
            lines.append(f"{word} - - {tag}" if columns == 4 else f"{word} {tag}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/sample/ner"))
    parser.add_argument("--train", type=int, default=260)
    parser.add_argument("--test", type=int, default=80)
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    seen: set[tuple[str, ...]] = set()
    sentences = []
    while len(sentences) < args.train + args.test:
        s = sentence(rng)
        key = tuple(w for w, _ in s)
        if key not in seen:  # no duplicate and no train/test overlap
            seen.add(key)
            sentences.append(s)
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "train.conll", sentences[: args.train], columns=4, io=False)
    write(args.out / "test.conll", sentences[args.train :], columns=2, io=True)
    print(f"wrote {args.out}/train.conll ({args.train}) and test.conll ({args.test})")


if __name__ == "__main__":
    main()
