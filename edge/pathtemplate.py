"""`google.api.http` path templates: parse them, match request paths, extract variables.

Grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@-]+$")


class TemplateError(ValueError):
    """A path template does not follow the google.api.http grammar."""


@dataclass(frozen=True, slots=True)
class Variable:
    """A `{field.path=segments}` capture."""

    field_path: str
    multi_segment: bool


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A parsed template with its compiled matcher."""

    text: str
    variables: tuple[Variable, ...]
    verb: str
    literal_count: int
    regex: re.Pattern[str]

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Return the decoded variables of a percent-encoded path, or None if it does not match."""
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for index, variable in enumerate(self.variables):
            raw = found.group(f"v{index}")
            if variable.multi_segment:
                # Keep encoded slashes of a multi-segment value distinguishable from separators.
                values[variable.field_path] = "/".join(unquote(p) for p in raw.split("/"))
            else:
                values[variable.field_path] = unquote(raw)
        return values

    def openapi_path(self) -> str:
        """Return the template as an OpenAPI path with `{field_path}` parameters."""
        out = self.text
        for variable in self.variables:
            out = re.sub(
                r"\{" + re.escape(variable.field_path) + r"(=[^}]*)?\}",
                "{" + variable.field_path + "}",
                out,
            )
        return out


def parse(text: str) -> PathTemplate:
    """Parse and compile a template; raise TemplateError when it is malformed."""
    if not text.startswith("/"):
        raise TemplateError(f"{text!r}: a template starts with '/'")
    body, verb = _split_verb(text[1:])
    variables: list[Variable] = []
    literals = 0
    pattern: list[str] = []
    segments = _split_segments(body, text)
    for position, segment in enumerate(segments):
        if "**" in segment and position != len(segments) - 1:
            raise TemplateError(f"{text!r}: '**' must be in the last segment")
        if segment.startswith("{"):
            if not segment.endswith("}"):
                raise TemplateError(f"{text!r}: unterminated variable {segment!r}")
            name, _, sub = segment[1:-1].partition("=")
            if not _IDENT.match(name):
                raise TemplateError(f"{text!r}: bad field path {name!r}")
            if any(v.field_path == name for v in variables):
                raise TemplateError(f"{text!r}: variable {name!r} appears twice")
            sub_segments = sub.split("/") if sub else ["*"]
            sub_pattern, multi, sub_literals = _segments_pattern(sub_segments, text)
            literals += sub_literals
            pattern.append(f"(?P<v{len(variables)}>{sub_pattern})")
            variables.append(Variable(name, multi))
        else:
            seg_pattern, _, seg_literals = _segments_pattern([segment], text)
            literals += seg_literals
            pattern.append(seg_pattern)
    regex = "/" + "/".join(pattern) + (":" + re.escape(quote(verb, safe="")) if verb else "")
    return PathTemplate(text, tuple(variables), verb, literals, re.compile(regex))


def _split_verb(body: str) -> tuple[str, str]:
    # The verb follows the last ':' that is outside any variable.
    depth = 0
    for index in range(len(body) - 1, -1, -1):
        char = body[index]
        if char == "}":
            depth += 1
        elif char == "{":
            depth -= 1
        elif char == ":" and depth == 0:
            verb = body[index + 1 :]
            if not _LITERAL.match(verb):
                raise TemplateError(f"bad verb {verb!r}")
            return body[:index], verb
        elif char == "/" and depth == 0:
            break
    return body, ""


def _split_segments(body: str, text: str) -> list[str]:
    segments: list[str] = []
    current = ""
    depth = 0
    for char in body:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
        else:
            current += char
    segments.append(current)
    if depth != 0 or any(not s for s in segments):
        raise TemplateError(f"{text!r}: empty segment or unbalanced braces")
    return segments


def _segments_pattern(segments: list[str], text: str) -> tuple[str, bool, int]:
    parts: list[str] = []
    multi = False
    literals = 0
    for index, segment in enumerate(segments):
        if segment == "**":
            if index != len(segments) - 1:
                raise TemplateError(f"{text!r}: '**' must be the last segment")
            parts.append("[^/]+(?:/[^/]+)*")
            multi = True
        elif segment == "*":
            parts.append("[^/]+")
        elif _LITERAL.match(segment):
            parts.append(re.escape(quote(segment, safe="!$&'()+,;=@:")))
            literals += 1
        else:
            raise TemplateError(f"{text!r}: bad segment {segment!r}")
    return "/".join(parts), multi, literals
