"""Markdown (a PR body) as HTML that is safe to put in a page: ``render(text) -> Markup``.

A PR body quotes column names, data values, error messages and commit subjects, none of
which Healer controls, so the body is hostile input. Two layers:

1. markdown-it-py (CommonMark plus tables and strikethrough) with raw HTML turned off, so a
   ``<script>`` or ``<img onerror=...>`` in the body comes out as text; images turned off (an
   image would be fetched when the page is viewed: a tracking pixel, and nothing loads on
   an air-gapped install anyway); links only to http(s), mailto and the page's own paths.
2. Whatever markdown-it produced is parsed again and rebuilt from an allowlist of tags and
   attributes (no ``on*`` handler, no ``style``, ``href`` only with an allowed scheme), so a
   bug or a plugin in the first layer cannot let markup through.
"""

from __future__ import annotations

import html
import logging
import re
from html.parser import HTMLParser
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markupsafe import Markup

log = logging.getLogger(__name__)

# what CommonMark + tables + strikethrough produce, nothing more
ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
})
VOID_TAGS = frozenset({"br", "hr"})
ALLOWED_ATTRS = {"a": frozenset({"href", "title"}), "ol": frozenset({"start"}),
                 "th": frozenset({"style"}), "td": frozenset({"style"}), "code": frozenset({"class"})}
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
# the only styles markdown-it writes: a table column's alignment
ALLOWED_STYLES = frozenset({"text-align:left", "text-align:right", "text-align:center"})
# elements whose content is dropped with them, not kept as text
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template", "svg", "math"})


def safe_href(url: str) -> bool:
    """http(s) and mailto links, and paths on this site; never javascript:, data:, vbscript: ..."""
    # browsers ignore tabs, newlines and leading control characters in a scheme: so do we
    cleaned = "".join(ch for ch in unquote(html.unescape(url)) if ch > " " and ch != "\x7f")
    head = re.split(r"[/?#]", cleaned, maxsplit=1)[0]
    if ":" in head:  # a scheme, or something a browser might read as one: only the allowed ones
        return head.split(":", 1)[0].lower() in ALLOWED_SCHEMES
    return not cleaned.startswith("//")  # a scheme-relative URL leaves the site


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"]).disable(["image", "html_inline", "html_block"])
    md.validateLink = safe_href
    return md


_md = _parser()


# healer/report.py folds long parts of a PR body as <details><summary>…</summary> … </details> lines,
# which GitHub and GitLab render; here they become a bold heading line: raw HTML never passes
_FOLD_OPEN = re.compile(r"^<details><summary>(.*)</summary>\s*$")
_FOLD_CLOSE = re.compile(r"^</details>\s*$")


def _unfold(text: str) -> str:
    lines = []
    for line in text.splitlines():
        opened = _FOLD_OPEN.match(line)
        if opened:
            lines.append(f"**{opened.group(1)}**")
        elif not _FOLD_CLOSE.match(line):
            lines.append(line)
    return "\n".join(lines)


def render(text: str | None) -> Markup:
    """The Markdown body as sanitised HTML."""
    if not text:
        return Markup("")
    return Markup(sanitise(_md.render(_unfold(text))))


class _Rebuild(HTMLParser):
    """Writes back only allowed tags and attributes; everything else becomes escaped text or goes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropping = 0  # inside an element whose content goes with it
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in DROPPED_WITH_CONTENT:
            self.dropping += 1
            return
        if self.dropping or tag not in ALLOWED_TAGS:
            return
        kept = []
        for name, value in attrs:
            if name not in ALLOWED_ATTRS.get(tag, ()) or value is None:
                continue
            if name == "href" and not safe_href(value):
                continue
            if name == "style" and value.replace(" ", "").rstrip(";") not in ALLOWED_STYLES:
                continue
            if name == "class" and not value.startswith("language-"):
                continue
            if name == "start" and not value.isdigit():
                continue
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        if tag == "a":
            kept.append(' rel="nofollow noopener noreferrer"')
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag in VOID_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in DROPPED_WITH_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag not in self.open:
            return
        while self.open:  # close what was left open inside it, so the nesting stays whole
            inner = self.open.pop()
            self.out.append(f"</{inner}>")
            if inner == tag:
                break

    def handle_data(self, data):
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))

    def close(self):
        super().close()
        self.out.extend(f"</{tag}>" for tag in reversed(self.open))
        self.open = []


def sanitise(fragment: str) -> str:
    """An HTML fragment rebuilt from the allowlist (comments, doctype and processing instructions go)."""
    rebuild = _Rebuild()
    rebuild.feed(fragment)
    rebuild.close()
    return "".join(rebuild.out)
