"""Names and other user strings put into the toolkit's HTML, Markdown and figure text.

A run folder's name, a parameter or group name from a plugin config, a file
name: all are the user's strings, and any of them may hold characters that
mean something where they are written (``<``, ``|``, ``*``, ``$``). Every
writer of HTML, Markdown or Matplotlib text passes them through one of these,
so that they show as typed and never change the page around them.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["html_text", "markdown_text", "plot_text"]

# CommonMark's backslash escapes that change a table cell's text or layout
# (emphasis, code, links, strikethrough, the cell separator, math on GitHub).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~$])")
# An underscore between two letters or digits never starts or ends emphasis,
# so "C6_fm" stays as typed; any other underscore is escaped.
_LOOSE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")


def html_text(value: Any) -> str:
    """``str(value)`` as HTML text, safe in element content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def markdown_text(value: Any) -> str:
    """``str(value)`` as the text of a Markdown table cell or line, shown as typed.

    Line breaks become spaces (a row is one line), Markdown's punctuation is
    backslash-escaped and ``&``, ``<``, ``>`` become entities (Markdown passes
    HTML through, so ``<img onerror=...>`` in a run's name would be markup).
    """
    text = _LINE_BREAKS.sub(" ", str(value))
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = _LOOSE_UNDERSCORE.sub(r"\\_", text)
    return html.escape(text, quote=False)


def plot_text(value: Any) -> str:
    """``str(value)`` as Matplotlib text: a ``$`` is a dollar sign, never the start of math.

    Two dollar signs in a file or run name would otherwise be read as mathtext,
    and one that is not valid mathtext stops the figure with a parse error.
    """
    return str(value).replace("$", r"\$")
