"""The command line: which kind of directory DIR is, reading and checking every input, drawing,
writing DIR/report.html, DIR/report.md and DIR/report_files/*.png, and the exit status."""

import os
import sys

from .document import render_html, render_markdown
from .errors import InputError, OutputError
from .inputs.manifest import verify_manifests
from .inputs.plan import load_plan_json
from .inputs.plan_scenarios import is_scenarios_plan
from .reports.calibration import report_calibration
from .reports.plan import report_plan
from .reports.plan_scenarios import report_plan_scenarios
from .reports.run import report_compare, report_run
from .reports.sweep import report_sweep

PROG = "kvsim_report"


def report_plan_dir(d):
    """(doc, build) of plan directory `d`: of a plan of several scenarios when its plan.json
    lists them, else of a plan of one."""
    root = load_plan_json(d)
    if is_scenarios_plan(root):
        return report_plan_scenarios(d, root)
    return report_plan(d, root)


# The kinds of directory, in the order they are told apart: the first whose files DIR holds.
KINDS = ((("plan.json",), report_plan_dir),
         (("sweep.json",), report_sweep),
         (("compare.json",), report_compare),
         (("summary.json", "requests.csv", "timeseries.csv"), report_run),
         (("profile.txt",), report_calibration))


def detect(d):
    """The report_* function of directory `d`'s kind (KINDS)."""
    for names, report in KINDS:
        if any(os.path.lexists(os.path.join(d, name)) for name in names):
            return report
    raise InputError(f"{d}: holds none of plan.json, sweep.json, compare.json, summary.json "
                     "(with requests.csv and timeseries.csv) or profile.txt")


def write_outputs(d, doc):
    """Writes the charts (removing an earlier report's), report.md and report.html into `d`."""
    files_dir = os.path.join(d, "report_files")
    try:
        os.makedirs(files_dir, exist_ok=True)
        for name in sorted(os.listdir(files_dir)):  # charts of an earlier report
            if name.endswith(".png"):
                os.remove(os.path.join(files_dir, name))
        for name, png in doc.charts:
            with open(os.path.join(files_dir, name), "wb") as f:
                f.write(png)
        for name, text in (("report.md", render_markdown(doc)),
                           ("report.html", render_html(doc))):
            tmp = os.path.join(d, name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            os.replace(tmp, os.path.join(d, name))
    except OSError as e:
        raise OutputError(f"{e.filename or d}: cannot write: {e.strerror or e}")


def main(argv):
    """Reports the directory argv[1]; returns the exit status (0 done, 2 bad input or usage, 1
    outputs not written)."""
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(f"usage: {os.path.basename(argv[0])} DIR\n"
                         "  writes DIR/report.html, DIR/report.md and DIR/report_files/*.png from "
                         "the kvsim run, compare, sweep, plan or kvprobe calibration outputs in "
                         "DIR\n")
        return 0 if len(argv) == 2 else 2
    d = argv[1]
    try:
        if not os.path.isdir(d):
            raise InputError(f"{d}: no such directory")
        make = detect(d)
        verify_manifests(d)
        try:
            doc, build = make(d)  # reads and checks every input
            build()  # draws
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError,
                OverflowError, AttributeError, RecursionError) as e:
            raise InputError(f"{d}: unexpected content in the inputs ({type(e).__name__}: {e})")
        write_outputs(d, doc)
    except InputError as e:
        sys.stderr.write(f"{PROG}: error: {_one_line(str(e))}\n")
        return 2
    except OutputError as e:
        sys.stderr.write(f"{PROG}: error: {_one_line(str(e))}\n")
        return 1
    except MemoryError:
        sys.stderr.write(f"{PROG}: error: {d}: out of memory reading the inputs\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        sys.stderr.write(f"{PROG}: error: {d}: {type(e).__name__}: {_one_line(str(e))}\n")
        return 1
    print(f"wrote {os.path.join(d, 'report.html')}, {os.path.join(d, 'report.md')} and "
          f"{len(doc.charts)} chart(s) in {os.path.join(d, 'report_files')}/")
    return 0


def _one_line(text):
    return " ".join(str(text).split())
