"""Size limits of the report code (tests/report/check_limits.py): no function over 80 lines and no
file over 600 lines anywhere under tools/report/; and the checker finds functions (nested ones
included) and files over the limits.

Needs neither kvsim nor matplotlib: /usr/bin/python3 -m unittest discover -s tests/report \
    -p "test_limits.py" -v
"""

import importlib.util
import os
import shutil
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def checker():
    """tests/report/check_limits.py, imported."""
    spec = importlib.util.spec_from_file_location("check_limits",
                                                  os.path.join(HERE, "check_limits.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report_root():
    """tools/report of the repository under test (KVSIM_SOURCE_DIR, as ctest sets it, else the
    repository these tests are in)."""
    source = os.environ.get("KVSIM_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
    return os.path.join(os.path.abspath(source), "tools", "report")


class ReportCodeLimitsTest(unittest.TestCase):
    def test_no_function_over_80_lines_and_no_file_over_600_lines(self):
        limits = checker()
        self.assertEqual((limits.MAX_FUNCTION_LINES, limits.MAX_FILE_LINES), (80, 600))
        root = report_root()
        self.assertTrue(os.path.isfile(os.path.join(root, "kvsim_report.py")), root)
        self.assertTrue(os.path.isfile(os.path.join(root, "kvsim_report", "__init__.py")), root)
        problems, _, _ = limits.check(root)
        self.assertEqual(problems, [])

    def test_the_checker_finds_long_functions_and_long_files(self):
        limits = checker()
        d = tempfile.mkdtemp(prefix="kvsim_limits_test_")
        self.addCleanup(shutil.rmtree, d, True)
        inner_body = "".join(f"        x{i} = {i}\n" for i in range(80))
        with open(os.path.join(d, "long.py"), "w") as f:
            f.write("def short():\n    return 1\n\n\n"  # 2 lines: within the limit
                    "def outer():\n    def inner():\n" + inner_body  # inner: 82 lines
                    + "        return 0\n    return inner\n")  # outer: 84 lines
        with open(os.path.join(d, "big.txt"), "w") as f:
            f.write("line\n" * 601)
        problems, (longest, where), (file_n, _) = limits.check(d)
        self.assertEqual(len(problems), 3, problems)
        self.assertIn("big.txt: 601 lines, over 600", problems)
        self.assertTrue(any("function outer is 84 lines" in p for p in problems), problems)
        self.assertTrue(any("function outer.inner is 82 lines" in p for p in problems), problems)
        self.assertEqual((longest, file_n), (84, 601))
        self.assertIn("outer", where)


if __name__ == "__main__":
    unittest.main()
