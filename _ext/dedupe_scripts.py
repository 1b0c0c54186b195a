"""Sphinx extension: each inline ``<script>`` once per page.

Sphinx 7 (which Jupyter Book 1.x requires) stores a script that a theme adds late with
``add_js_file(None, body=...)`` twice, once with the file name ``None`` and once with ``""``, so
every page declared ``const THEBE_JS_URL`` twice and the browser logged a SyntaxError on every
page (fixed upstream in Sphinx 8, sphinx-doc/sphinx#13402). This drops the repeats just before
each page is written.
"""

from __future__ import annotations

from typing import Any


def _script_key(script: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    attributes = getattr(script, "attributes", {}) or {}
    return str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def _drop_repeated_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
