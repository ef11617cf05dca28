"""LaTeX of the report: tables as booktabs tabulars (``\\input`` them) and the skeleton's ``main.tex``.

Everything compiles with plain ``pdflatex`` + ``bibtex`` and the packages of any TeX Live (Overleaf's
included): article, geometry, graphicx, booktabs, amsmath, hyperref. The text block is
:data:`facesr.report.style.FULL_WIDTH` wide, so a full-width figure is printed at the size it was drawn.
"""

from __future__ import annotations

import re

from facesr.report.document import (
    FILL_IN,
    Document,
    Equation,
    FigureBlock,
    FillIn,
    Heading,
    Missing,
    Paragraph,
    TableBlock,
    render_text,
)
from facesr.report.style import COLUMN_WIDTH, FULL_WIDTH
from facesr.report.table_views import TableView

PACKAGES = ("geometry", "graphicx", "booktabs", "amsmath", "hyperref")
CHAR_IN = 0.072  # the width of a character of a \footnotesize table, generously (digits and lower case are narrower)
SEP_IN = 4 / 72  # \\tabcolsep, set to 4 pt in main.tex
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}"}  # fmt: skip


def latex_escape(text: str, keep: str = "") -> str:
    """``text`` with LaTeX's special characters escaped (prose, table cells, names), except those in ``keep``."""
    return "".join(ch if ch in keep else _SPECIAL.get(ch, ch) for ch in str(text))


def _header_rows(view: TableView) -> list[str]:
    """The group row with its rules (when the view has groups), then the headers."""
    rows = []
    if any(view.groups):
        cells, rules, i = [], [], 0
        while i < len(view.groups):
            group, j = view.groups[i], i
            while group and j + 1 < len(view.groups) and view.groups[j + 1] == group:
                j += 1  # a group spans its columns; each column without one keeps an empty cell
            cells.append(rf"\multicolumn{{{j - i + 1}}}{{c}}{{{latex_escape(group)}}}" if group else "")
            if group:
                rules.append(rf"\cmidrule(lr){{{i + 1}-{j + 1}}}")
            i = j + 1
        rows.append(" & ".join(cells) + r" \\" + (" " + " ".join(rules) if rules else ""))
    rows.append(" & ".join(latex_escape(h) for h in view.headers) + r" \\")
    return rows


def _column_spec(view: TableView) -> str:
    """l for text, r for numbers, and a ragged paragraph column for text too long for the line (a GPU, a network):
    as wide as the text width leaves it beside the other columns' estimated widths (at least 1 in)."""
    longest = [max([len(view.headers[k]), *(len(row[k]) for row in view.cells)]) for k in range(len(view.headers))]
    for group in set(view.groups) - {""}:  # a group heading wider than its columns widens them
        span = [k for k, g in enumerate(view.groups) if g == group]
        longest = [max(n, -(-len(group) // len(span))) if k in span else n for k, n in enumerate(longest)]
    widths = [n * CHAR_IN + 2 * SEP_IN for n in longest]
    free = FULL_WIDTH - sum(w for w, wide in zip(widths, view.wide, strict=True) if not wide)
    n_wide = sum(view.wide) or 1
    spec = []
    for k, (numeric, wide) in enumerate(zip(view.numeric, view.wide, strict=True)):
        room = max(1.0, free / n_wide - 2 * SEP_IN)
        if wide and longest[k] * CHAR_IN > room:
            spec.append(f"p{{{room:.2f}in}}")
        else:
            spec.append("r" if numeric else "l")
    return "".join(spec)


def booktabs_tabular(view: TableView) -> str:
    """The view as a booktabs ``tabular`` (numbers right-aligned, long text wrapped, the best of a column bold)."""
    spec = _column_spec(view)
    lines = [rf"\begin{{tabular}}{{@{{}}{spec}@{{}}}}", r"\toprule", *_header_rows(view), r"\midrule"]
    wrapped = [s.startswith("p") for s in re.findall(r"p\{[^}]*\}|[lr]", spec)]
    for cells, bold in zip(view.cells, view.bold, strict=True):
        out = [rf"\textbf{{{latex_escape(c)}}}" if b and c else latex_escape(c) for c, b in zip(cells, bold, strict=True)]
        # a paragraph cell set ragged right; \raggedright makes \\ a line break, so a row whose last cell is one
        # ends with \tabularnewline (what array's \arraybackslash does, without the array package)
        out = [rf"\raggedright {c}" if w and c else c for c, w in zip(out, wrapped, strict=True)]
        lines.append(" & ".join(out) + (r" \tabularnewline" if wrapped[-1] else r" \\"))
    lines.append(r"\bottomrule")
    for note in view.notes:
        lines.append(rf"\multicolumn{{{len(view.headers)}}}{{@{{}}l}}{{\footnotesize {latex_escape(note)}}} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _cite(mark: str) -> str:
    keys = [k.strip().lstrip("@") for k in mark[2:-1].split(";")]
    return rf"~\cite{{{','.join(keys)}}}"


def latex_text(text: str) -> str:
    """Prose with the marks of :mod:`facesr.report.document` as LaTeX."""
    names = {"fig": "Figure", "tab": "Table"}
    marks = {
        "math": lambda m: m,
        "code": lambda c: rf"\texttt{{{latex_escape(c)}}}",
        "cite": _cite,
        "ref": lambda r: rf"{names[r.split(':')[0]]}~\ref{{{r}}}",
    }
    return re.sub(r" +~\\cite", r"~\\cite", render_text(text, latex_escape, marks))


PREAMBLE = rf"""\documentclass[11pt]{{article}}
% The text block is {FULL_WIDTH} in wide: every figure was drawn at that width (or {COLUMN_WIDTH} in), fonts >= 8 pt.
\usepackage[a4paper,textwidth={FULL_WIDTH}in,textheight=9.7in,headsep=0.1in,footskip=0.3in]{{geometry}}
\usepackage{{graphicx}}
\usepackage{{booktabs}}
\usepackage{{amsmath}}
\usepackage[hidelinks]{{hyperref}}
\setlength{{\tabcolsep}}{{4pt}}
\setlength{{\textfloatsep}}{{10pt plus 2pt minus 2pt}}
\setlength{{\floatsep}}{{8pt plus 2pt minus 2pt}}
\renewcommand{{\topfraction}}{{0.95}}
\renewcommand{{\bottomfraction}}{{0.9}}
\renewcommand{{\textfraction}}{{0.05}}
\renewcommand{{\floatpagefraction}}{{0.85}}
\setcounter{{topnumber}}{{4}}
\setcounter{{bottomnumber}}{{3}}
\setcounter{{totalnumber}}{{6}}
% Your own analysis goes where a box says FILL IN; delete each box once written.
\newcommand{{\fillin}}[1]{{\par\noindent\fbox{{\parbox{{\dimexpr\linewidth-2\fboxsep-2\fboxrule\relax}}%
{{\raggedright\ttfamily\small #1}}}}\par}}
\newcommand{{\missing}}[1]{{\par\noindent\textbf{{Missing:}} #1\par}}
"""


def _figure(block: FigureBlock) -> str:
    width = r"\linewidth" if block.width == "full" else r"0.5\linewidth"
    return "\n".join([r"\begin{figure}[tbp]", r"\centering",
                      rf"\includegraphics[width={width}]{{figures/{block.stem}.pdf}}",
                      rf"\caption{{{latex_text(block.caption)}}}", rf"\label{{{block.label}}}",
                      r"\end{figure}", ""])  # fmt: skip


def _table(block: TableBlock) -> str:
    return "\n".join([r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_text(block.caption)}}}",
                      rf"\label{{{block.label}}}", r"\footnotesize", rf"\input{{tables/{block.stem}}}", r"\end{table}",
                      ""])  # fmt: skip


def render_latex(doc: Document) -> str:
    """``main.tex`` of the report: the preamble, the blocks, the bibliography (``plain`` style)."""
    author = (rf"\texttt{{{latex_escape(doc.author, keep='<>')}}}" if doc.author.startswith("<FILL IN")
              else latex_escape(doc.author))  # a blank for the name: typewriter type prints its < and >
    out = [PREAMBLE, rf"\title{{{latex_escape(doc.title)}}}", rf"\author{{{author}}}",
           r"\date{\today}", "", r"\begin{document}", r"\maketitle", ""]  # fmt: skip
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(rf"\{'sub' * (block.level - 1)}section{{{latex_escape(block.title)}}}" + "\n")
        elif isinstance(block, Paragraph):
            out.append(latex_text(block.text) + "\n")
        elif isinstance(block, Equation):
            body = rf"\begin{{aligned}}{block.tex}\end{{aligned}}" if "&" in block.tex else block.tex
            out.append(rf"\begin{{equation*}}{body}\end{{equation*}}" + "\n")
        elif isinstance(block, FigureBlock):
            out.append(_figure(block))
        elif isinstance(block, TableBlock):
            out.append(_table(block))
        elif isinstance(block, FillIn):
            # < and > stay as they are: the box sets them in typewriter type, where they print as such
            out.append(rf"\fillin{{{latex_escape(FILL_IN.format(what=block.what), keep='<>')}}}" + "\n")
        elif isinstance(block, Missing):
            out.append(rf"\missing{{{latex_text(block.text)}}}" + "\n")
    out += [r"{\small", r"\bibliographystyle{plain}", rf"\bibliography{{{doc.bibliography}}}", "}", "", r"\end{document}", ""]
    return "\n".join(out)
