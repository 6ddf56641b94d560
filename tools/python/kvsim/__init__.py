"""Run kvsim from Python and read its outputs as pandas DataFrames.

    import kvsim
    r = kvsim.run("configs/quickstart.yaml", set={"workload.max_requests": 500})
    r.summary["ttft_s"]["p99"]          # seconds
    r.requests                          # DataFrame of requests.csv
    c = kvsim.compare("configs/quickstart.yaml")
    c.summaries[["ttft_s.p99", "kv.peak_allocated_bytes"]]   # one row per label

Functions (each runs the kvsim executable and waits for it):

- ``run(config, *, out, set, force, binary)`` -> Run
- ``compare(config, *, out, set, force, jobs, binary)`` -> Compare
- ``sweep(config, rates, *, out, set, force, jobs, binary)`` -> Sweep
- ``plan(plan_file, *, out, force, jobs, binary)`` -> Plan
- ``load(dir)`` -> Run, Compare, Sweep or Plan, from an existing output directory
- ``find_binary(binary=None)`` -> the kvsim executable these use

Units are those of kvsim's column and key names: ``_s`` seconds, ``_bytes`` bytes,
``_tokens`` tokens, ``_qps`` requests per second; ``kv.*`` figures are per GPU. kvsim writes
JSON ``null`` for a number that has no value (a latency statistic over no requests); this
module reads every such null as NaN, never as 0.

Errors: kvsim's non-zero exit raises KvsimError with ``returncode`` and ``stderr``
(KvsimInputError for status 2, an error in the inputs; KvsimInternalError for 3);
BinaryNotFoundError when no kvsim is found; OutputError for a directory that is not a
kvsim output. Requires Python 3.8+ and pandas (Debian: python3-pandas).
"""

from ._binary import BinaryNotFoundError, find_binary
from ._commands import (KvsimError, KvsimInputError, KvsimInternalError, compare, plan, run,
                        sweep, yaml_value)
from .results import Compare, OutputError, Plan, Run, Sweep, flatten, load

__all__ = [
    "BinaryNotFoundError", "Compare", "KvsimError", "KvsimInputError", "KvsimInternalError",
    "OutputError", "Plan", "Run", "Sweep", "compare", "find_binary", "flatten", "load",
    "plan", "run", "sweep", "yaml_value",
]
