"""Sphinx extension: a constant re-exported by ``lstm_utils`` shows its own docstring.

``lstm_utils.MAX_SEED`` is defined in ``lstm_utils.repro`` with a docstring under it, and
imported into ``lstm_utils``. autodoc, documenting ``lstm_utils.MAX_SEED``, looks for that
docstring in ``lstm_utils/__init__.py``, does not find it, and shows the docstring of the
value's type instead (``int([x]) -> integer ...``; a dict's even breaks the reST). This puts the
constant's own docstring back, read from the module that defines it.
"""

from __future__ import annotations

import inspect
import pkgutil
from functools import cache
from typing import Any

from sphinx.pycode import ModuleAnalyzer


@cache
def _attribute_docs(package: str) -> dict[str, list[str]]:
    """Name -> docstring lines of every module-level constant documented in the package's modules."""
    module = __import__(package)
    found: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(module.__path__, prefix=f"{package}."):
        try:
            docs = ModuleAnalyzer.for_module(info.name).find_attr_docs()
        except Exception:  # a module the analyzer cannot read documents no constant
            continue
        for (scope, name), lines in docs.items():
            if scope == "":
                found.setdefault(name, list(lines))
    return found


def _own_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what != "data" or not name.startswith("lstm_utils."):
        return
    package, _, attribute = name.rpartition(".")
    type_doc = inspect.getdoc(type(obj)) or ""
    if lines and "\n".join(lines).strip() != type_doc.strip():
        return  # autodoc found the constant's own docstring
    own = _attribute_docs(package.split(".")[0]).get(attribute)
    if own is not None:
        lines[:] = own


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _own_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
