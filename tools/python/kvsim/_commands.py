"""Running the kvsim executable: argument lists, errors, output directories."""

import math
import numbers
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ._binary import find_binary
from .results import Compare, Plan, Run, Sweep

__all__ = ["KvsimError", "KvsimInputError", "KvsimInternalError", "yaml_value",
           "run", "compare", "sweep", "plan"]

EXIT_INPUT_ERROR = 2
EXIT_INTERNAL_ERROR = 3


class KvsimError(Exception):
    """kvsim exited with a non-zero status.

    Attributes: ``returncode`` (the exit status; negative: killed by that signal),
    ``stderr`` (kvsim's messages, each ``kvsim: error: FILE:LINE: key.path: what``),
    ``stdout``, ``command`` (the argument list that was run). Status 2 is an error in the
    inputs (config, trace, card, --set key or value, output directory) and raises the
    subclass KvsimInputError; 3 is an internal error of kvsim (KvsimInternalError).
    """

    def __init__(self, returncode, stderr, command, stdout=""):
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        self.command = list(command)
        if returncode == EXIT_INPUT_ERROR:
            meaning = "input error"
        elif returncode == EXIT_INTERNAL_ERROR:
            meaning = "internal error"
        elif returncode < 0:
            meaning = f"killed by signal {-returncode}"
        else:
            meaning = "failed"
        what = " ".join(str(a) for a in self.command[1:3])
        message = stderr.strip() or stdout.strip() or "(no message)"
        super().__init__(f"kvsim {what}: exit status {returncode} ({meaning}): {message}")

    def __reduce__(self):  # picklable, e.g. across multiprocessing
        return (type(self), (self.returncode, self.stderr, self.command, self.stdout))

    @property
    def exit_status(self):
        """The same as ``returncode``."""
        return self.returncode


class KvsimInputError(KvsimError):
    """Exit status 2: kvsim refused an input (its message names the file, line and key)."""


class KvsimInternalError(KvsimError):
    """Exit status 3: kvsim hit an internal error (a bug in kvsim, not in the inputs)."""


def _error_for(returncode, stderr, command, stdout):
    cls = {EXIT_INPUT_ERROR: KvsimInputError,
           EXIT_INTERNAL_ERROR: KvsimInternalError}.get(returncode, KvsimError)
    return cls(returncode, stderr, command, stdout)


def _number_text(value):
    if isinstance(value, numbers.Integral):
        return str(int(value))
    x = float(value)
    if math.isnan(x):
        return ".nan"
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    return repr(x)


def yaml_value(value, _nested=False):
    """The YAML text passed to ``--set key=TEXT`` for a Python value.

    bool -> ``true``/``false``; None -> ``null``; integers -> decimal digits; other real
    numbers -> the shortest text that reads back as the same float (NaN and infinities as
    ``.nan``/``.inf``); os.PathLike -> its path; list/tuple -> a flow sequence ``[a, b]``;
    dict -> a flow mapping ``{k: v}``. A str is passed as it is (so it may itself be YAML,
    e.g. ``"2MiB"`` or ``"[1, 2]"``); a str inside a list or dict is double-quoted.
    """
    if isinstance(value, bool) or (type(value).__module__ == "numpy"
                                   and type(value).__name__ in ("bool_", "bool")):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, numbers.Real):
        return _number_text(value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        if not _nested:
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v, True) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(str(k), True)}: {yaml_value(v, True)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as a YAML value: {value!r}")


def _set_arguments(overrides):
    if overrides is None:
        return []
    if not isinstance(overrides, dict):
        raise TypeError("set= takes a dict of dotted keys to values, e.g. "
                        "{'workload.arrival.rate_qps': 8}")
    arguments = []
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or "=" in key or key != key.strip():
            raise ValueError(f"set= key {key!r}: a dotted key path such as "
                             "'kv_cache.block_tokens', without '='")
        arguments += ["--set", f"{key}={yaml_value(value)}"]
    return arguments


def _jobs_arguments(jobs):
    if jobs is None:
        return []
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 0:
        raise ValueError(f"jobs= must be an integer >= 0 (0: all cores), not {jobs!r}")
    return ["--jobs", str(int(jobs))]


def _rates_text(rates):
    if isinstance(rates, (str, bytes)) or not hasattr(rates, "__iter__"):
        raise TypeError("rates must be a list of requests/s values, e.g. [1, 2, 4]")
    values = list(rates)
    if not values:
        raise ValueError("rates must hold at least one requests/s value")
    for r in values:
        if isinstance(r, bool) or not isinstance(r, numbers.Real):
            raise TypeError(f"rate {r!r} is not a number (requests/s)")
    return ",".join(_number_text(r) for r in values)


def _execute(command, operand, out, force, binary, extra, make):
    """Runs ``kvsim COMMAND OPERAND --out DIR -q EXTRA [--force]`` and returns make(DIR).
    out=None: DIR is ``<fresh temporary directory>/<command>``, kept after success and
    removed after a failure."""
    argv0 = str(find_binary(binary))
    temporary = None
    if out is None:
        temporary = Path(tempfile.mkdtemp(prefix=f"kvsim-{command}-"))
        out_dir = temporary / command
    else:
        out_dir = Path(os.path.abspath(Path(os.fspath(out)).expanduser()))
    argv = [argv0, command, os.fspath(operand), "--out", str(out_dir), "-q", *extra]
    if force:
        argv.append("--force")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, encoding="utf-8", errors="replace",
                              check=False)
        if done.returncode != 0:
            raise _error_for(done.returncode, done.stderr, argv, done.stdout)
        result = make(out_dir)
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    result.command = argv
    result.stderr = done.stderr
    return result


def run(config, *, out=None, set=None, force=False, binary=None):
    """Simulates one scenario: ``kvsim run CONFIG --out DIR -q [--set k=v]... [--force]``.

    config: path of a scenario YAML (relative paths inside it resolve against its folder).
    out: output directory; None: ``<new temporary directory>/run`` (tempfile.mkdtemp),
      kept after success (``result.dir``; delete it when done) and removed after a
      failure. kvsim accepts an absent or empty directory, or one holding an earlier kvsim
      output when force=True.
    set: dict of dotted key paths to values, e.g. ``{"workload.max_requests": 50,
      "kv_cache.type": "vattention", "output.requests_csv": False}``; values are written
      with ``yaml_value`` (bools as true/false). An unknown key is an input error.
    force: pass ``--force`` (replace the outputs of an earlier run in ``out``).
    binary: the kvsim executable (see ``find_binary``).

    Returns a Run (``result.command`` is the argument list that ran). Raises KvsimError
    (KvsimInputError for exit status 2, KvsimInternalError for 3) when kvsim fails, and
    BinaryNotFoundError when there is no kvsim to run.
    """
    return _execute("run", config, out, force, binary, _set_arguments(set), Run)


def compare(config, *, out=None, set=None, force=False, jobs=None, binary=None):
    """Runs the scenario once per entry of its ``compare`` list (default: static, paged,
    vattention_2MiB, vattention_64KiB): ``kvsim compare CONFIG --out DIR -q ...``.

    Arguments as for ``run``; jobs: simulations in parallel (``--jobs``; None: kvsim's
    default, all cores). Returns a Compare; raises as ``run`` does.
    """
    return _execute("compare", config, out, force, binary,
                    _set_arguments(set) + _jobs_arguments(jobs), Compare)


def sweep(config, rates, *, out=None, set=None, force=False, jobs=None, binary=None):
    """Runs the scenario at each offered load of ``rates`` (requests/s), once per compare
    entry: ``kvsim sweep CONFIG --rates 1,2,4 --out DIR -q ...``.

    rates: a non-empty list of numbers, each in (0, 1e9], none twice (kvsim checks).
    Other arguments as for ``compare``. Returns a Sweep; raises as ``run`` does.
    """
    extra = ["--rates", _rates_text(rates)] + _set_arguments(set) + _jobs_arguments(jobs)
    return _execute("sweep", config, out, force, binary, extra, Sweep)


def plan(plan_file, *, out=None, force=False, jobs=None, binary=None):
    """Sizes a GPU fleet under latency SLOs: ``kvsim plan PLAN --out DIR -q ...``.

    plan_file: path of a plan YAML (overrides of its scenario go under its ``set:``).
    jobs: candidates in parallel (None or 0: the plan's ``jobs``, else all cores).
    Other arguments as for ``run``. Returns a Plan; raises as ``run`` does.
    """
    return _execute("plan", plan_file, out, force, binary, _jobs_arguments(jobs), Plan)
