"""JSON set inside markup: a ``<script>`` element, a tagged block of a model's instructions."""

import json


def json_in_markup(value: object, *, ascii_only: bool = True) -> str:
    """``value`` as compact JSON holding no ``<``, ``>`` or ``&`` (each as its ``\\u``
    escape), so that no string in it can close the element or tag around it (``</script>``,
    ``</page_context>``) or open another. ``ascii_only``: every other non-ASCII character
    escaped too (a script: JavaScript before ES2019 ends a line at U+2028); else kept as
    written (instructions: a model reads them)."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only)
    return data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
