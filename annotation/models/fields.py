"""A small-integer vector stored as `smallint[]` on PostgreSQL and as JSON text on SQLite (demo).

Why an array per rating (not a row per emotion): see docs/decisions/0001-rating-storage.md.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class SmallIntVectorField(models.Field):  # type: ignore[type-arg]
    description = "A vector of small integers"

    def db_type(self, connection: Any) -> str:
        return "smallint[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[int] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return [int(v) for v in json.loads(value)]
        return [int(v) for v in value]

    def to_python(self, value: Any) -> list[int] | None:
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, str):
            try:
                return [int(v) for v in json.loads(value)]
            except (ValueError, TypeError) as exc:
                raise ValidationError(f"not a list of integers: {value!r}") from exc
        return [int(v) for v in value]

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        ints = [int(v) for v in value]
        return ints if connection.vendor == "postgresql" else json.dumps(ints)

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj))


class FloatVectorField(SmallIntVectorField):
    description = "A vector of floats"

    def db_type(self, connection: Any) -> str:
        return "real[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[float] | None:  # type: ignore[override]
        if value is None:
            return None
        if isinstance(value, str):
            return [float(v) for v in json.loads(value)]
        return [float(v) for v in value]

    def to_python(self, value: Any) -> list[float] | None:  # type: ignore[override]
        if value is None:
            return None
        if isinstance(value, str):
            return [float(v) for v in json.loads(value)]
        return [float(v) for v in value]

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        floats = [float(v) for v in value]
        return floats if connection.vendor == "postgresql" else json.dumps(floats)
