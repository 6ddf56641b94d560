"""Locating the kvsim executable."""

import os
import shutil
from pathlib import Path

__all__ = ["BinaryNotFoundError", "find_binary"]

# This file lives in <repo>/tools/python/kvsim/ in the source tree, or in
# <prefix>/share/kvsim/python/kvsim/ once installed.
_PACKAGE_DIR = Path(__file__).resolve().parent


class BinaryNotFoundError(FileNotFoundError):
    """No kvsim executable was found; the message lists every place that was tried."""


def _executable(path):
    return path.is_file() and os.access(path, os.X_OK)


def _named(value, origin):
    """Resolves a binary given by the caller or by $KVSIM_BINARY: a path, or a bare name
    looked up on PATH. Raises BinaryNotFoundError rather than falling back to another
    binary, so that a typo never silently runs a different kvsim."""
    text = os.fspath(value)
    if os.sep in text or (os.altsep and os.altsep in text):
        path = Path(text).expanduser()
        if _executable(path):
            return path.resolve()
        raise BinaryNotFoundError(f"{origin} {text!r} is not an executable file")
    found = shutil.which(text)
    if found is None:
        path = Path(text)
        if _executable(path):
            return path.resolve()
        raise BinaryNotFoundError(f"{origin} {text!r} is neither an executable file nor on PATH")
    return Path(found).resolve()


def _candidates():
    """The (description, path) pairs of the fixed places, in the order they are tried."""
    repo = _PACKAGE_DIR.parent.parent.parent
    places = [("source-tree build", repo / "build" / "sim" / "kvsim")]
    python_dir = _PACKAGE_DIR.parent
    if (python_dir.name == "python" and python_dir.parent.name == "kvsim"
            and python_dir.parent.parent.name == "share"):
        prefix = python_dir.parent.parent.parent
        places.append(("installation prefix", prefix / "bin" / "kvsim"))
    return places


def find_binary(binary=None):
    """Returns the absolute path of the kvsim executable to run, as a pathlib.Path.

    Tried in this order, the first that applies wins:

    1. ``binary`` (a path, or a name looked up on PATH), when given;
    2. the environment variable ``KVSIM_BINARY``, when set and not empty;
    3. ``<repo>/build/sim/kvsim``, the build of the source tree this package belongs to
       (the package being ``<repo>/tools/python/kvsim/``);
    4. ``<prefix>/bin/kvsim`` when the package is installed as
       ``<prefix>/share/kvsim/python/kvsim/``;
    5. ``kvsim`` on PATH.

    An explicit ``binary`` or ``KVSIM_BINARY`` that names no executable raises
    BinaryNotFoundError at once (no fallback to the other places); so does finding
    nothing at all.
    """
    if binary is not None:
        return _named(binary, "binary=")
    env = os.environ.get("KVSIM_BINARY", "")
    if env:
        return _named(env, "$KVSIM_BINARY")
    tried = []
    for what, path in _candidates():
        if _executable(path):
            return path.resolve()
        tried.append(f"{what} {path}")
    found = shutil.which("kvsim")
    if found is not None:
        return Path(found).resolve()
    tried.append("'kvsim' on PATH")
    raise BinaryNotFoundError(
        "kvsim executable not found; pass binary=, set $KVSIM_BINARY, or build it "
        "(cmake -S . -B build && cmake --build build --target kvsim). Tried: "
        + "; ".join(tried))
