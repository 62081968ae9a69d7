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


class ErrorDetail(BaseModel):
    type: str = Field(description="What went wrong, e.g. string_too_long, overloaded, timeout.")
    message: str = Field(description="One line: what was wrong, where, and what to send.")
    field: str | None = Field(None, description="The request field (or header) at fault.")
    index: int | None = Field(None, description="The position in a list, when it applies.")


class ErrorResponse(BaseModel):
    """Every error the server answers, whatever its status (docs/serving.md, Errors)."""

    error: ErrorDetail


# The statuses a POST route can answer besides 200, for the OpenAPI schema (FastAPI would
# otherwise document 422 as its own {"detail": [...]} shape, which this server never sends).
ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse, "description": what}
    for status, what in {
        400: "Body not UTF-8, or JSON nested too deeply",
        401: "Missing or wrong API key (servers started with one)",
        408: "Body not received within body_timeout_s",
        413: "Body over max_body_bytes",
        415: "Body not application/json, or compressed",
        422: "Malformed JSON or a field that breaks the schema or a limit",
        503: "Overloaded or shutting down (Retry-After)",
        504: "No answer within request_timeout_s",
    }.items()
}


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
