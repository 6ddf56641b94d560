"""Tests for check_sources.py: the repository keeps its layering and size rules, and the
checker finds a cycle, an undocumented include, a long function and a long file in small trees
made for the purpose."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_sources  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

README = """# x

Layering, as the includes have it:

```
core        (nothing)
metrics     core
```
"""


# Two folders that keep README's table.
BASE = {"sim/core/base.h": "\n", "sim/metrics/base.h": '#include "sim/core/base.h"\n'}


def make_tree(files, readme=README):
    """A temporary repository holding BASE, `files` ({relative path: text}) and README.md."""
    root = tempfile.mkdtemp()
    for rel, text in {**BASE, **files, "README.md": readme}.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return root


def function(name, body_lines):
    """A namespace-scope C++ function of `body_lines` statements (body_lines + 2 lines)."""
    return f"int {name}() {{\n" + "  x();\n" * body_lines + "}\n"


class RepositoryTest(unittest.TestCase):
    def test_the_repository_keeps_its_layering_and_size_limits(self):
        self.assertEqual(check_sources.violations(REPO), [])


class CheckerTest(unittest.TestCase):
    def test_a_tree_that_keeps_the_rules_has_no_violation(self):
        root = make_tree({"sim/core/a.h": "int a();\n",
                          "sim/metrics/m.cc": '#include "sim/core/a.h"\n' + function("f", 78)})
        self.assertEqual(check_sources.violations(root), [])

    def test_a_function_over_eighty_lines_is_named_with_its_line_and_length(self):
        root = make_tree({"sim/core/a.cc": "// x\n\n" + function("f", 79)})
        self.assertEqual(check_sources.violations(root),
                         ["sim/core/a.cc:3: a function of 81 lines (limit 80)"])

    def test_a_signature_over_several_lines_counts_from_its_first(self):
        text = "int f(int a,\n      int b) {\n" + "  x();\n" * 78 + "}\n"
        root = make_tree({"sim/core/a.cc": text})
        self.assertEqual(check_sources.violations(root),
                         ["sim/core/a.cc:1: a function of 81 lines (limit 80)"])

    def test_namespaces_and_structs_are_not_functions(self):
        text = "namespace kvsim {\nstruct S {\n" + "  int x;\n" * 90 + "};\n}  // namespace kvsim\n"
        root = make_tree({"sim/core/a.h": text})
        self.assertEqual(check_sources.violations(root), [])

    def test_a_file_of_six_hundred_lines_is_too_long(self):
        root = make_tree({"sim/core/a.h": "// x\n" * 600})
        self.assertEqual(check_sources.violations(root),
                         ["sim/core/a.h: 600 lines (limit: under 600)"])

    def test_an_include_cycle_is_named(self):
        readme = README.replace("core        (nothing)", "core        metrics")
        root = make_tree({"sim/core/a.h": '#include "sim/metrics/base.h"\n'}, readme)
        found = check_sources.violations(root)
        self.assertIn("include cycle: core -> metrics -> core", found)

    def test_an_include_the_readme_does_not_list_is_named(self):
        root = make_tree({"sim/workload/w.h": '#include "sim/metrics/base.h"\n'})
        found = check_sources.violations(root)
        self.assertEqual(found, ["README.md Layering: workload includes metrics; "
                                 "the table says (no row)"])

    def test_an_include_the_readme_lists_but_the_code_lacks_is_named(self):
        root = make_tree({"sim/metrics/base.h": "\n"})
        self.assertEqual(check_sources.violations(root),
                         ["README.md Layering: metrics includes ; the table says core"])


if __name__ == "__main__":
    unittest.main()
