"""Property names of the Graph entity types the simulated tenant accepts request bodies for.

Graph answers a body naming a property its entity type does not have with 400. To behave the same way
the simulator needs the declared property and navigation-property names of each type, including those
inherited from base types. They come from Microsoft's published CSDL; `generate_schema` extracts the few
types needed into `schema.json` (kept in the package so the simulator never needs the CSDL at run time).

Regenerate with `python -m smartsync.simulator.schema PATH/TO/v1.0-Prod.csdl`.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema.json")
GRAPH_NAMESPACE = "microsoft.graph"
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"

# The types whose bodies or $select the simulator checks; their base types are added automatically.
ENTITY_TYPES: tuple[str, ...] = (
    "group",
    "administrativeUnit",
    "educationClass",
    "team",
    "teamsAsyncOperation",
    "aadUserConversationMember",
    "user",
    "application",
    "directoryObject",
    "entity",
)


@dataclass(frozen=True)
class EntityTypeSchema:
    """One entity type with everything it inherits flattened in."""

    name: str
    properties: frozenset[str]
    navigation_properties: frozenset[str]

    def find_property(self, name: str) -> str | None:
        """The declared spelling of a structural property, matched case-insensitively as Graph does."""
        lowered = name.lower()
        for declared in self.properties:
            if declared.lower() == lowered:
                return declared
        return None


def generate_schema(csdl_path: Path) -> dict[str, Any]:
    """Extract ENTITY_TYPES (and their base types) from a Graph CSDL file into schema.json's shape."""
    root = ET.parse(csdl_path).getroot()
    declared: dict[str, ET.Element] = {}
    for schema in root.iter(f"{_EDM}Schema"):
        if schema.get("Namespace") != GRAPH_NAMESPACE:
            continue
        for entity in schema.findall(f"{_EDM}EntityType"):
            declared[entity.get("Name", "")] = entity

    wanted: list[str] = []
    pending = list(ENTITY_TYPES)
    while pending:
        name = pending.pop(0)
        if name in wanted:
            continue
        if name not in declared:
            raise ValueError(f"entity type {GRAPH_NAMESPACE}.{name} is not declared in {csdl_path.name}")
        wanted.append(name)
        base = declared[name].get("BaseType")
        if base:
            pending.append(base.split(".")[-1])

    types: dict[str, Any] = {}
    for name in sorted(wanted):
        element = declared[name]
        base = element.get("BaseType")
        types[name] = {
            "base": base.split(".")[-1] if base else None,
            "properties": sorted(p.get("Name", "") for p in element.findall(f"{_EDM}Property")),
            "navigation_properties": sorted(
                p.get("Name", "") for p in element.findall(f"{_EDM}NavigationProperty")
            ),
        }
    return {"source": "Microsoft Graph v1.0 CSDL (v1.0-Prod.csdl)", "entity_types": types}


def write_schema(csdl_path: Path, target: Path = SCHEMA_PATH) -> None:
    target.write_text(json.dumps(generate_schema(csdl_path), indent=1, sort_keys=True) + "\n", "utf-8")


@cache
def _raw_types() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text("utf-8"))["entity_types"]
    return data


@cache
def entity_type(name: str) -> EntityTypeSchema:
    """The flattened schema of `name` (e.g. "group"); KeyError for a type schema.json does not hold."""
    types = _raw_types()
    properties: set[str] = set()
    navigation: set[str] = set()
    current: str | None = name
    if name not in types:
        raise KeyError(name)
    while current is not None:
        entry = types[current]
        properties.update(entry["properties"])
        navigation.update(entry["navigation_properties"])
        current = entry["base"]
    return EntityTypeSchema(name, frozenset(properties), frozenset(navigation))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m smartsync.simulator.schema PATH/TO/v1.0-Prod.csdl", file=sys.stderr)
        return 2
    write_schema(Path(args[0]))
    print(f"wrote {SCHEMA_PATH.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
