#!/usr/bin/python3
"""Turn a kvsim output directory into DIR/report.html, DIR/report.md and DIR/report_files/*.png.

Usage: /usr/bin/python3 tools/report/kvsim_report.py DIR

DIR is a `kvsim run`, `compare`, `sweep` or `plan` output directory, or a kvprobe profile folder
(profile.txt). The report is made by the kvsim_report package beside this script
(kvsim_report/__init__.py describes what it reads and writes); this script puts its own directory
first on sys.path, so that the package is found from any working directory, in the source tree
and under an install (PREFIX/share/kvsim/tools/report), and runs the package's main.

Exit status: 0 on success; 2 for bad input (a missing or malformed file, named with its line
where there is one) or bad usage; 1 when the outputs cannot be written.
"""

import os
import sys


def run(argv):
    """The package's main on `argv`; returns its exit status."""
    here = os.path.dirname(os.path.realpath(__file__))
    if sys.path[:1] != [here]:
        sys.path.insert(0, here)
    sys.dont_write_bytecode = True  # no __pycache__ beside the script, as when it was one file
    from kvsim_report.cli import main
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv))
