#!/usr/bin/python3
"""Checks the size limits of the report code: no function (or method, nested ones included) over
MAX_FUNCTION_LINES lines, counted with Python's ast as end_lineno - lineno + 1 (decorators not
included), and no file over MAX_FILE_LINES lines, anywhere under tools/report/.

Usage: /usr/bin/python3 tests/report/check_limits.py [DIR]   (default: tools/report of this
repository). Prints every function and file over its limit, and the longest of each; exit status
1 when one is over, else 0.
"""

import ast
import os
import sys

MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 600


def default_root():
    """tools/report of the repository this script is in."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "tools", "report")


def files_under(root):
    """Every file under `root` (compiled-bytecode directories left out), sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        out += [os.path.join(d, f) for f in sorted(files)]
    return out


def file_lines(path):
    """The number of lines of a text file."""
    with open(path, "rb") as f:
        return len(f.read().splitlines())


def function_lengths(path):
    """[(qualified name, first line, lines)] of every function and method in a Python file,
    nested ones included."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}."
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((name[:-1], child.lineno, child.end_lineno - child.lineno + 1))
            visit(child, name)

    visit(tree, "")
    return out


def check(root):
    """(problems, longest function (lines, where), longest file (lines, path)) under `root`:
    problems lists every function and file over its limit, as text."""
    problems = []
    longest_function = (0, "")
    longest_file = (0, "")
    for path in files_under(root):
        rel = os.path.relpath(path, root)
        n = file_lines(path)
        longest_file = max(longest_file, (n, rel))
        if n > MAX_FILE_LINES:
            problems.append(f"{rel}: {n} lines, over {MAX_FILE_LINES}")
        if not path.endswith(".py"):
            continue
        for name, line, length in function_lengths(path):
            longest_function = max(longest_function, (length, f"{rel}:{line} {name}"))
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{rel}:{line}: function {name} is {length} lines, over "
                                f"{MAX_FUNCTION_LINES}")
    return problems, longest_function, longest_file


def main(argv):
    root = argv[1] if len(argv) > 1 else default_root()
    problems, (fn_lines, fn_where), (file_n, file_path) = check(root)
    for p in problems:
        print(p)
    print(f"longest function: {fn_where} ({fn_lines} lines, limit {MAX_FUNCTION_LINES}); "
          f"longest file: {file_path} ({file_n} lines, limit {MAX_FILE_LINES})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
