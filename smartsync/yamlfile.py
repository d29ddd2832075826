"""Reading the config's YAML strictly: a key given twice is an error, not a silent override.

PyYAML keeps the last of two equal keys in a mapping, so a second `sync:` block pasted at the end
of a config quietly replaces the first one. This loader refuses it and names both lines.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds the same key twice; `first` and `second` are 1-based line numbers."""

    def __init__(self, key: str, path: str, first: int, second: int) -> None:
        self.key = key
        self.path = path
        self.first = first
        self.second = second
        where = f"{path}.{key}" if path else key
        super().__init__(
            f"the key {where} is given twice (lines {first} and {second}); YAML would silently keep only "
            f"the second. Merge the two into one, or remove one of them."
        )


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, with the dotted path of the mapping they are in."""

    strict_root: yaml.Node | None = None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                raise DuplicateKeyError(str(key), _path_of(self, node), first, line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _path_of(loader: _StrictLoader, node: yaml.Node) -> str:
    """The dotted path of `node` inside the document (for the message), or "" at the top level."""
    root = loader.strict_root
    if root is None:
        return ""
    path = _find(root, node, [])
    return ".".join(path or [])


def _find(current: yaml.Node, target: yaml.Node, trail: list[str]) -> list[str] | None:
    if current is target:
        return trail
    if isinstance(current, yaml.MappingNode):
        for key_node, value_node in current.value:
            found = _find(value_node, target, [*trail, str(getattr(key_node, "value", "?"))])
            if found is not None:
                return found
    elif isinstance(current, yaml.SequenceNode):
        for index, item in enumerate(current.value):
            found = _find(item, target, [*trail[:-1], f"{trail[-1]}[{index}]"] if trail else [f"[{index}]"])
            if found is not None:
                return found
    return None


def load_yaml(text: str) -> Any:
    """The YAML document in `text`; raises yaml.YAMLError (DuplicateKeyError for a repeated key)."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        loader.strict_root = root
        return loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
