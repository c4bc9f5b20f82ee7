"""A braille pixel canvas: 2×4 dots per terminal cell, one colour per cell.

Pure numpy; no Textual. Lines are rasterised for all segments at once
(vectorised), so drawing costs O(pixels touched), not O(Python loops per
point). Each layer has its own style; a cell shows the union of the dots of
every layer, in the style of the topmost layer that has a dot there. A
*band* layer (the faint raw series under a smoothed line) lies beneath the
others: a cell shows its dots only where no other layer has a dot, so a line
drawn over a band keeps its own shape and colour.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

__all__ = ["BrailleCanvas", "BRAILLE"]

#: Braille characters by dot bits.
BRAILLE = [chr(0x2800 + i) for i in range(256)]
# bit of the dot at (x % 2, y % 4)
_BITS = np.array([[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]], dtype=np.uint8)



class BrailleCanvas:
    """``width`` × ``height`` cells, i.e. ``2*width`` × ``4*height`` pixels,
    pixel (0, 0) at the top left."""

    def __init__(self, width: int, height: int) -> None:
        self.width = max(0, int(width))
        self.height = max(0, int(height))
        self.px_width = 2 * self.width
        self.px_height = 4 * self.height
        self.layers: List[Tuple[np.ndarray, object]] = []
        self.bands: List[int] = []  # indexes of the band layers
        # cell overlays: (row, col) -> (char, style, above_curves)
        self.overlays: dict = {}

    def layer(self, style: object, band: bool = False) -> int:
        """A new layer drawn above the previous ones (``band``: beneath every
        layer that is not a band); returns its index."""
        self.layers.append((np.zeros(self.width * self.height, dtype=np.uint8), style))
        if band:
            self.bands.append(len(self.layers) - 1)
        return len(self.layers) - 1

    def _set(self, layer: int, px: np.ndarray, py: np.ndarray) -> None:
        if not len(px):
            return
        ok = (px >= 0) & (px < self.px_width) & (py >= 0) & (py < self.px_height)
        if not ok.all():
            px, py = px[ok], py[ok]
        cells = (py >> 2) * self.width + (px >> 1)
        bits = _BITS[px & 1, py & 3]
        np.bitwise_or.at(self.layers[layer][0], cells, bits)

    def points(self, layer: int, x: np.ndarray, y: np.ndarray) -> None:
        """Single dots at pixel coordinates (floats, rounded)."""
        px = np.rint(np.asarray(x, dtype=np.float64)).astype(np.int64)
        py = np.rint(np.asarray(y, dtype=np.float64)).astype(np.int64)
        self._set(layer, px, py)

    def polyline(self, layer: int, x: np.ndarray, y: np.ndarray, pattern: str = "solid") -> None:
        """Connect consecutive points (pixel coordinates) with straight lines.
        ``pattern``: ``solid``, ``dash`` (3 on, 3 off) or ``dot`` (every third
        pixel), counted along the whole line."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if len(x) == 0:
            return
        # keep coordinates in a sane range before converting to int
        lim = 4.0 * (self.px_width + self.px_height + 8)
        x = np.clip(x, -lim, lim)
        y = np.clip(y, -lim, lim)
        if len(x) == 1:
            self.points(layer, x, y)
            return
        xi = np.rint(x).astype(np.int64)
        yi = np.rint(y).astype(np.int64)
        x0, y0 = xi[:-1], yi[:-1]
        dx, dy = xi[1:] - x0, yi[1:] - y0
        n = np.maximum(np.abs(dx), np.abs(dy))  # pixels per segment, the end excluded
        n = np.maximum(n, 1)
        total = int(n.sum())
        seg = np.repeat(np.arange(len(n)), n)
        start = np.cumsum(n) - n
        t = np.arange(total) - start[seg]
        frac = t / n[seg]
        px = x0[seg] + np.rint(dx[seg] * frac).astype(np.int64)
        py = y0[seg] + np.rint(dy[seg] * frac).astype(np.int64)
        px = np.append(px, xi[-1])
        py = np.append(py, yi[-1])
        if pattern == "dash":
            keep = (np.arange(len(px)) // 3) % 2 == 0
            px, py = px[keep], py[keep]
        elif pattern == "dot":
            keep = np.arange(len(px)) % 3 == 0
            px, py = px[keep], py[keep]
        self._set(layer, px, py)

    def text(self, row: int, col: int, char: str, style: object, above: bool = True) -> None:
        """Put one character in a cell: ``above`` the curves (a marker) or
        only where no curve passes (a guide line)."""
        if 0 <= row < self.height and 0 <= col < self.width:
            self.overlays[(row, col)] = (char, style, above)

    def cells(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(bits, top)``: per cell (rows × cols) the dots shown and the index
        of the topmost layer with a dot there (-1: none): the union of the
        lines' dots where a line passes, else the union of the bands' dots."""
        shape = (self.height, self.width)
        bits = np.zeros(self.width * self.height, dtype=np.uint8)
        top = np.full(self.width * self.height, -1, dtype=np.int16)
        bands = set(self.bands)
        for k, (b, _) in enumerate(self.layers):
            if k not in bands:
                bits |= b
                top[b != 0] = k
        if bands:
            free = top < 0
            for k in self.bands:
                b = self.layers[k][0]
                bits[free] |= b[free]
                top[free & (b != 0)] = k
        return bits.reshape(shape), top.reshape(shape)

    def rows(self, default_style: object = None) -> List[List[Tuple[str, object]]]:
        """Each row as runs of ``(text, style)``."""
        bits, top = self.cells()
        styles = [s for _, s in self.layers]
        overlays = self.overlays
        out = []
        for r in range(self.height):
            brow = bits[r].tolist()
            trow = top[r].tolist()
            runs: List[Tuple[str, object]] = []
            cur_style: Optional[object] = None
            buf: List[str] = []
            for c in range(self.width):
                k = trow[c]
                ov = overlays.get((r, c)) if overlays else None
                if ov is not None and (ov[2] or k < 0):
                    ch, st = ov[0], ov[1]
                elif k >= 0:
                    ch, st = BRAILLE[brow[c]], styles[k]
                else:
                    ch, st = " ", default_style
                if st is not cur_style and buf:
                    runs.append(("".join(buf), cur_style))
                    buf = []
                cur_style = st
                buf.append(ch)
            if buf:
                runs.append(("".join(buf), cur_style))
            out.append(runs)
        return out
