"""The REST API's request and response bodies.

A response body is read from a row's attributes (`model_validate(..., from_attributes=True)`),
never copied field by field; what the body computes for its caller (a username for a user,
a link, a field only maintainers see) is laid over the row with `Overlay`.
"""

from __future__ import annotations

from typing import Any


class Overlay:
    """An object's attributes with some replaced or added, for `model_validate` to read."""

    def __init__(self, base: object, **computed: Any) -> None:
        self._base = base
        self._computed = computed

    def __getattr__(self, name: str) -> Any:
        computed = self.__dict__["_computed"]
        if name in computed:
            return computed[name]
        return getattr(self.__dict__["_base"], name)
