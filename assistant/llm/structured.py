"""JSON-schema structured output: the request format, parsing and the repair message.

The schema goes to the server as an OpenAI ``response_format`` of type ``json_schema``;
llama.cpp compiles it into a grammar and vLLM into guided decoding, so a well-behaved server
returns valid JSON. Validation into the pydantic model still runs, because servers that ignore
``response_format`` exist, output can be cut off at ``max_tokens``, and constraints such as
numeric ranges are not all enforced by grammars.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from assistant.llm.thinking import split_think

T = TypeVar("T", bound=BaseModel)

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def json_schema_for(schema: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, closed against extra properties (tighter grammars, strict mode)."""
    return _close_objects(copy.deepcopy(schema.model_json_schema()))


def _close_objects(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "object" and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)
    return node


def response_format_for(schema: type[BaseModel]) -> dict[str, Any]:
    name = _NAME_UNSAFE.sub("_", schema.__name__)[:64] or "response"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": json_schema_for(schema), "strict": True},
    }


def extract_json(text: str) -> str:
    """The JSON part of a reply: without a think block, a code fence or prose around the object."""
    answer, _ = split_think(text)
    answer = answer.strip()
    fenced = _FENCE.match(answer)
    if fenced:
        answer = fenced.group(1)
    if answer.startswith(("{", "[")):
        return answer
    start = answer.find("{")
    end = answer.rfind("}")
    if start != -1 and end > start:
        return answer[start : end + 1]
    return answer


class InvalidStructuredOutput(ValueError):
    """Why one reply did not validate; the message is written for the model to read."""


def parse_structured(text: str, schema: type[T], *, truncated: bool = False) -> T:
    candidate = extract_json(text)
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as error:
        hint = " The reply was cut off by the token limit." if truncated else ""
        raise InvalidStructuredOutput(
            f"The reply is not valid JSON ({error.msg} at char {error.pos}).{hint}"
        ) from error
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise InvalidStructuredOutput(
            "The JSON does not match the schema: " + describe_validation_error(error)
        ) from error


def describe_validation_error(error: ValidationError, limit: int = 6) -> str:
    problems = []
    for item in error.errors()[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "(root)"
        problems.append(f"{where}: {item['msg']}")
    more = len(error.errors()) - limit
    if more > 0:
        problems.append(f"... and {more} more")
    return "; ".join(problems)


def repair_message(problem: str, schema: type[BaseModel]) -> str:
    return (
        f"{problem}\nReply again with only one JSON object, no other text, that matches this "
        f"JSON schema:\n{json.dumps(json_schema_for(schema), separators=(',', ':'))}"
    )
