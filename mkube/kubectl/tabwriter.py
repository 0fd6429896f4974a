"""A port of Go's `text/tabwriter` (the subset kubectl uses), so columns line up exactly
as kubectl's do.

Text is a sequence of lines; a line is cells separated by tabs. A cell that ends with a
tab belongs to a column; the last cell of a line does not. Columns are aligned per
*block*: consecutive lines that have a cell in that column. Width of a column block =
max(cell width + padding, minwidth). kubectl's tables use minwidth 6, padding 3 and
"remember widths" (columns never shrink between flushes, so rows of a watch stay aligned
with the header); `describe` uses minwidth 0, padding 2.
"""

from __future__ import annotations


class TabWriter:
    """Accumulates text with `write`; `flush()` returns it formatted (and clears the buffer)."""

    def __init__(self, minwidth: int = 0, padding: int = 1, remember_widths: bool = False) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.remember_widths = remember_widths
        self._buf: list[str] = []
        self._maxwidths: list[int] = []

    def write(self, text: str) -> None:
        self._buf.append(text)

    def take_raw(self) -> str:
        """The buffered text as written, tabs and all (and clears the buffer)."""
        text = "".join(self._buf)
        self._buf = []
        return text

    def reset_widths(self) -> None:
        """Forget remembered column widths (kubectl does so between resource kinds)."""
        self._maxwidths = []

    def flush(self) -> str:
        """The buffered text, formatted. A final line without newline stays without one."""
        text = "".join(self._buf)
        self._buf = []
        if not text:
            return ""
        raw_lines = text.split("\n")
        # After the last "\n" there is either nothing or an unterminated line.
        unterminated = raw_lines.pop()
        lines = [line.split("\t") for line in raw_lines]
        if unterminated:
            lines.append(unterminated.split("\t"))
        out: list[str] = []
        self._format(lines, [], 0, len(lines), out, terminated=not unterminated)
        return "".join(out)

    # ------------------------------------------------------------------ internals
    def _format(self, lines: list[list[str]], widths: list[int], line0: int, line1: int,
                out: list[str], terminated: bool) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            # A cell exists in this column: write the lines before the block, then the block.
            self._write_lines(lines, widths, line0, this, out, terminated)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember_widths:
                width = self._remember(widths, width)
            widths.append(width)
            self._format(lines, widths, line0, this, out, terminated)
            widths.pop()
            line0 = this
        self._write_lines(lines, widths, line0, line1, out, terminated)

    def _remember(self, widths: list[int], width: int) -> int:
        # liggitt/tabwriter's RememberWidths, as vendored by kubectl.
        if len(self._maxwidths) < len(widths):
            self._maxwidths.extend(widths[len(self._maxwidths):])
        col = len(widths)
        if len(self._maxwidths) == col:
            self._maxwidths.append(width)
        elif self._maxwidths[col] > width:
            width = self._maxwidths[col]
        else:
            self._maxwidths[col] = width
        return width

    @staticmethod
    def _write_lines(lines: list[list[str]], widths: list[int], line0: int, line1: int,
                     out: list[str], terminated: bool) -> None:
        for i in range(line0, line1):
            for j, cell in enumerate(lines[i]):
                out.append(cell)
                if j < len(widths):
                    out.append(" " * (widths[j] - len(cell)))
            if i + 1 < len(lines) or terminated:
                out.append("\n")


def tabbed(text: str, minwidth: int = 0, padding: int = 2) -> str:
    """Format `text` in one go (describe's settings by default)."""
    tw = TabWriter(minwidth=minwidth, padding=padding)
    tw.write(text)
    return tw.flush()
