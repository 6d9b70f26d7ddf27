"""How a route answers: a response model (``schemas.responses``) as JSON, with its status.

Flask's JSON provider writes the dumped model, so every answer is written the same
way (compact, keys in the model's order, a final newline), errors included.
"""

from __future__ import annotations

from flask import Response, jsonify
from pydantic import BaseModel

__all__ = ["respond"]


def respond(
    answer: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> tuple[Response, int]:
    response = jsonify(answer.model_dump(mode="json"))
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response, status
