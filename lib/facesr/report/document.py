"""The report skeleton as a list of blocks, written once and rendered twice: LaTeX (main.tex) and Markdown.

Text in a block is plain prose with four kinds of marks that both renderers understand:

- ``$...$`` inline math (LaTeX as is; pandoc reads it too),
- ```code``` a file, run or config name,
- ``[@key]`` or ``[@a; @b]`` a citation of ``references.bib`` entries,
- ``@fig:label``, ``@tab:label`` a reference to a figure or table ("Figure 2").

:func:`render_markdown` writes the pandoc Markdown of ``report.md``; :func:`facesr.report.latex.render_latex`
the LaTeX of ``main.tex``. Blanks the student fills in are :class:`FillIn` blocks, the only place a
``<FILL IN: ...>`` marker appears.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from facesr.report.table_views import TableView, pipe_table

FILL_IN = "<FILL IN: {what}>"  # the marker of the hand-in's Readme.txt blanks too (readme.BLANK)
TOKENS = re.compile(r"(\$[^$]+\$|`[^`]+`|\[@[^\]]+\]|@(?:fig|tab):[\w-]+)")


@dataclass
class Heading:
    """A section (level 1) or subsection (level 2) heading."""

    title: str
    level: int = 1


@dataclass
class Paragraph:
    """Prose with the marks of this module's docstring."""

    text: str


@dataclass
class Equation:
    """A displayed equation (LaTeX math; the aligned lines of one ``aligned`` block when it has ``&``)."""

    tex: str


@dataclass
class FigureBlock:
    """A figure of the report: ``figures/<stem>.pdf`` in LaTeX, ``figures/<stem>.png`` in Markdown."""

    stem: str
    caption: str
    label: str
    width: str = "full"  # "full": the text width; "column": half of it


@dataclass
class TableBlock:
    """A table of the report: ``\\input{tables/<stem>}`` in LaTeX, the same view as a pipe table in Markdown."""

    stem: str
    caption: str
    label: str
    view: TableView


@dataclass
class FillIn:
    """A paragraph of the student's own analysis: a marked blank saying what goes there."""

    what: str


@dataclass
class Missing:
    """A note where a figure or table the handout asks for was not made, and what makes it."""

    text: str


Block = Heading | Paragraph | Equation | FigureBlock | TableBlock | FillIn | Missing


@dataclass
class Document:
    """The report: title, author line, blocks, and the BibTeX keys cited (``references.bib``)."""

    title: str
    author: str
    blocks: list[Block] = field(default_factory=list)
    bibliography: str = "references"

    def numbers(self) -> dict[str, int]:
        """``{label: number}`` of every figure and table in the order they appear (as LaTeX numbers them)."""
        counts = {"fig": 0, "tab": 0}
        numbers: dict[str, int] = {}
        for block in self.blocks:
            if isinstance(block, FigureBlock | TableBlock):
                kind = block.label.split(":", 1)[0]
                counts[kind] += 1
                numbers[block.label] = counts[kind]
        return numbers

    def citations(self) -> list[str]:
        """The BibTeX keys cited in the text, in order of first citation."""
        keys: list[str] = []
        for block in self.blocks:
            text = getattr(block, "text", "") + getattr(block, "caption", "")
            for cite in re.findall(r"\[@([^\]]+)\]", text):
                keys += [k.strip().lstrip("@") for k in cite.split(";")]
        return list(dict.fromkeys(keys))


def render_text(text: str, plain: Callable[[str], str], marks: Mapping[str, Callable[[str], str]]) -> str:
    """``text`` with each mark rendered by ``marks[kind]`` (kinds: math, code, cite, ref) and the prose between
    them by ``plain``."""
    parts = []
    for i, piece in enumerate(TOKENS.split(text)):
        if i % 2 == 0:
            parts.append(plain(piece))
        elif piece.startswith("$"):
            parts.append(marks["math"](piece))
        elif piece.startswith("`"):
            parts.append(marks["code"](piece[1:-1]))
        elif piece.startswith("[@"):
            parts.append(marks["cite"](piece))
        else:
            parts.append(marks["ref"](piece[1:]))
    return "".join(parts)


def _markdown_plain(text: str) -> str:
    return re.sub(r"([\\*_<>\[\]#])", r"\\\1", text)


def render_markdown(doc: Document) -> str:
    """The pandoc Markdown of the report (``pandoc report.md --citeproc -o report.docx`` makes a Word file)."""
    numbers = doc.numbers()
    names = {"fig": "Figure", "tab": "Table"}
    marks = {
        "math": lambda m: m,
        "code": lambda c: f"`{c}`",
        "cite": lambda c: c,
        "ref": lambda r: f"{names[r.split(':')[0]]} {numbers.get(r, '?')}",
    }

    def text(value: str) -> str:
        return render_text(value, _markdown_plain, marks)

    out = ["---", f'title: "{doc.title}"', f'author: "{doc.author}"', f"bibliography: {doc.bibliography}.bib",
           "link-citations: true", "---", ""]  # fmt: skip
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.title}\n")
        elif isinstance(block, Paragraph):
            out.append(text(block.text) + "\n")
        elif isinstance(block, Equation):
            out.append(f"$$\n{block.tex}\n$$\n")
        elif isinstance(block, FigureBlock):
            width = "100%" if block.width == "full" else "50%"
            caption = f"Figure {numbers[block.label]}: {text(block.caption)}"
            out.append(f"![{caption}](figures/{block.stem}.png){{width={width}}}\n")
        elif isinstance(block, TableBlock):
            out.append(pipe_table(block.view))
            out.append(f"Table: Table {numbers[block.label]}: {text(block.caption)}\n")
        elif isinstance(block, FillIn):
            out.append(f"**{_markdown_plain(FILL_IN.format(what=block.what))}**\n")
        elif isinstance(block, Missing):
            out.append(f"**Missing:** {text(block.text)}\n")
    out.append("# References\n")
    return "\n".join(out)
