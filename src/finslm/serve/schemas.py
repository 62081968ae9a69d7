"""Request and response bodies. Request models are built per app from its settings, so the
limits (``max_texts``, ``max_chars``) are enforced by validation and shown in the OpenAPI schema.

Requests are strict: unknown fields are rejected (a typo such as ``"text"`` for ``"texts"`` must
not be silently ignored), texts must be JSON strings (no number-to-string coercion), and a text
must hold a visible character, not only spaces, zero-width or control characters
(:mod:`finslm.visible`; bulk scoring rejects such rows for the same reason: a label for nothing is
not an answer).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, create_model

from finslm.serve.settings import EXPLAIN_METHODS, ServeSettings
from finslm.visible import VISIBLE_PATTERN


class Classification(BaseModel):
    label: str
    scores: dict[str, float] = Field(description="Probability per class, in the model's order.")
    truncated: bool = Field(
        False,
        description="Present (true) when the text is longer than the model's max tokens: "
        "only its first part was read.",
    )


class ClassifyResponse(BaseModel):
    model: str
    labels: list[str]
    results: list[Classification]


class Entity(BaseModel):
    text: str
    type: str
    start: int = Field(description="Character offset of the first character.")
    end: int = Field(description="Character offset after the last character (exclusive).")
    score: float = Field(description="Mean probability of the entity's word tags.")


class TextEntities(BaseModel):
    entities: list[Entity]


class EntitiesResponse(BaseModel):
    model: str
    types: list[str]
    results: list[TextEntities]


class ExplainResponse(BaseModel):
    model: str
    method: str
    text: str
    predicted: str
    target: str
    probabilities: dict[str, float]
    words: list[str]
    spans: list[list[int]]
    attributions: list[float] = Field(description="One value per word; > 0 supports target.")
    seconds: float
    truncated: bool = Field(
        False,
        description="True when the text is longer than the model's max tokens: words past "
        "them cannot change the answer, so their attributions are 0.",
    )


# A text must hold a letter, digit, punctuation mark or symbol (finslm.visible).
NOT_BLANK = VISIBLE_PATTERN


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def classify_request(
    settings: ServeSettings,
    name: str = "ClassifyRequest",
    example: str = "Operating profit rose 12% to EUR 4.1 mn.",
) -> type[BaseModel]:
    """``{"texts": [...]}`` within the server's limits (``/v1/classify``, ``/v1/entities``)."""
    text = Annotated[
        StrictStr, Field(min_length=1, max_length=settings.max_chars, pattern=NOT_BLANK)
    ]
    return create_model(
        name,
        __base__=Strict,
        texts=(
            Annotated[
                list[text],
                Field(
                    min_length=1,
                    max_length=settings.max_texts,
                    description=f"1 to {settings.max_texts} texts of at most "
                    f"{settings.max_chars} characters each.",
                    examples=[[example]],
                ),
            ],
            ...,
        ),
    )


def explain_request(settings: ServeSettings, labels: tuple[str, ...]) -> type[BaseModel]:
    return create_model(
        "ExplainRequest",
        __base__=Strict,
        text=(
            Annotated[
                StrictStr,
                Field(
                    min_length=1,
                    max_length=settings.explain_max_chars,
                    pattern=NOT_BLANK,
                    examples=["Net sales fell 8% in the quarter."],
                ),
            ],
            ...,
        ),
        method=(Literal[EXPLAIN_METHODS], "lime"),
        target=(Literal[labels] | None, None),
    )
