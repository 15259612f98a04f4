"""A web form's settings, checked by the config's own rules (per field, for the form), with the
one restriction of the web: a field that also takes a path (weights, initial) takes only its names."""

from __future__ import annotations

from typing import Any

from artstyle.config import StyleConfig, field_types, from_dict, layered, preset, schema, short_repr
from artstyle.errors import ArtstyleError


def web_restrictions(values: dict[str, Any]) -> dict[str, str]:
    """Settings a web page may not give: a path for a field that also takes names (weights,
    initial) would read a file of the server's; only the names are allowed here."""
    errors = {}
    for f in schema()["fields"]:
        if "named" in f and f["name"] in values and values[f["name"]] not in f["named"]:
            errors[f["name"]] = f"{f['name']} must be one of {', '.join(f['named'])} here (no file paths)"
    return errors


def label(name: str) -> str:
    """A setting as the page names it: the simple panel's Size, and Advanced's setting names."""
    if name == "size":
        return "the Size"
    return f"{name} (under Advanced)" if name in field_types() else name


#: No form has more settings than this (the config has about 50).
MAX_SETTINGS = 100


def check_settings(preset_name: str, values: Any) -> tuple[StyleConfig | None, dict[str, str], str]:
    """(config, per-field errors, overall error): the config's own messages."""
    if not isinstance(values, dict):
        return None, {}, "settings must be a JSON object"
    if len(values) > MAX_SETTINGS:
        return None, {}, f"{len(values)} settings; there are only {MAX_SETTINGS} at most"
    try:
        base = preset(preset_name or "default")
    except ArtstyleError as e:
        return None, {}, str(e)
    errors = web_restrictions(values)
    for key, value in values.items():
        if not isinstance(key, str) or len(key) > 60:
            errors[short_repr(key, 40)] = f"unknown setting {short_repr(key)}"
            continue
        if key in errors:
            continue
        try:
            from_dict({key: value}, base=base, strict=True)
        except ArtstyleError as e:
            errors[key] = str(e)
    if errors:
        first = next(iter(errors))
        return None, errors, f"{first}: {errors[first]}" if first not in errors[first] else errors[first]
    try:
        return layered(preset_name or "default", None, values, strict=True), {}, ""
    except ArtstyleError as e:
        return None, {}, str(e)
