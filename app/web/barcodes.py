"""Code 128 barcodes for printed documents, as inline SVG (python-barcode's SVG writer).

The Content-Security-Policy refuses inline `style` attributes, and the writer colours its bars with
them: without a fix every rectangle, background included, would print black. They become `fill`
attributes, which are presentation attributes and not styles.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache

from barcode import Code128
from barcode.writer import SVGWriter
from markupsafe import Markup, escape

_STYLE_FILL = re.compile(r'style="fill:\s*([#\w]+);?"')
_OPTIONS = {
    "module_width": 0.3,  # mm: readable by any scanner from a sheet of A4
    "module_height": 12.0,
    "quiet_zone": 3.0,
    "write_text": False,  # the human-readable text is printed by the page, in its own font
    "compress": False,
}


@lru_cache(maxsize=512)
def code128_svg(value: str, label: str | None = None) -> Markup:
    """An inline <svg> of `value` in Code 128, described for screen readers by `label` (or the value)."""
    buffer = io.BytesIO()
    Code128(value, writer=SVGWriter()).write(buffer, options=_OPTIONS)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = _STYLE_FILL.sub(r'fill="\1"', svg).replace(' id="barcode_group"', "")  # many on one page
    description = escape(label or value)
    svg = svg.replace("<svg ", f'<svg class="barcode" role="img" aria-label="{description}" ', 1)
    return Markup(svg.strip())  # noqa: S704 - built here from escaped text, no user markup
