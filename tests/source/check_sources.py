#!/usr/bin/python3
"""Checks the C++ sources' shape against the rules README's Layout section states:

- the include graph: the folders of sim/ as `#include "sim/<folder>/..."` lines link them (a
  folder's own includes left out) has no cycle, and is exactly the table under "Layering" in
  README.md (each folder and the folders it includes);
- sizes: no file under sim/ of MAX_FILE_LINES lines or more, and no function defined at
  namespace scope longer than MAX_FUNCTION_LINES lines. A function is counted from its first
  line at column 0 that ends with "{" (its signature's last line; `namespace`, `struct`,
  `class`, `enum`, `union` and `extern` lines are not functions; a signature over several
  lines counts from its first) to the next line that is "}" alone, both included. Member functions defined inside a class body are not counted here
  (clang-tidy's readability-function-size in tools/tidy.sh covers every function).

Usage: /usr/bin/python3 tests/source/check_sources.py [REPO]. Prints each violation; exit 1 when
there is one.
"""

import os
import re
import sys

MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 600
INCLUDE = re.compile(r'^\s*#\s*include\s+"sim/([a-z_]+)/')
NOT_A_FUNCTION = re.compile(r"^(namespace|struct|class|enum|union|extern|template\s*<.*>\s*"
                            r"(struct|class))\b")


def sources(repo):
    """Every .h and .cc file under sim/, sorted, as (path relative to repo, folder, lines)."""
    out = []
    root = os.path.join(repo, "sim")
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith((".h", ".cc")):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, repo)
                folder = rel.split(os.sep)[1] if rel.count(os.sep) >= 2 else ""
                with open(path, encoding="utf-8") as fh:
                    out.append((rel, folder, fh.read().splitlines()))
    return out


def include_graph(files):
    """{folder: set of the other folders its files include}."""
    graph = {}
    for _, folder, lines in files:
        if not folder:
            continue
        deps = graph.setdefault(folder, set())
        for line in lines:
            m = INCLUDE.match(line)
            if m and m.group(1) != folder:
                deps.add(m.group(1))
    return graph


def find_cycle(graph):
    """A list of folders forming a cycle, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep] if dep in path else path + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def readme_layering(repo):
    """README's Layering table: {folder: set of folders}, from the code block after the line
    starting "Layering"; each row is a folder, then the folders it includes, comma-separated,
    or "(nothing)"."""
    with open(os.path.join(repo, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    start = text.index("\nLayering")
    block = text[text.index("```", start) + 3:]
    block = block[block.index("\n") + 1:block.index("```")]
    table = {}
    for line in block.splitlines():
        if not line.strip():
            continue
        folder, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        table[folder] = set() if rest == "(nothing)" else {d.strip() for d in rest.split(",")}
    return table


def function_start(lines, i):
    """The index of the first line of the namespace-scope function whose body opens at the
    end of line i, or None: the statement ending in "{" is followed back over its indented
    continuation lines to a line at column 0 that is not a preprocessor line, comment,
    namespace, type or extern block."""
    if not lines[i].rstrip().endswith("{"):
        return None
    start = i
    while (start > 0 and lines[start][:1].isspace() and lines[start - 1].strip()
           and not lines[start - 1].rstrip().endswith((";", "{", "}"))):
        start -= 1
    line = lines[start]
    if not line or line[0].isspace() or line.startswith(("#", "//", "}")):
        return None
    return None if NOT_A_FUNCTION.match(line) else start


def long_functions(files):
    """(path, first line, lines) of each namespace-scope function over MAX_FUNCTION_LINES."""
    out = []
    for rel, _, lines in files:
        start = None
        for i, line in enumerate(lines):
            if start is None:
                start = function_start(lines, i)
            elif line == "}" or line.startswith("};"):
                if i - start + 1 > MAX_FUNCTION_LINES:
                    out.append((rel, start + 1, i - start + 1))
                start = None
    return out


def violations(repo):
    """Every violation, as a line of text."""
    files = sources(repo)
    out = [f"{rel}: {len(lines)} lines (limit: under {MAX_FILE_LINES})"
           for rel, _, lines in files if len(lines) >= MAX_FILE_LINES]
    out += [f"{rel}:{line}: a function of {n} lines (limit {MAX_FUNCTION_LINES})"
            for rel, line, n in long_functions(files)]
    graph = include_graph(files)
    cycle = find_cycle(graph)
    if cycle:
        out.append("include cycle: " + " -> ".join(cycle))
    documented = readme_layering(repo)
    for folder in sorted(set(graph) | set(documented)):
        have, said = graph.get(folder), documented.get(folder)
        if have != said:
            out.append(f"README.md Layering: {folder} includes "
                       f"{', '.join(sorted(have)) if have is not None else '(no such folder)'}; "
                       f"the table says {', '.join(sorted(said)) if said is not None else '(no row)'}")
    return out


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    found = violations(repo)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
