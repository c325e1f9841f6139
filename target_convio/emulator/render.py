"""Convio's two answer formats: namespaced XML, and the JSON that mirrors it."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

NAMESPACE = "http://convio.com/crm/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NAMESPACE} http://service.convio.net/xmlschema/crm.public.v1.xsd"

XML_CONTENT_TYPE = "text/xml;charset=UTF-8"
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


def render(root: str, body: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """The encoded answer and its Content-Type; fmt is "json" or "xml"."""
    if fmt == "json":
        return to_json(root, body), JSON_CONTENT_TYPE
    return to_xml(root, body), XML_CONTENT_TYPE


def to_xml(root: str, body: dict[str, Any]) -> bytes:
    """`<root xmlns=...>` with one element per key; a list repeats its element."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<{root} xmlns="{NAMESPACE}" xmlns:xsi="{XSI}" xsi:schemaLocation="{SCHEMA_LOCATION}">',
    ]
    _xml_children(body, parts)
    parts.append(f"</{root}>")
    return "".join(parts).encode("utf-8")


def _xml_children(body: dict[str, Any], parts: list[str]) -> None:
    for key, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                parts.append(f'<{key} xsi:nil="true"/>')
            elif isinstance(item, dict):
                parts.append(f"<{key}>")
                _xml_children(item, parts)
                parts.append(f"</{key}>")
            else:
                parts.append(f"<{key}>{escape(_scalar(item))}</{key}>")


def to_json(root: str, body: dict[str, Any]) -> bytes:
    """JSON as Convio derives it from the XML: strings only, one-item lists collapsed."""
    return json.dumps({root: _json_value(body)}, ensure_ascii=False).encode("utf-8")


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        # An element with no occurrences is simply absent, as in the XML.
        return {k: _json_value(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return _json_value(value[0]) if len(value) == 1 else [_json_value(v) for v in value]
    return None if value is None else _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
