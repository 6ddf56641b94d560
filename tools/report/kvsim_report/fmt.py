"""Formatting numbers, sizes, money and lists of names for the report's text and tables; "—" for
a value that is not a finite number."""

import math

GIB = 1024.0 ** 3
MIB = 1024.0 ** 2


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fnum(x, digits=3):
    if not is_num(x):
        return "—"
    return f"{x:.{digits}f}"


def fgen(x, sig=4):
    if not is_num(x):
        return "—"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{sig - 1}e}"
    return f"{x:.{sig}g}" if abs(x) < 10 ** sig else f"{x:.0f}"


def fint(x):
    return f"{int(x):,}" if is_num(x) else "—"


def fbytes(b):
    if not is_num(b):
        return "—"
    for unit, size in (("TiB", 1024.0 ** 4), ("GiB", GIB), ("MiB", MIB), ("KiB", 1024.0)):
        if abs(b) >= size:
            v = b / size
            return f"{v:g} {unit}" if v == int(v) else f"{v:.2f} {unit}"
    return f"{b:g} B"


def fmoney(x):
    return f"${x:,.2f}" if is_num(x) else "—"


def sig3(x):
    """x to three significant digits, trailing zeros kept (0.0500, 6.00, 183)."""
    if not is_num(x):
        return "—"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    text = f"{x:#.3g}"
    if "e" in text:
        return f"{x:.2e}"
    return text.rstrip(".")


def _names(items):
    """'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
