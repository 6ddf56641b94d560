"""manifest.json, which kvsim writes last in each output directory: every file it lists, with its
size and CRC-32."""

import os
import zlib

from ..errors import InputError
from .files import Node, load_json


# kvsim writes manifest.json last in every output directory since the version that brought it
# in; no output records a format version, and every kvsim since reports itself as 0.1.0. Fields
# added after manifests came tell outputs of a kvsim that writes them: the kvsim_version of
# sweep.json and plan.json, and the load object of summary.json (also in each entry of
# compare.json and sweep.json). An output without them may be of an older kvsim.


def version_mark(root):
    """What in JSON object `root` (a Node of sweep.json or plan.json) says a kvsim that writes
    manifests wrote it: 'kvsim_version X', or None when it records no version."""
    if not root.has("kvsim_version"):
        return None
    return f"kvsim_version {root['kvsim_version'].str()}"


def summary_mark(summary):
    """What in a summary (read_summary's dict) says a kvsim that writes manifests wrote it: 'its
    load object', or None when it has none."""
    return "its load object" if summary["load"] is not None else None


def require_manifest(d, source, mark):
    """Refuses directory `d` without a manifest.json when `mark` (version_mark, summary_mark) is
    not None: `source`, the file holding the mark, was written by a kvsim that writes one, so the
    directory's files were changed, or copied without it. A directory whose files carry no mark
    is taken as it is (outputs of an older kvsim)."""
    if mark is None or os.path.isfile(os.path.join(d, "manifest.json")):
        return
    raise InputError(
        f"{d}: no manifest.json, though {source} ({mark}) was written by a kvsim that writes "
        "one last in every output directory: its files were changed, or copied without it")


def manifest_names(d):
    """The file names DIR/manifest.json lists (the files kvsim wrote there), or None when the
    directory has no manifest (outputs of an older kvsim, or files copied by hand: the readers
    refuse the latter through require_manifest)."""
    path = os.path.join(d, "manifest.json")
    if not os.path.isfile(path):
        return None
    manifest = Node(load_json(path), path)
    return {entry["name"].str() for entry in manifest["files"].items()}


def verify_manifests(root):
    """Checks every manifest.json under `root` (kvsim writes one last in each output
    directory): each file it lists must exist with the listed size and CRC-32. A
    directory without one is passed over here; the readers refuse it where its files say a
    kvsim that writes manifests wrote them (require_manifest)."""
    for d, _, files in os.walk(root):
        if "manifest.json" not in files or os.path.basename(d) == "report_files":
            continue
        path = os.path.join(d, "manifest.json")
        manifest = Node(load_json(path), path)
        for entry in manifest["files"].items():
            name = entry["name"].str()
            if not name or "/" in name or name in (".", ".."):
                entry["name"]._fail(f"not a file name: {name!r}")
            target = os.path.join(d, name)
            want_bytes = entry["bytes"].nonneg()
            want_crc = entry["crc32"].str()
            if not os.path.isfile(target):
                raise InputError(f"{target}: missing, though {path} lists it")
            crc = 0
            size = 0
            with open(target, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    crc = zlib.crc32(chunk, crc)
                    size += len(chunk)
            if size != want_bytes or f"{crc:08x}" != want_crc:
                raise InputError(
                    f"{target}: {size} bytes, CRC-32 {crc:08x}, but {path} lists {want_bytes:g} "
                    f"bytes, {want_crc}: changed or cut short after kvsim wrote it")
