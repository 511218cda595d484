"""Finding the JSON properties a FHIRPath expression selects in a resource, so they can be edited.

fhirpathpy evaluates the expression. Each node it returns carries `propName`, the route it was
reached by (`Patient.contact[0].name.text`, `Observation.value`); this module walks that route
through the JSON and the element definitions (which resolve choice elements and say when a step
goes into a primitive's `_name` extensions) back to the property holding the node, and checks that
the property holds that very node (the same object, or an equal primitive). Identity alone would
not do: a primitive (`"male"`) is not an object that can be found again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from fhir_server.patch.elements import Element, child
from fhir_server.patch.errors import unprocessable
from fhir_server.patch.fields import Field, Json

_R4 = models["r4"]
_ROUTE = re.compile(r"(?:\.[A-Za-z][A-Za-z0-9]*(?:\[\d+\])?)*")
_STEP = re.compile(r"\.([A-Za-z][A-Za-z0-9]*)(?:\[(\d+)\])?")


@dataclass(frozen=True)
class Location:
    """Where one selected element is: the property and list position holding it."""

    field: Field | None  # None for the resource itself
    index: int | None  # position in the property's array, None when it does not repeat
    element: Element | None  # None for the resource itself
    type_code: str  # the type of the value found here
    value: Any
    up: Location | None = None  # the element this one is a child of
    in_extensions: bool = False  # held by the `_name` object of the primitive at `up`

    @property
    def context(self) -> str:
        """Where the children of the value found here are defined."""
        return self.element.context(self.type_code) if self.element else self.type_code

    def children(self) -> Json | None:
        """The JSON object holding this element's children, if there is one.

        That is the element itself, or for a primitive its `_name` twin (its id and extensions).
        """
        if isinstance(self.value, dict):
            return self.value
        return self.field.companion(self.index) if self.field else None

    def holder(self) -> Json:
        """`children()`, created for a primitive that has none yet."""
        if isinstance(self.value, dict) or self.field is None:
            return self.value
        return self.field.ensure_companion(self.index)


class _Collect(ErrorListener):
    def __init__(self) -> None:
        self.errors: list[str] = []

    # ANTLR's callback, named by ANTLR.
    def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, error: Any) -> None:
        self.errors.append(f"column {column + 1}: {msg}")


def syntax_error(path: str) -> str | None:
    """What is wrong with the FHIRPath expression `path`, or None when it parses.

    fhirpathpy's own parser recovers silently from syntax errors, so its ANTLR grammar is run here
    with a listener that records them.
    """
    listener = _Collect()
    lexer = FHIRPathLexer(InputStream(_rewrite(path)))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    parser.entireExpression()
    return listener.errors[0] if listener.errors else None


def select(resource: Json, path: str) -> list[Location]:
    """The distinct elements of `resource` that `path` selects, in the order FHIRPath gives them."""
    try:
        # %resource and %rootResource are the resource being patched (FHIR's FHIRPath variables).
        variables = {"resource": resource, "rootResource": resource}
        nodes = fhirpathpy.evaluate(resource, _rewrite(path), variables, _R4, {"returnRawData": True})
    # fhirpathpy signals evaluation failures with bare Exceptions (and the odd IndexError).
    except Exception as error:
        raise unprocessable(f"Cannot evaluate {path}: {error}") from error
    found: dict[tuple[int, str, int | None], Location] = {}
    for node in nodes:
        # Entries of a primitive array's `_name` twin that are null come back as empty nodes.
        if isinstance(node, ResourceNode) and node.data is None:
            continue
        location = _locate(resource, node)
        if location is None:
            raise unprocessable(f"{path} selects something that is not an element of the resource")
        field = location.field
        found.setdefault((id(field.owner), field.key, location.index) if field else (0, "", None), location)
    return list(found.values())


def _rewrite(path: str) -> str:
    """`path` with two spellings fhirpathpy mishandles replaced by equivalent ones.

    - `text.div`: `div` (like `mod`) is also an operator, which the grammar takes it for; FHIR paths
      (the official patch test cases among them) use it as the name of Narrative.div all the same.
    - `extension(url)`: fhirpathpy builds its nodes without their route (and keeps only the first
      match), so it becomes the filter the FHIRPath specification defines it as.
    Working on tokens keeps string literals and comments out of harm's way.
    """
    lexer = FHIRPathLexer(InputStream(path))
    lexer.removeErrorListeners()  # syntax_error reports them
    tokens = [token for token in lexer.getAllTokens() if token.channel == Token.DEFAULT_CHANNEL]
    pieces, done = [], 0
    for number, token in enumerate(tokens):
        if token.text in ("div", "mod") and number > 0 and tokens[number - 1].text == ".":
            end, replacement = token.stop, f"`{token.text}`"
        elif token.text == "extension" and _is_call_on_string(tokens, number):
            end, replacement = tokens[number + 3].stop, f"extension.where(url = {tokens[number + 2].text})"
        else:
            continue
        pieces += [path[done : token.start], replacement]
        done = end + 1
    return "".join([*pieces, path[done:]])


def _is_call_on_string(tokens: list[Any], number: int) -> bool:
    window = tokens[number + 1 : number + 4]
    return (
        len(window) == 3
        and window[0].text == "("
        and window[1].type == FHIRPathLexer.STRING
        and window[2].text == ")"
    )


def _locate(resource: Json, node: object) -> Location | None:
    root = Location(None, None, None, resource["resourceType"], resource)
    if not isinstance(node, ResourceNode):
        return root if node is resource else None
    if node.propName is None:
        return root if node.data is resource else None
    head, dot, route = node.propName.partition(".")
    if head not in ("", resource["resourceType"]) or not _ROUTE.fullmatch(dot + route):
        return None
    location = root
    for name, index in _STEP.findall(dot + route):
        step = _step(location, name, int(index) if index else None)
        if step is None:
            return None
        location = step
    return location if _holds(location, node.data) else None


def _step(at: Location, name: str, index: int | None) -> Location | None:
    owner = at.children()
    if owner is None:
        return None
    found = child(at.context, name)
    if found is None:
        return None
    element, type_code = found
    key = element.present_key(owner) if type_code is None else element.json_key(type_code)
    if key is None:
        return None
    value = owner.get(key)
    if index is not None:
        if not isinstance(value, list) or index >= len(value):
            return None
        value = value[index]
    elif isinstance(value, list):
        return None
    type_code = element.type_of_key(key)
    if type_code == "Resource" and isinstance(value, dict):
        type_code = value.get("resourceType", type_code)
    return Location(Field(owner, key), index, element, type_code, value, at, owner is not at.value)


def _holds(location: Location, data: object) -> bool:
    if isinstance(data, dict | list):
        return data is location.value or data is location.children()
    return type(data) is type(location.value) and data == location.value
