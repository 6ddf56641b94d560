"""manifest.json, which kvsim writes last in each output directory: every file it lists, with its
size and CRC-32."""

import os
import zlib

from ..errors import InputError
from .files import Node, load_json


def manifest_names(d):
    """The file names DIR/manifest.json lists (the files kvsim wrote there), or None when the
    directory has no manifest (outputs of an older kvsim, or files copied by hand)."""
    path = os.path.join(d, "manifest.json")
    if not os.path.isfile(path):
        return None
    manifest = Node(load_json(path), path)
    return {entry["name"].str() for entry in manifest["files"].items()}


def verify_manifests(root):
    """Checks every manifest.json under `root` (kvsim writes one last in each output
    directory): each file it lists must exist with the listed size and CRC-32. A
    directory without one is taken as it is (outputs of an older kvsim)."""
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
