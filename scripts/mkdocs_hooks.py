"""MkDocs hook: render the Sphinx roles of the docstrings (:func:`name`) as plain code.

The docstrings use Sphinx-style roles, which mkdocstrings leaves as literal text before the
code span; this drops the role, its ``~`` and the module path, leaving the name.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:func|class|meth|data|attr|mod|exc):<code>~?(?:[\w]+\.)*")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub("<code>", html)
