"""Request and response bodies of the HTTP API (responses reuse the consultation contracts)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from assistant.contracts import ConsultationState, TurnResult
from assistant.safety import MAX_MESSAGE_CHARS as SAFETY_MAX_MESSAGE_CHARS
from ui.services import ComponentHealth

# Generous for a patient's description, small enough that one request cannot tie up the LLM
# context or the log. Longer text is a 422 with this limit named.
MAX_MESSAGE_CHARS = SAFETY_MAX_MESSAGE_CHARS
MAX_INDICATION_CHARS = 2000
MAX_ANSWER_CHARS = 200

MessageText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
]
AnswerText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ANSWER_CHARS)
]


def decode_image(data: str | None) -> bytes | None:
    if data is None:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("image_base64 is not valid base64") from exc


class ConsultationCreate(BaseModel):
    """Opens a consultation; the opening message is optional (the assistant then asks)."""

    model_config = ConfigDict(extra="forbid")

    message: MessageText | None = Field(default=None, examples=["I have had a fever and a cough for 3 days"])
    # Strict: JSON true/false (or "34") is not an age; lax mode would read false as 0, a newborn.
    age: int | None = Field(default=None, ge=0, le=130, strict=True)
    sex: Literal["M", "F"] | None = None
    image_base64: str | None = Field(
        default=None, description="Optional PNG/JPEG/DICOM image, base64-encoded", max_length=40_000_000
    )

    @model_validator(mode="after")
    def _image_is_base64(self) -> ConsultationCreate:
        decode_image(self.image_base64)
        return self

    def image(self) -> bytes | None:
        return decode_image(self.image_base64)


class MessageCreate(BaseModel):
    """One patient turn: free text, or the answer to the pending follow-up question."""

    model_config = ConfigDict(extra="forbid")

    text: MessageText | None = Field(default=None, examples=["It started after a long flight"])
    answer: AnswerText | None = Field(
        default=None, description="Answer to the pending question, e.g. 'Yes', 'No', \"Don't know\""
    )
    image_base64: str | None = Field(default=None, max_length=40_000_000)

    @model_validator(mode="after")
    def _exactly_one(self) -> MessageCreate:
        if (self.text is None) == (self.answer is None):
            raise ValueError("give exactly one of 'text' or 'answer'")
        if self.answer is not None and self.image_base64 is not None:
            raise ValueError("an image can only come with 'text', not with 'answer'")
        decode_image(self.image_base64)
        return self

    def image(self) -> bytes | None:
        return decode_image(self.image_base64)


class HealthReport(BaseModel):
    status: Literal["ok", "degraded", "error"]
    components: dict[str, ComponentHealth]
    version: str


class ReportDraftResponse(BaseModel):
    """The draft as the report service returns it (FINDINGS / IMPRESSION and their grounds)."""

    model_config = ConfigDict(extra="allow")


MAX_QUESTION_CHARS = 500


class ImageQuestionResponse(BaseModel):
    """An image question's answer and the score behind it (or why there is none)."""

    question: str
    label: str | None = Field(description="The finding the question was matched to")
    finding_id: str | None = None
    probability: float | None = Field(None, description="The model's probability for that finding")
    verdict: Literal["likely present", "possible", "not detected", "not assessed", "no match", "out of scope"]
    answer: str
    model: str | None = Field(None, description="The image model that scored the image")
    in_scope: bool = Field(True, description="False: the image is unlike the model's training images")


__all__ = [
    "ConsultationCreate",
    "ConsultationState",
    "HealthReport",
    "ImageQuestionResponse",
    "MessageCreate",
    "ReportDraftResponse",
    "TurnResult",
]
