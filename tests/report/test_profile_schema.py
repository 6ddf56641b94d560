"""The report's profile reader (tools/report/kvsim_report/inputs/profile.py) against the one
schema of kvprobe's profile format, sim/timing/profile_schema.h, as tools/kvprobe/PROFILE_FORMAT.md
states it (tests/timing/profile_schema_test.cc checks that the document states exactly the
schema). PROFILE_TABLES has exactly the document's table sections, in its order, each with its
required flag, its required columns in order and its text columns; META_SECTION is the document's
key-value section and FORMAT_VERSION_KEY one of its required keys; and the [meta] keys the
calibration report shows are keys of the format. The comparison itself is checked on edited
copies of the document and of PROFILE_TABLES: each edit shows up as the difference it makes.

The reader also applies kvsim's end-marker rule (sim/timing/profile.cc, CheckEndMarker): its
END_MARKER and FIRST_KVPROBE_WITH_END_MARKER are sim/timing/profile.h's, versions compare as
kvsim compares them, and a profile of kvprobe 0.3.16 (the committed
models/profiles/H200/repeat_1235Z/profile.txt, completed with the required sections its partial
run left out, from models/profiles/H200/profile.txt) is charted whole, and refused when cut short
(exit status 2, one line naming the file and kvsim's words), in copies in a temporary directory;
a profile of an earlier kvprobe without the marker is charted.

Needs no kvsim; run with Debian's interpreter (the calibration report imports matplotlib):
  /usr/bin/python3 -m unittest discover -s tests/report -p "test_profile_schema.py" -v
"""

import copy
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get("KVSIM_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    HERE)))
FORMAT_DOC = os.path.join(SOURCE, "tools", "kvprobe", "PROFILE_FORMAT.md")
REPORT_DIR = os.path.join(SOURCE, "tools", "report")
REPORT_SCRIPT = os.path.join(REPORT_DIR, "kvsim_report.py")
PROFILE_H = os.path.join(SOURCE, "sim", "timing", "profile.h")
H200 = os.path.join(SOURCE, "models", "profiles", "H200")
# A profile of kvprobe 0.3.16, the first that writes the end marker: a partial run
# ([meta], [copy], [decode_attention], [prefill_attention]).
MARKED_PROFILE = os.path.join(H200, "repeat_1235Z", "profile.txt")
# A whole run of kvprobe 0.3.14: every section, no end marker.
EARLIER_PROFILE = os.path.join(H200, "profile.txt")

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


def read_file(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def section_text(text, name):
    """The lines of section [name] of profile text `text`, from its "[name]" line up to the next
    section's (blank lines and comments before that included)."""
    start = text.index(f"\n[{name}]\n") + 1
    end = text.find("\n[", start)
    return text[start:end + 1] if end >= 0 else text[start:]


def whole_marked_profile():
    """MARKED_PROFILE's text with the required sections its partial run left out ([vmm] and
    [gemm], as models/profiles/H200/profile.txt has them) put where kvprobe writes them, before
    [decode_attention]: a whole profile of kvprobe 0.3.16, ending with its end marker."""
    text = read_file(MARKED_PROFILE)
    earlier = read_file(EARLIER_PROFILE)
    at = text.index("\n[decode_attention]\n") + 1
    return text[:at] + section_text(earlier, "vmm") + section_text(earlier, "gemm") + text[at:]


def lines_of(text):
    """The number of the last non-blank line of `text`, counting lines as kvsim does (split at
    newlines only)."""
    lines = text.split("\n")
    return max(i for i, line in enumerate(lines, 1) if line.strip())


class EndMarkerTest(unittest.TestCase):
    """kvsim's end-marker rule, applied by the report's profile reader with kvsim's words."""

    @classmethod
    def setUpClass(cls):
        cls.profile = report_module("inputs.profile")
        cls.marker = cls.profile.END_MARKER
        cls.whole = whole_marked_profile()
        cls.work = tempfile.mkdtemp(prefix="kvsim_report_end_marker_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def write(self, name, text):
        """Writes `text` as profile.txt of a new directory `name` of the work directory; returns
        the file's path."""
        d = os.path.join(self.work, name)
        os.makedirs(d)
        path = os.path.join(d, "profile.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return path

    def load_error(self, name, text):
        """The message of the InputError load_profile raises on `text` (written as `name`)."""
        path = self.write(name, text)
        with self.assertRaises(self.profile.InputError) as e:
            self.profile.load_profile(path)
        return path, str(e.exception)

    def report(self, path):
        """Runs the report script on the directory of `path`."""
        return subprocess.run([sys.executable, REPORT_SCRIPT, os.path.dirname(path)],
                              capture_output=True, text=True, timeout=120)

    def assert_charted(self, path):
        r = self.report(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(os.path.dirname(path), "report.html")))

    def cut_short_message(self, path, version, last_line):
        """kvsim's words (sim/timing/profile.cc, CheckEndMarker) for a file cut short."""
        return (f"{path}: ends without the end marker kvprobe writes last: the file is cut short "
                f"(kvprobe_version {version} ends every profile with the line "
                f"'# end of kvprobe profile'; this file ends at line {last_line})")

    def test_the_marker_and_first_version_are_kvsims(self):
        header = read_file(PROFILE_H)
        for name, value in (("kProfileEndMarker", self.profile.END_MARKER),
                            ("kFirstKvprobeWithEndMarker",
                             self.profile.FIRST_KVPROBE_WITH_END_MARKER)):
            m = re.search(rf'constexpr std::string_view {name} = "([^"]*)";', header)
            self.assertIsNotNone(m, f"{name} not found in {PROFILE_H}")
            self.assertEqual(value, m.group(1), name)
        self.assertEqual(self.profile.FIRST_KVPROBE_WITH_END_MARKER, "0.3.16")

    def test_versions_compare_numerically_as_kvsim_compares_them(self):
        # tests/timing/profile_test.cc's versions, and a few more.
        for later in ("0.3.16", "0.3.17", "0.3.100", "0.4", "0.10.0", "1", "0.3.16-dirty",
                      "0.3.16.1", "1.0.0-rc1", "0.03.016"):
            self.assertTrue(self.profile.kvprobe_writes_end_marker(later), later)
        for earlier in ("0.3.15", "0.3.9", "0.3", "0.1.0", "0.2.99", "", "dev", "v0.3.16",
                        "0.3.1", "0.3.", "0.3.15-16", " 0.3.16", "-1", "0.3.\u0661\u0666"):
            self.assertFalse(self.profile.kvprobe_writes_end_marker(earlier), earlier)

    def test_the_committed_profiles_end_with_the_marker_just_when_their_kvprobe_writes_it(self):
        self.assertTrue(read_file(MARKED_PROFILE).rstrip().endswith(self.marker))
        self.assertIn("kvprobe_version: 0.3.16\n", read_file(MARKED_PROFILE))
        self.assertNotIn(self.marker, read_file(EARLIER_PROFILE))
        self.assertIn("kvprobe_version: 0.3.14\n", read_file(EARLIER_PROFILE))
        self.assertTrue(self.whole.endswith(f"\n\n{self.marker}\n"))

    def test_a_whole_0_3_16_profile_is_charted(self):
        path = self.write("whole", self.whole)
        meta, tables = self.profile.load_profile(path)
        self.assertEqual(meta["kvprobe_version"], "0.3.16")
        self.assertEqual(len(tables["prefill_attention"]),
                         len(section_text(self.whole, "prefill_attention").split("\n")) - 5)
        self.assert_charted(path)

    def test_a_0_3_16_profile_cut_short_is_refused_naming_the_file(self):
        # Cut after its last row (the blank line and the marker gone): every section and row is
        # whole, and only the missing marker tells.
        cut = self.whole[:self.whole.rindex(f"\n{self.marker}")]
        self.assertFalse(cut.rstrip().endswith(self.marker))
        path = self.write("cut_after_last_row", cut)
        last = lines_of(cut)
        self.assertEqual(last, lines_of(self.whole) - 2)
        r = self.report(path)
        self.assertEqual(r.returncode, 2, f"stdout: {r.stdout}\nstderr: {r.stderr}")
        self.assertNotIn("Traceback", r.stderr)
        self.assertEqual(r.stderr, "kvsim_report: error: "
                         + self.cut_short_message(path, "0.3.16", last) + "\n")
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(path), "report.html")))

    def test_a_cut_that_shortens_a_row_or_drops_a_section_is_named_cut_short(self):
        last_row = self.whole.rstrip().split("\n")[-3]  # the marker and a blank line after it
        last_number = last_row.rsplit(",", 1)[1]
        at_row = self.whole.rindex(last_row)
        cuts = {
            # Inside the last number: every field there, the value wrong.
            "in_number": self.whole[:at_row + len(last_row) - len(last_number) // 2],
            # Inside the last row: too few fields, which is an error of its own.
            "in_row": self.whole[:at_row + len(last_row) - len(last_number) - 1],
            # Before the last required section.
            "in_sections": self.whole[:self.whole.index("[prefill_attention]")],
            # Inside the marker itself.
            "in_marker": self.whole[:-4],
            # Inside [meta], just after the version.
            "in_meta": self.whole[:self.whole.index("kvprobe_version: 0.3.16\n") + 24],
        }
        for name, cut in cuts.items():
            with self.subTest(cut=name):
                path, err = self.load_error(name, cut)
                self.assertEqual(err, self.cut_short_message(path, "0.3.16", lines_of(cut)))
        # The short row alone, without the marker rule, is a wrong field count.
        earlier = cuts["in_row"].replace("kvprobe_version: 0.3.16", "kvprobe_version: 0.3.15")
        path, err = self.load_error("in_row_0.3.15", earlier)
        self.assertEqual(err, f"{path}:{lines_of(earlier)}: [prefill_attention] row has 8 "
                         "fields, the header 9")

    def test_a_cut_in_meta_before_the_version_is_named_by_what_is_missing(self):
        # Without kvprobe_version nothing says the file should end with the marker.
        cut = self.whole[:self.whole.index("kvprobe_version")]
        path, err = self.load_error("before_version", cut)
        self.assertNotIn("end marker", err)
        self.assertIn("missing", err)

    def test_only_blanks_after_the_marker_change_nothing(self):
        for name, text in (("no_final_newline", self.whole[:-1]),
                           ("blank_lines", self.whole + "\n  \r\n\t\n"),
                           ("crlf", self.whole.replace("\n", "\r\n")),
                           ("indented_marker", self.whole.replace(f"\n{self.marker}\n",
                                                                  f"\n  {self.marker} \t\n"))):
            with self.subTest(variant=name):
                meta, _ = self.profile.load_profile(self.write(name, text))
                self.assertEqual(meta["kvprobe_version"], "0.3.16")

    def test_lines_after_the_marker_are_named_with_the_markers_line(self):
        # Another file appended, or rows merged in by a kvprobe before 0.3.16: kvsim names the
        # last line and the marker's.
        marker_line = lines_of(self.whole)
        for name, extra, last in (("comment", "# another copy\n", marker_line + 1),
                                  ("row", "\npaged,512,1,16384,16,4,128,3597.3,305.7\n",
                                   marker_line + 2)):
            with self.subTest(after=name):
                path, err = self.load_error(f"after_marker_{name}", self.whole + extra)
                self.assertEqual(err, f"{path}:{last}: lines after the end marker of line "
                                 f"{marker_line} ('# end of kvprobe profile'), which kvprobe "
                                 "writes last: another file appended, or rows merged in by a "
                                 "kvprobe before 0.3.16")

    def test_a_second_marker_is_not_the_first(self):
        # The marker twice, the file ending with it: whole. A second [meta] after the first
        # marker fails at that line; the marker was read before it, so the lines after it are
        # what kvsim names.
        self.profile.load_profile(self.write("two_markers", self.whole + self.marker + "\n"))
        appended = self.whole + read_file(MARKED_PROFILE).split("\n# end")[0] + "\n"
        path, err = self.load_error("appended_copy", appended)
        self.assertEqual(err, f"{path}:{lines_of(appended)}: lines after the end marker of line "
                         f"{lines_of(self.whole)} ('# end of kvprobe profile'), which kvprobe "
                         "writes last: another file appended, or rows merged in by a kvprobe "
                         "before 0.3.16")

    def test_an_error_before_the_marker_is_read_names_the_file_cut_short(self):
        # As kvsim: the marker counts once the reader has reached it; a bad row before it,
        # with more after the marker, leaves the file without the marker at its end.
        bad = self.whole.replace("\n[decode_attention]\n", "\n[decode_attention]\nx\ny\n", 1)
        text = bad + "# another copy\n"
        path, err = self.load_error("bad_row_then_after_marker", text)
        self.assertEqual(err, self.cut_short_message(path, "0.3.16", lines_of(text)))

    def test_an_earlier_kvprobes_profile_without_the_marker_is_charted(self):
        # The committed whole profile of kvprobe 0.3.14, and the 0.3.16 profile cut after its
        # last row with its version set to 0.3.15.
        earlier = self.write("earlier", read_file(EARLIER_PROFILE))
        self.assert_charted(earlier)
        cut = self.whole[:self.whole.rindex(f"\n{self.marker}")]
        as_earlier = self.write("cut_as_0.3.15", cut.replace("kvprobe_version: 0.3.16\n",
                                                             "kvprobe_version: 0.3.15\n", 1))
        self.assert_charted(as_earlier)
        # Without a version at all, nothing asks for the marker either.
        no_version = self.write("no_version", cut.replace("kvprobe_version: 0.3.16\n", "", 1))
        self.profile.load_profile(no_version)


if __name__ == "__main__":
    unittest.main()
