"""The report's profile reader (tools/report/kvsim_report/inputs/profile.py) against the one
schema of kvprobe's profile format, sim/timing/profile_schema.h, as tools/kvprobe/PROFILE_FORMAT.md
states it (tests/timing/profile_schema_test.cc checks that the document states exactly the
schema). PROFILE_TABLES has exactly the document's table sections, in its order, each with its
required flag, its required columns in order and its text columns; META_SECTION is the document's
key-value section and FORMAT_VERSION_KEY one of its required keys; and the [meta] keys the
calibration report shows are keys of the format. The comparison itself is checked on edited
copies of the document and of PROFILE_TABLES: each edit shows up as the difference it makes.

Needs no kvsim; run with Debian's interpreter (the calibration report imports matplotlib):
  /usr/bin/python3 -m unittest discover -s tests/report -p "test_profile_schema.py" -v
"""

import copy
import importlib
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("KVSIM_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    HERE)))
FORMAT_DOC = os.path.join(SOURCE, "tools", "kvprobe", "PROFILE_FORMAT.md")
REPORT_DIR = os.path.join(SOURCE, "tools", "report")

# The labels of the document's name lists (its "Sections" part says how entries are written).
LIST_LABELS = ("Columns", "Optional columns", "Text columns", "Keys", "Optional keys",
               "Numeric keys")


def report_module(name):
    """kvsim_report.<name> of the repository under test."""
    if REPORT_DIR not in sys.path:
        sys.path.insert(0, REPORT_DIR)
    return importlib.import_module(f"kvsim_report.{name}")


def first_code_span(line):
    """The text of the first `code span` of `line`, or None."""
    open_ = line.find("`")
    close = line.find("`", open_ + 1) if open_ >= 0 else -1
    return line[open_ + 1:close] if close >= 0 else None


def read_doc(text):
    """(sections, files, errors) of the document's text, read as tests/timing/
    profile_schema_test.cc reads it: a line "`[name]` (required...)" or "`[name]` (optional...)"
    starts a section, "`path.csv`: ..." a raw file, a "## " heading ends either, and a line
    "Label: `a,b,c`" (a label of LIST_LABELS) lists names. sections: {name: {"required": bool,
    label: [names]}} in document order; files: {path: {label: [names]}}; errors: the lines it
    could not read."""
    sections, files, errors = {}, {}, []
    entry = None
    for lineno, line in enumerate(text.splitlines(), 1):
        span = first_code_span(line)
        rest = line[len(span) + 2:] if span is not None and line.startswith("`") else ""
        label = line.split(": ", 1)[0] if ": " in line else None
        if line.startswith("## "):
            entry = None
        elif span and line.startswith("`[") and len(span) > 2 and span.endswith("]"):
            name = span[1:-1]
            if not rest.startswith((" (required", " (optional")):
                errors.append(f"line {lineno}: [{name}] is neither (required) nor (optional)")
            if name in sections:
                errors.append(f"line {lineno}: [{name}] is documented twice")
            entry = sections[name] = {"required": rest.startswith(" (required")}
        elif span and line.startswith("`") and span.endswith(".csv") and rest.startswith(":"):
            entry = files[span] = {}
        elif label in LIST_LABELS:
            if entry is None:
                errors.append(f"line {lineno}: {label}: outside any section or file")
            elif not span or " " in span:
                errors.append(f"line {lineno}: {label}: expected one code span of names")
            elif label in entry:
                errors.append(f"line {lineno}: {label} listed twice")
            else:
                entry[label] = span.split(",")
    return sections, files, errors


def doc_tables(sections):
    """{name: (required, columns, text columns)} of the document's table sections (those with
    Columns), as PROFILE_TABLES states them: the required columns only, and the text columns
    among them, each in document order."""
    out = {}
    for name, s in sections.items():
        if "Columns" not in s:
            continue
        columns = tuple(s["Columns"])
        out[name] = (s["required"], columns,
                     tuple(c for c in s.get("Text columns", ()) if c in columns))
    return out


def differences(tables, sections):
    """What `tables` (PROFILE_TABLES' form) states otherwise than the document's `sections`,
    one line each; empty when they agree."""
    want = doc_tables(sections)
    out = []
    if list(tables) != list(want):
        out.append(f"tables {list(tables)}, the document {list(want)}")
    for name in (n for n in tables if n in want):
        for what, have, doc in zip(("required", "columns", "text columns"), tables[name],
                                   want[name]):
            if have != doc:
                out.append(f"[{name}] {what} {have!r}, the document {doc!r}")
    return out


def read_format_doc():
    with open(FORMAT_DOC, encoding="utf-8") as f:
        return f.read()


class ProfileTablesAreTheSchemaTest(unittest.TestCase):
    def setUp(self):
        self.text = read_format_doc()
        self.sections, self.files, errors = read_doc(self.text)
        self.assertEqual(errors, [], f"unreadable lines in {FORMAT_DOC}")
        self.profile = report_module("inputs.profile")

    def test_the_document_is_read(self):
        # [meta] first, then the tables; the raw files' lists are theirs, not a section's.
        self.assertEqual(list(self.sections)[0], "meta")
        self.assertGreater(len(self.sections), 5)
        self.assertIn("vmm_samples.csv", self.files)
        self.assertIn("splits", self.sections["decode_attention"]["Optional columns"])
        self.assertEqual(self.sections["gemm"]["Text columns"], ["model", "layer"])
        for name, s in self.sections.items():
            self.assertEqual("Keys" in s, "Columns" not in s, name)
            for c in s.get("Text columns", ()):
                self.assertIn(c, s["Columns"] + s.get("Optional columns", []), f"[{name}] {c}")

    def test_profile_tables_state_the_documented_tables(self):
        # PROFILE_TABLES lists each table's required columns only (see its comment): the reader
        # rejects a header without one of them, and earlier profiles lack the optional ones.
        self.assertEqual(differences(self.profile.PROFILE_TABLES, self.sections), [])

    def test_meta_names_are_the_documented_ones(self):
        meta = self.sections[self.profile.META_SECTION]
        self.assertNotIn("Columns", meta)  # the key: value section
        self.assertEqual([n for n, s in self.sections.items() if "Keys" in s],
                         [self.profile.META_SECTION])
        self.assertIn(self.profile.FORMAT_VERSION_KEY, meta["Keys"])
        self.assertIn(self.profile.FORMAT_VERSION_KEY, meta["Numeric keys"])

    def test_the_calibration_report_shows_documented_meta_keys(self):
        meta = self.sections[self.profile.META_SECTION]
        keys = meta["Keys"] + meta.get("Optional keys", [])
        calibration = report_module("reports.calibration")
        for key, _ in calibration.META_ROWS:
            self.assertIn(key, keys)


class ComparisonTest(unittest.TestCase):
    """Each edit of the document or of PROFILE_TABLES shows up as the difference it makes."""

    def setUp(self):
        self.text = read_format_doc()
        self.tables = copy.deepcopy(report_module("inputs.profile").PROFILE_TABLES)

    def doc_differences(self, old, new):
        self.assertIn(old, self.text)
        sections, _, errors = read_doc(self.text.replace(old, new, 1))
        self.assertEqual(errors, [])
        return differences(self.tables, sections)

    def test_a_column_renamed_in_the_document(self):
        self.assertEqual(self.doc_differences("Columns: `bytes,time_us,gbps`.",
                                              "Columns: `bytes,time_ns,gbps`."),
                         ["[copy] columns ('bytes', 'time_us', 'gbps'), the document "
                          "('bytes', 'time_ns', 'gbps')"])

    def test_a_column_renamed_in_profile_tables(self):
        required, columns, _ = self.tables["gemm"]
        renamed = ("model", "layer_name")
        self.tables["gemm"] = (required, renamed + columns[2:], renamed)
        sections, _, _ = read_doc(self.text)
        found = differences(self.tables, sections)
        self.assertEqual(len(found), 2, found)
        self.assertTrue(found[0].startswith("[gemm] columns ('model', 'layer_name', "), found)
        self.assertTrue(found[1].startswith("[gemm] text columns ('model', 'layer_name')"), found)

    def test_another_order_presence_or_type(self):
        found = self.doc_differences("Columns: `gpus,bytes,time_us,algbw_gbps,busbw_gbps`.",
                                     "Columns: `bytes,gpus,time_us,algbw_gbps,busbw_gbps`.")
        self.assertEqual(len(found), 1, found)
        self.assertTrue(found[0].startswith("[allreduce] columns ('gpus', 'bytes'"), found)
        found = self.doc_differences("`[copy]` (required)", "`[copy]` (optional)")
        self.assertEqual(found, ["[copy] required True, the document False"])
        found = self.doc_differences("Text columns: `metric`.", "")
        self.assertEqual(found, ["[vmm_under_load] text columns ('metric',), the document ()"])

    def test_an_optional_column_made_required(self):
        found = self.doc_differences("Optional columns: `splits`.", "")
        self.assertEqual(found, [])  # an optional column is no column of PROFILE_TABLES
        found = self.doc_differences("time_us,kv_gbps`.\nOptional columns: `splits`.",
                                     "time_us,kv_gbps,splits`.")
        self.assertEqual(len(found), 1, found)
        self.assertTrue(found[0].startswith("[decode_attention] columns"), found)

    def test_a_section_added_or_missing(self):
        self.text += "\n`[extra]` (optional): more.\nColumns: `a_us,b`.\n"
        found = self.doc_differences("`[vattention]` (optional)", "`[vattention_old]` (optional)")
        self.assertEqual(len(found), 1, found)
        self.assertIn("'vattention_old'", found[0])
        self.assertIn("'extra'", found[0])

    def test_unreadable_lists_are_errors(self):
        _, _, errors = read_doc("Columns: `a,b`.\n"
                                "`[gemm]` (sometimes): x.\n"
                                "Columns: `a, b`.\n"
                                "`[copy]` (required): y.\n"
                                "Columns: `a`.\n"
                                "Columns: `b`.\n"
                                "`[copy]` (required): z.\n")
        self.assertEqual(errors, [
            "line 1: Columns: outside any section or file",
            "line 2: [gemm] is neither (required) nor (optional)",
            "line 3: Columns: expected one code span of names",
            "line 6: Columns listed twice",
            "line 7: [copy] is documented twice",
        ])


if __name__ == "__main__":
    unittest.main()
