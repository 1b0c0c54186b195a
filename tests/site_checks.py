"""What tests/test_browser.py checks on the built HTML book, as plain functions.

The browser part (``PAGE_PROBE``) runs once per page and width and returns everything the
checks need; the rest runs in Python: which pages there are, whether an image's alt text
says something, whether a paragraph is a table that was not rendered, and whether every
internal link leads to a page and an anchor that exist (read from the HTML files, without
a browser).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

# Pages of the site that hold no prose of the book: the content checks (tables, alt texts)
# skip them; the JavaScript, layout and link checks do not.
GENERATED_PAGES = frozenset({"genindex.html", "search.html", "py-modindex.html"})

# A paragraph that is a Markdown table nobody rendered: it starts with a pipe and has a
# header separator, |---|, | --- |, |:--|, or the em or en dash that smartquotes makes of ---.
RAW_TABLE = re.compile(r"^\s*\|.*\|\s*:?(?:-{3,}|\u2014|\u2013)", re.DOTALL)

_IMAGE_FILE = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|avif|bmp)$", re.IGNORECASE)
_HASH = re.compile(r"^[0-9a-f]{16,}$", re.IGNORECASE)


def site_pages(html_folder: Path) -> list[str]:
    """Every page of the built site, as paths relative to `html_folder` (``chapters/01_x.html``).

    Left out: ``index.html``, which only redirects to the root page (``<meta http-equiv="Refresh">``),
    and the theme's template fragments under ``_static``, which are not pages.
    """
    pages = []
    for page in sorted(html_folder.rglob("*.html")):
        relative = page.relative_to(html_folder).as_posix()
        if relative.startswith(("_static/", "_sources/", "_images/")):
            continue
        if relative == "index.html" and 'http-equiv="Refresh"' in page.read_text(encoding="utf8"):
            continue
        pages.append(relative)
    # The root page first: it is where a reader arrives, with a fresh browser profile.
    pages.sort(key=lambda name: name != "intro.html")
    return pages


def is_content_page(page: str) -> bool:
    return PurePosixPath(page).name not in GENERATED_PAGES


def bad_alt_text(alt: str | None, src: str) -> str | None:
    """Why an ``<img>``'s alt text tells a reader nothing, or None if it says something."""
    if alt is None:
        return "no alt attribute"
    text = alt.strip()
    if not text:
        return "empty alt text"
    name = PurePosixPath(urlsplit(src).path).name
    stem = PurePosixPath(name).stem
    if text in (src, name, stem) or PurePosixPath(text).name in (name, stem):
        return "alt text is the file name"
    if _IMAGE_FILE.search(text) or _HASH.match(PurePosixPath(text).stem):
        return "alt text is a file name or hash"
    return None


def is_raw_table(text: str) -> bool:
    return bool(RAW_TABLE.match(text))


# One script per page and width, run with execute_async_script once the page has loaded. It
# waits for the fonts and MathJax (whose typesetting changes widths) and two frames, then
# returns plain data; the tests judge it.
# - width: the layout viewport (documentElement.clientWidth). Not window.innerWidth: under
#   phone emulation innerWidth grows to the content's width, so it would hide what it should show.
# - overflow: when the document is wider than the viewport, the elements that stick out on the
#   right while their parent does not, and that are not inside a box that scrolls or clips them
#   (overflow-x not visible) nor fixed in place (those do not widen the document), grouped by
#   that parent: the block whose content does not fit (a heading, a signature, a paragraph).
PAGE_PROBE = r"""
const done = arguments[arguments.length - 1];
const root = document.documentElement;
const label = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += "#" + el.id;
  const classes = [...el.classList].filter((c) => !c.startsWith("highlight-")).slice(0, 2);
  if (classes.length) s += "." + classes.join(".");
  return s;
};
const where = (el) => {
  // Up to three tags, ending at the nearest section with an id (a heading's anchor).
  if (el === document.body) return "body";
  const parts = [];
  let e = el;
  for (; e && e !== document.body && parts.length < 3; e = e.parentElement) {
    parts.unshift(label(e));
    if (e.tagName === "SECTION" && e.id) return parts.join(" > ");
  }
  for (; e && e !== document.body; e = e.parentElement) {
    if (e.tagName === "SECTION" && e.id) return "section#" + e.id + " ... " + parts.join(" > ");
  }
  return parts.join(" > ");
};
const snippet = (el) => (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 80);
const probe = () => {
  const width = root.clientWidth;
  const contained = (el) => {
    for (let e = el; e && e !== root && e !== document.body; e = e.parentElement) {
      const style = getComputedStyle(e);
      if (style.position === "fixed") return true;
      if (e !== el && style.overflowX !== "visible") return true;
    }
    return false;
  };
  const right = (el) => el.getBoundingClientRect().right + window.scrollX;
  const sticksOut = (el) => el.getBoundingClientRect().width > 0 && right(el) > width + 1 && !contained(el);
  const groups = new Map();
  if (root.scrollWidth > width + 1) {
    for (const el of document.body.querySelectorAll("*")) {
      const parent = el.parentElement;
      if (!sticksOut(el) || (parent !== document.body && sticksOut(parent))) continue;
      if (!groups.has(parent)) groups.set(parent, {where: where(parent), right: 0, text: snippet(parent), items: []});
      const group = groups.get(parent);
      group.items.push(label(el));
      group.right = Math.max(group.right, Math.round(right(el)));
    }
  }
  return {
    title: document.title,
    width: width,
    scrollWidth: root.scrollWidth,
    overflow: [...groups.values()],
    paragraphs: [...document.querySelectorAll("p")]
      .map((p) => ({where: where(p), text: (p.textContent || "").trim().slice(0, 200)}))
      .filter((p) => p.text.startsWith("|")),
    images: [...document.querySelectorAll("img")].map((img) => ({
      where: where(img), src: img.getAttribute("src") || "", alt: img.getAttribute("alt"),
    })),
  };
};
const ready = [document.fonts.ready];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) ready.push(MathJax.startup.promise);
const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
Promise.all(ready).then(frame).then(frame).then(() => done(probe()), (error) => done({error: String(error)}));
"""


class _Page(HTMLParser):
    """The ids and the ``<a href>`` targets of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if tag == "a" and attributes.get("name"):
            self.ids.add(str(attributes["name"]))
        if tag == "a" and attributes.get("href") is not None:
            self.links.append(str(attributes["href"]))


def read_page(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text(encoding="utf8"))
    parser.close()
    return parser


@dataclass
class LinkReport:
    broken: list[str]  # "page: href (why)"
    external: list[str]  # the distinct http(s) addresses that pages link to
    checked: int  # internal links checked


def check_links(html_folder: Path, pages: list[str]) -> LinkReport:
    """Every ``<a href>`` of `pages` that stays on the site leads to a file that exists and,
    for an ``.html`` target with a ``#fragment``, to an element with that id there.

    Links are resolved as a browser does, against the page's address on a site served from
    `html_folder` at ``/`` (so the 404 page's root-relative links resolve too).
    """
    site = "http://site.invalid/"
    parsed: dict[str, _Page] = {}

    def page_of(relative: str) -> _Page:
        if relative not in parsed:
            parsed[relative] = read_page(html_folder / relative)
        return parsed[relative]

    broken: list[str] = []
    external: set[str] = set()
    checked = 0
    for page in pages:
        for href in page_of(page).links:
            target = urlsplit(urljoin(site + page, href.strip()))
            if target.scheme in ("http", "https") and f"{target.scheme}://{target.netloc}/" != site:
                external.add(href.strip())
                continue
            if target.scheme not in ("http", "https"):
                continue  # mailto:, javascript:, data:
            checked += 1
            relative = unquote(target.path).lstrip("/")
            if relative == "" or relative.endswith("/"):
                relative += "index.html"
            file = html_folder / relative
            if not file.is_file():
                broken.append(f"{page}: {href} (no file {relative})")
                continue
            fragment = unquote(target.fragment)
            if fragment and relative.endswith(".html") and fragment not in page_of(relative).ids:
                broken.append(f"{page}: {href} (no id {fragment!r} on {relative})")
    return LinkReport(broken=broken, external=sorted(external), checked=checked)
