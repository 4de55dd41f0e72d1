"""DRF's JSON parser, refusing what the standard one turns into a 500 (#16 finding 7).

`json.loads` raises RecursionError (not a ValueError) for a body nested about a thousand levels
deep; DRF's JSONParser catches ValueError only. Here both become a 400 ParseError with a message.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply") from None
