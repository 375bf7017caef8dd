"""Article bodies: Markdown rendered to HTML, then sanitized.

Markdown passes raw HTML through, so the rendered HTML is never trusted:
nh3 (Rust's ammonia) keeps an allow-list of tags and attributes, drops
``<script>``, event handlers and ``javascript:``/``data:`` URLs, and adds
``rel="noopener noreferrer nofollow"`` to links.
"""

from __future__ import annotations

import markdown as md
import nh3

EXTENSIONS = ["fenced_code", "tables", "sane_lists"]
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "td": {"align"},
    "th": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def render(text: str) -> str:
    """Sanitized HTML for the Markdown ``text`` (safe to insert unescaped)."""
    html = md.markdown(text, extensions=EXTENSIONS, output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
