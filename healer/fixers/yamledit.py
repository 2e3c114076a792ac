"""Editing ``healer.yml`` in place: find a scalar with the YAML composer, splice its text.

The file is never re-dumped: comments, key order, quoting and layout stay as the team
wrote them; only the one value changes, written in the quoting style it had.
"""

from __future__ import annotations

import yaml


def node_at(text: str, keys: list[str]) -> yaml.Node | None:
    """The node at ``keys`` (a path of mapping keys), or None when the text or the path is not there."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if node is None:
            return None
    return node


def scalar_node(text: str, keys: list[str]) -> yaml.ScalarNode | None:
    """The scalar at ``keys`` (a path of mapping keys), or None."""
    node = node_at(text, keys)
    return node if isinstance(node, yaml.ScalarNode) else None


def render_scalar(value: str, style: str | None) -> str:
    """``value`` as a YAML scalar in ``style`` (None plain, ``'`` or ``"``)."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or style is None and _needs_quotes(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _needs_quotes(value: str) -> bool:
    try:
        return yaml.safe_load(value) != value or value != value.strip() or not value
    except yaml.YAMLError:
        return True


def replace_scalar(text: str, keys: list[str], value: str) -> str | None:
    """``text`` with the scalar at ``keys`` set to ``value``; None when it cannot be done
    safely (no such scalar, a multi-line or block scalar, or the result reads differently
    anywhere else)."""
    node = scalar_node(text, keys)
    if node is None or node.style in ("|", ">") or node.start_mark.line != node.end_mark.line:
        return None
    start, end = node.start_mark.index, node.end_mark.index
    new = text[:start] + render_scalar(value, node.style) + text[end:]
    try:
        before, after = yaml.safe_load(text), yaml.safe_load(new)
    except yaml.YAMLError:
        return None
    target = after
    for key in keys[:-1]:
        target = target[key]
    if target.get(keys[-1]) != value:
        return None
    target[keys[-1]] = _get(before, keys)
    return new if after == before else None


def _get(data, keys):
    for key in keys:
        data = data[key]
    return data
