"""Reading files: text (UTF-8), JSON (checked through Node, which names the file and key path of
a bad value) and CSV tables (checked column by column), every error an InputError naming the file
and, where there is one, the line."""

import csv
import json
import math

from ..errors import InputError


def read_text(path):
    """The UTF-8 text of a file; InputError when it is missing, unreadable or not UTF-8."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: missing")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text")


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def load_json(path):
    """The parsed JSON of a file (NaN and Infinity refused); InputError naming the line of a
    syntax error."""
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path}: empty file")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON: {e.msg}")
    except (ValueError, RecursionError) as e:
        raise InputError(f"{path}: not valid JSON: {e}")


class Node:
    """A JSON value with the file and key path it came from, for error messages."""

    def __init__(self, value, file, where=""):
        self.value = value
        self.file = file
        self.where = where

    def _fail(self, what):
        at = f" {self.where}:" if self.where else ""
        raise InputError(f"{self.file}:{at} {what}")

    def _child_where(self, key):
        if isinstance(key, int):
            return f"{self.where}[{key}]"
        return f"{self.where}.{key}" if self.where else key

    def has(self, key):
        return isinstance(self.value, dict) and key in self.value

    def __getitem__(self, key):
        if not isinstance(self.value, dict):
            self._fail("expected an object")
        if key not in self.value:
            Node(None, self.file, self._child_where(key))._fail("missing")
        return Node(self.value[key], self.file, self._child_where(key))

    def get(self, key):
        if isinstance(self.value, dict) and key in self.value:
            return Node(self.value[key], self.file, self._child_where(key))
        return None

    def items(self):
        if not isinstance(self.value, list):
            self._fail("expected a list")
        return [Node(v, self.file, self._child_where(i)) for i, v in enumerate(self.value)]

    def num(self, allow_null=False):
        v = self.value
        if v is None and allow_null:
            return float("nan")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self._fail(f"expected a number, got {_describe(v)}")
        if not math.isfinite(float(v)):
            self._fail("expected a finite number")
        return float(v)

    def nonneg(self):
        x = self.num()
        if x < 0:
            self._fail(f"expected a number >= 0, got {x:g}")
        return x

    def int(self):
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
            self._fail(f"expected an integer, got {_describe(v)}")
        return int(v)

    def str(self):
        if not isinstance(self.value, str):
            self._fail(f"expected a string, got {_describe(self.value)}")
        return self.value

    def bool(self):
        if not isinstance(self.value, bool):
            self._fail(f"expected true or false, got {_describe(self.value)}")
        return self.value


def dir_label(node):
    """The string of `node`, checked to be a usable directory name (a compare or sweep label:
    kvsim writes each label's outputs into DIR/<label>/)."""
    label = node.str()
    if not label or "/" in label or label in (".", ".."):
        node._fail(f"not a usable directory name: {label!r}")
    return label


def _describe(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return f"the string {json.dumps(v[:40])}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return repr(v)


def load_csv(path, columns, ints=(), texts=(), checks=None):
    """Reads a CSV with a header holding at least `columns`; returns {column: [values]}.

    Columns in `ints` are integers, those in `texts` strings, the rest finite floats. `checks`
    is a function (row dict) -> error text or None, applied to every row."""
    reader, header = open_csv(path)
    return read_csv_rows(path, reader, header, columns, ints, texts, checks)


def open_csv(path):
    """(a csv reader past the header, the header's stripped column names) of a CSV file."""
    text = read_text(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{path}:1: empty file (no CSV header)")
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as e:
        raise InputError(f"{path}:1: bad CSV header: {e}")
    return reader, header


def read_csv_rows(path, reader, header, columns, ints=(), texts=(), checks=None):
    """The rows after the header of open_csv's `reader`, as load_csv returns them."""
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    index = {c: header.index(c) for c in columns}
    out = {c: [] for c in columns}
    lineno = 1
    try:
        for row in reader:
            lineno = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
            parsed = {}
            for c in columns:
                field = row[index[c]].strip()
                try:
                    if c in texts:
                        value = field
                    elif c in ints:
                        value = int(field)
                    else:
                        value = float(field)
                        if not math.isfinite(value):
                            raise ValueError
                except ValueError:
                    kind = "an integer" if c in ints else "a finite number"
                    raise InputError(
                        f"{path}:{lineno}: column {c}: {field[:40]!r} is not {kind}")
                parsed[c] = value
            if checks:
                problem = checks(parsed)
                if problem:
                    raise InputError(f"{path}:{lineno}: {problem}")
            for c in columns:
                out[c].append(parsed[c])
    except csv.Error as e:
        raise InputError(f"{path}:{reader.line_num}: bad CSV: {e}")
    return out
