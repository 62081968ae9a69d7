"""The label space shared by every dataset, model and report.

Order matters: a model's output column ``i`` is ``LABELS[i]``. It matches the Financial
PhraseBank's labels and FinBERT's convention (negative, neutral, positive).
"""

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))
