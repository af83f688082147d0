"""A tiny document model (headings, paragraphs, lists, tables, figures) rendered to Markdown and to one HTML file.

The report is built once as blocks, so the Markdown and the HTML always say the same thing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    css: str = ""


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()  # right-align these columns

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"table row has {len(row)} cells for {len(self.headers)} headers: {row}")


@dataclass(frozen=True)
class Figure:
    """A plot saved as ``<stem>.png`` and ``<stem>.svg`` in the report folder."""

    stem: str
    caption: str


@dataclass(frozen=True)
class ExampleRow:
    cells: tuple[str, ...]
    disagree: bool  # the models' verdicts on this example differ
    classes: tuple[str, ...]  # the error classes of the models' answers


@dataclass(frozen=True)
class ExampleView:
    """A per-example table that the HTML report filters ("models disagree", error class) with inline script;
    the Markdown report points to the HTML one instead of listing every example."""

    key: str  # unique within the report: names the table and its controls
    headers: tuple[str, ...]
    rows: tuple[ExampleRow, ...]
    classes: tuple[str, ...]  # every error class offered by the filter


Block = Heading | Paragraph | Bullets | Table | Figure | ExampleView


def to_markdown(blocks: Sequence[Block]) -> str:
    parts = [_markdown(block) for block in blocks]
    return "\n\n".join(parts) + "\n"


def _markdown(block: Block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Figure):
        return f"![{block.caption}]({block.stem}.png)\n\n*{block.caption}* ([SVG]({block.stem}.svg))"
    if isinstance(block, ExampleView):
        disagree = sum(row.disagree for row in block.rows)
        return (f"{len(block.rows):,} examples ({disagree:,} where the models disagree): browse and filter them in "
                "leaderboard.html.")
    align = [("---:" if block.numeric and block.numeric[i] else "---") for i in range(len(block.headers))]
    lines = [_md_row(block.headers), "| " + " | ".join(align) + " |", *(_md_row(row) for row in block.rows)]
    return "\n".join(lines)


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 2rem auto;
       max-width: 1400px; padding: 0 1rem; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #2f6fb3; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; color: #2f6fb3; }
h3 { font-size: 1.05rem; margin-top: 1.3rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #c9d2de; padding: .25rem .55rem; vertical-align: top; }
th { background: #e8eef6; text-align: left; }
.scroll { overflow-x: auto; }
td:nth-child(2) { white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
tr:nth-child(even) td { background: #f7f9fc; }
ul.warnings li { color: #8a4b00; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-style: italic; color: #555; }
code { background: #eef1f5; padding: 0 .2rem; border-radius: 3px; }
.examples { max-height: 38rem; overflow: auto; }
.examples td { max-width: 28rem; white-space: pre-wrap; word-break: break-word; font-size: 12px; }
.filters { margin: .4rem 0; display: flex; gap: 1.2rem; align-items: center; }
td.right { color: #1d6b35; } td.wrong { color: #a3302a; }
"""

#: The viewer's filter: rows stay visible when they match every active filter; the count says how many do.
_SCRIPT = """
document.querySelectorAll("div.viewer").forEach(function (viewer) {
  var disagree = viewer.querySelector("input.f-disagree"), kind = viewer.querySelector("select.f-class");
  var count = viewer.querySelector(".f-count"), rows = viewer.querySelectorAll("tbody tr");
  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!disagree.checked || row.dataset.disagree === "1") &&
               (!kind.value || row.dataset.classes.split("|").indexOf(kind.value) >= 0);
      row.style.display = ok ? "" : "none";
      shown += ok ? 1 : 0;
    });
    count.textContent = shown + " of " + rows.length + " examples shown";
  }
  disagree.addEventListener("change", apply);
  kind.addEventListener("change", apply);
  apply();
});
"""


def to_html(blocks: Sequence[Block], title: str, folder: Path) -> str:
    """One self-contained HTML file: styles inline and each figure's SVG embedded (read from ``folder``)."""
    body = "\n".join(_html(block, folder) for block in blocks)
    script = f"<script>{_SCRIPT}</script>\n" if any(isinstance(block, ExampleView) for block in blocks) else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{html.escape(title)}"
            f"</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n{script}</body>\n</html>\n")


def _html(block: Block, folder: Path) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_inline(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        css = f' class="{block.css}"' if block.css else ""
        return f"<ul{css}>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Figure):
        svg = (folder / f"{block.stem}.svg").read_text(encoding="utf-8")
        svg = svg[svg.index("<svg"):]  # drop the XML declaration and doctype
        return f"<figure>{svg}<figcaption>{html.escape(block.caption)}</figcaption></figure>"
    if isinstance(block, ExampleView):
        return _viewer(block)
    numeric = block.numeric or (False,) * len(block.headers)
    head = "".join(f"<th>{_inline(cell)}</th>" for cell in block.headers)
    rows = "".join("<tr>" + "".join(f'<td{" class=num" if numeric[i] else ""}>{_inline(cell)}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in block.rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _inline(text: str) -> str:
    """Escape, then turn Markdown's `code` and **bold** into HTML."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _viewer(view: ExampleView) -> str:
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in view.classes)
    controls = (f'<div class="filters"><label><input type="checkbox" class="f-disagree"> models disagree</label>'
                f'<label>error class <select class="f-class"><option value="">any</option>{options}</select></label>'
                '<span class="f-count"></span></div>')
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in view.headers)
    rows = "".join(
        f'<tr data-disagree="{int(row.disagree)}" data-classes="{html.escape("|".join(row.classes))}">'
        + "".join(f"<td{_verdict_class(cell)}>{html.escape(cell)}</td>" for cell in row.cells) + "</tr>"
        for row in view.rows)
    return (f'<div class="viewer" id="examples-{html.escape(view.key)}">{controls}<div class="examples"><table>'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></div>")


def _verdict_class(cell: str) -> str:
    if cell.startswith("✓"):
        return ' class="right"'
    return ' class="wrong"' if cell.startswith("✗") else ""
