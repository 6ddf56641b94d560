"""kvprobe's profile.txt (tools/kvprobe/PROFILE_FORMAT.md): a [meta] section of `key: value` lines
and [table] sections, each a CSV header then rows."""

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
    others as finite floats) plus "_line", its line number."""
    text = read_text(path)
    meta = {}
    tables = {}
    section = None
    header = None
    seen = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
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
    _check_profile(path, seen, meta, tables)
    return meta, tables


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
