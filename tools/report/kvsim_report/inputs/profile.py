"""kvprobe's profile.txt (tools/kvprobe/PROFILE_FORMAT.md): a [meta] section of `key: value` lines
and [table] sections, each a CSV header then rows; from kvprobe 0.3.16 on, the comment line
END_MARKER last, which tells a whole file from one cut short."""

import math
import re

from ..errors import InputError
from .files import read_text


# The format's names as this reader uses them. They copy sim/timing/profile_schema.h (the one
# schema, which kvprobe writes from), through tools/kvprobe/PROFILE_FORMAT.md:
# tests/report/test_profile_schema.py checks them against that document, which
# tests/timing/profile_schema_test.cc checks against the schema.
META_SECTION = "meta"  # the key: value section; every other section is a table
FORMAT_VERSION_KEY = "format_version"  # the [meta] key of the format version
KVPROBE_VERSION_KEY = "kvprobe_version"  # the [meta] key of the kvprobe that wrote the file

# The line kvprobe writes last in every profile from FIRST_KVPROBE_WITH_END_MARKER on: a comment,
# which earlier readers skip, that tells a whole file from one cut short (a copy interrupted, a
# disk filled). They copy kProfileEndMarker and kFirstKvprobeWithEndMarker of
# sim/timing/profile.h (tests/report/test_profile_schema.py checks them against it), and
# _check_end_marker applies kvsim's rule (sim/timing/profile.cc, CheckEndMarker) with its words.
END_MARKER = "# end of kvprobe profile"
FIRST_KVPROBE_WITH_END_MARKER = "0.3.16"
# What kvsim trims around a line before comparing it with END_MARKER (its TrimField): spaces,
# tabs, the carriage return of CRLF files and vertical tabs.
_LINE_BLANKS = " \t\r\v"

# The table sections, in the order kvprobe writes them. The columns are each table's required
# columns, in order: the ones this reader parses, and rejects a header without. The optional
# columns (written by later kvprobe versions, missing from earlier profiles) are left out, so
# that earlier profiles still load; the report reads none of them.
PROFILE_TABLES = {
    # name: (required, columns, text columns)
    "vmm": (True, ("call", "handle_bytes", "samples", "p10_us", "p50_us", "p90_us", "p99_us"),
            ("call",)),
    "vmm_under_load": (False, ("metric", "value"), ("metric",)),
    "copy": (True, ("bytes", "time_us", "gbps"), ()),
    "gemm": (True, ("model", "layer", "tensor_parallel", "tokens", "m", "n", "k", "time_us",
                    "tflops"), ("model", "layer")),
    # One layer's small kernels per rank (kvprobe 0.3.1 on); read by kvsim, not charted.
    "small_kernels": (False, ("model", "tensor_parallel", "tokens", "time_us"), ("model",)),
    "decode_attention": (True, ("layout", "block_tokens", "batch", "context_tokens", "q_heads",
                                "kv_heads", "head_dim", "time_us", "kv_gbps"), ("layout",)),
    "prefill_attention": (True, ("layout", "block_tokens", "batch", "tokens", "q_heads",
                                 "kv_heads", "head_dim", "time_us", "tflops"), ("layout",)),
    "allreduce": (False, ("gpus", "bytes", "time_us", "algbw_gbps", "busbw_gbps"), ()),
    "vattention": (False, ("overlap", "page_bytes", "batch", "iterations", "mean_iteration_us",
                           "p50_iteration_us", "p99_iteration_us", "mean_exposed_map_us",
                           "max_exposed_map_us", "map_calls"), ()),
    # Whole-model iterations (kvprobe --only step); read for `kvsim validate`, not charted.
    "step": (False, ("model", "tensor_parallel", "layout", "block_tokens", "decode_seqs",
                     "context_tokens", "prefill_tokens", "time_us", "graph"), ("model", "layout")),
}


def load_profile(path):
    """(meta, tables) of a profile.txt: meta {key: value text}; tables {section: [row]}, each row
    {column: value} over the section's columns in PROFILE_TABLES (text columns as strings, the
    others as finite floats) plus "_line", its line number. A profile of a kvprobe that writes
    END_MARKER (kvprobe_writes_end_marker) whose last non-blank line is not END_MARKER is refused
    as cut short, ahead of any other error that the cut can cause (as kvsim refuses it)."""
    text = read_text(path)
    meta = {}
    tables = {}
    seen = set()
    # The line number of the first END_MARKER line read so far (0: none), as kvsim counts lines:
    # split at newlines only, so that the numbers in messages are kvsim's.
    marker = [0]
    try:
        _read_profile(path, text, meta, tables, seen, marker)
        _check_profile(path, seen, meta, tables)
    except InputError:
        # A file cut short is named as such, not by the short row or missing section it shows
        # (kvsim's precedence), from the [meta] read up to the error.
        _check_end_marker(path, text, meta, marker[0])
        raise
    _check_end_marker(path, text, meta, marker[0])
    return meta, tables


def _read_profile(path, text, meta, tables, seen, marker):
    """Reads `text` line by line into meta, tables and seen (the sections met) as load_profile
    returns them, recording in marker[0] the first END_MARKER line; raises InputError on the
    first bad line."""
    section = None
    header = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        if not marker[0] and raw.strip(_LINE_BLANKS) == END_MARKER:
            marker[0] = lineno
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[([a-z_][a-z0-9_]*)\]", line)
        if m:
            section = m.group(1)
            if section != META_SECTION and section not in PROFILE_TABLES:
                raise InputError(f"{path}:{lineno}: unknown section [{section}]")
            if section in seen:
                raise InputError(f"{path}:{lineno}: duplicate section [{section}]")
            seen.add(section)
            header = None
            if section != META_SECTION:
                tables[section] = []
            continue
        if section is None:
            raise InputError(f"{path}:{lineno}: text before the first [section]")
        if section == META_SECTION:
            if ":" not in line:
                raise InputError(f"{path}:{lineno}: [{META_SECTION}] line is not 'key: value'")
            k, v = line.split(":", 1)
            meta[k.strip()] = v.strip()
            continue
        fields = [f.strip() for f in line.split(",")]
        if header is None:
            header = fields
            _check_profile_header(path, lineno, section, header)
            continue
        tables[section].append(_profile_row(path, lineno, section, header, fields))


def _check_profile_header(path, lineno, section, header):
    """Checks that a section's header holds every column PROFILE_TABLES needs of it."""
    need = PROFILE_TABLES[section][1]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"{path}:{lineno}: [{section}] header lacks column(s) "
                         f"{', '.join(missing)}")


def _profile_row(path, lineno, section, header, fields):
    """One row of a table section as load_profile returns it: {column: value, "_line": lineno}."""
    if len(fields) != len(header):
        raise InputError(f"{path}:{lineno}: [{section}] row has {len(fields)} fields, the "
                         f"header {len(header)}")
    _, need, text_cols = PROFILE_TABLES[section]
    row = {}
    for c in need:
        v = fields[header.index(c)]
        if c in text_cols:
            if not v:
                raise InputError(f"{path}:{lineno}: [{section}] column {c} is empty")
            row[c] = v
        else:
            try:
                x = float(v)
                if not math.isfinite(x):
                    raise ValueError
            except ValueError:
                raise InputError(f"{path}:{lineno}: [{section}] column {c}: {v[:40]!r} is "
                                 "not a number")
            row[c] = x
    row["_line"] = lineno
    return row


def _check_profile(path, seen, meta, tables):
    """Checks a whole profile: a [meta] section, every required table present and not empty,
    format version 1."""
    if META_SECTION not in seen:
        raise InputError(f"{path}: no [{META_SECTION}] section (is this a kvprobe profile.txt?)")
    for name, (required, _, _) in PROFILE_TABLES.items():
        if required and name not in tables:
            raise InputError(f"{path}: required section [{name}] is missing")
        if required and not tables[name]:
            raise InputError(f"{path}: section [{name}] has no rows")
    if meta.get(FORMAT_VERSION_KEY, "1") != "1":
        raise InputError(f"{path}: {FORMAT_VERSION_KEY} {meta.get(FORMAT_VERSION_KEY)!r}; this "
                         "report reads version 1")


def kvprobe_writes_end_marker(version):
    """Whether the kvprobe of [meta] kvprobe_version `version` ("0.3.16", "1.0.0-rc1": its leading
    dot-separated numbers count, compared number by number) is FIRST_KVPROBE_WITH_END_MARKER or
    later; False for a version that starts with no number (kvsim's KvprobeWritesEndMarker)."""
    have = _version_numbers(version)
    return bool(have) and not have < _version_numbers(FIRST_KVPROBE_WITH_END_MARKER)


def _version_numbers(version):
    """The leading dot-separated numbers of a version, [0, 3, 16] of "0.3.16-dirty", read as
    kvsim reads them: ASCII digits, each below 2**64, up to the first number not followed by a
    dot."""
    out = []
    rest = version
    while True:
        m = re.match(r"[0-9]+", rest)
        if not m or int(m.group()) >= 2 ** 64:
            return out
        out.append(int(m.group()))
        rest = rest[m.end():]
        if not rest.startswith("."):
            return out
        rest = rest[1:]


def _check_end_marker(path, text, meta, marker_line):
    """Fails when `meta` (the [meta] read so far) names a kvprobe that ends its profiles with
    END_MARKER and the last non-blank line of `text` is not it: "lines after the end marker"
    when END_MARKER was read before (at `marker_line`), else "the file is cut short". The words
    are kvsim's (sim/timing/profile.cc, CheckEndMarker)."""
    version = meta.get(KVPROBE_VERSION_KEY)
    if version is None or not kvprobe_writes_end_marker(version):
        return
    last, last_no = "", 0
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(_LINE_BLANKS)
        if line:
            last, last_no = line, lineno
    if last == END_MARKER:
        return
    if marker_line > 0:
        raise InputError(f"{path}:{last_no}: lines after the end marker of line {marker_line} "
                         f"('{END_MARKER}'), which kvprobe writes last: another file appended, or "
                         f"rows merged in by a kvprobe before {FIRST_KVPROBE_WITH_END_MARKER}")
    raise InputError(f"{path}: ends without the end marker kvprobe writes last: the file is cut "
                     f"short ({KVPROBE_VERSION_KEY} {version} ends every profile with the line "
                     f"'{END_MARKER}'; this file ends at line {last_no})")
