"""The series the run charts draw, computed from a run's timeseries.csv (summed over replicas as
step functions, smoothed or binned for drawing) and requests.csv (per-request latencies)."""

import bisect

from .inputs.run_dir import is_interval_layout


def _total_over_replicas(times, replicas, values, durations=None):
    """Sum over replicas of each replica's latest value, as a step function (sorted times).

    With `durations`, a replica's value drops to 0 at the end of its iteration unless its next
    iteration starts then (for quantities that exist only while an iteration runs)."""
    events = [(times[i], 1, replicas[i], values[i]) for i in range(len(times))]
    if durations is not None:
        events += [(times[i] + durations[i], 0, replicas[i], 0) for i in range(len(times))]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    last = {}
    total = 0.0
    ts, ys = [], []
    for t, _, r, v in events:
        total += v - last.get(r, 0.0)
        last[r] = v
        if ts and ts[-1] == t:
            ys[-1] = total
        else:
            ts.append(t)
            ys.append(total)
    return ts, ys


def _moving_mean(ts, ys, points=600, windows=60):
    """Time-weighted mean of a step function over a sliding window of span/windows seconds."""
    if len(ts) < 2 or ts[-1] <= ts[0]:
        return list(ts), list(ys), 0.0
    t0, t1 = ts[0], ts[-1]
    width = (t1 - t0) / windows
    cum = [0.0]
    for i in range(1, len(ts)):
        cum.append(cum[-1] + ys[i - 1] * (ts[i] - ts[i - 1]))

    def integral(x):
        x = min(max(x, t0), t1)
        k = bisect.bisect_right(ts, x) - 1
        return cum[k] + ys[k] * (x - ts[k])

    gx, gy = [], []
    for j in range(points + 1):
        x = t0 + (t1 - t0) * j / points
        a, b = max(t0, x - width / 2), min(t1, x + width / 2)
        gx.append(x)
        gy.append((integral(b) - integral(a)) / (b - a) if b > a else ys[0])
    return gx, gy, width


def _bin_max(ts, ys_list, bins=2000):
    """At most `bins` points per series: the maximum of each time bin (an upper envelope)."""
    if len(ts) <= 2 * bins:
        return ts, ys_list, None
    t0, t1 = ts[0], ts[-1]
    width = (t1 - t0) / bins or 1.0
    out_t, out = [], [[] for _ in ys_list]
    current = None
    for i, t in enumerate(ts):
        b = min(int((t - t0) / width), bins - 1)
        if b != current:
            current = b
            out_t.append(t0 + b * width)
            for k, ys in enumerate(ys_list):
                out[k].append(ys[i])
        else:
            for k, ys in enumerate(ys_list):
                if ys[i] > out[k][-1]:
                    out[k][-1] = ys[i]
    return out_t, out, width


def run_series(run):
    """(times, allocated, live, cached, (times, running)) of a run's timeseries, each summed over
    replicas as a step function; allocated, live and cached hold their last value to the end of
    the last iteration (or interval). Cached: the KV bytes kept for reuse, held for no running
    request (cached_bytes; None when every row's is 0, so that the chart draws no line for it)."""
    ts = run["timeseries"]
    if is_interval_layout(ts):
        return _interval_series(ts)
    times, reps = ts["time_s"], ts["replica"]
    t, alloc = _total_over_replicas(times, reps, ts["allocated_bytes"])
    _, live = _total_over_replicas(times, reps, ts["live_bytes"])
    cached = _total_over_replicas(times, reps, ts["cached_bytes"])[1] \
        if any(ts["cached_bytes"]) else None
    running = _total_over_replicas(times, reps, ts["running"], ts["duration_s"])
    end = max((a + d for a, d in zip(times, ts["duration_s"])), default=0.0)
    t, (alloc, live, cached) = _hold_to_end(t, end, (alloc, live, cached))
    return t, alloc, live, cached, running


def _hold_to_end(t, end, series):
    """(times, series) with a last step at `end` where `end` is after the last time, each series
    (a list of values at `t`, or None, kept as None) holding its last value there."""
    if not t or end <= t[-1]:
        return t, list(series)
    return t + [end], [None if ys is None else ys + [ys[-1]] for ys in series]


def _interval_series(ts):
    """run_series of the interval layout. Allocated, live and cached: each replica's
    mean_allocated_bytes, mean_live_bytes and mean_cached_bytes, held until its next row (cached
    None when every row's is 0). Running: each row's time-averaged batch,
    mean_running * min(1, busy_s / interval_s), held over [time_s, time_s + interval_s), then 0
    until the replica's next row. An interval's end within interval_s / 1e6 of a row's time_s is
    taken as that time_s, so that float rounding adds no sliver steps."""
    times, reps, widths = ts["time_s"], ts["replica"], ts["interval_s"]
    starts = sorted(set(times))

    def snap(x, tol):
        k = bisect.bisect_left(starts, x - tol)
        return starts[k] if k < len(starts) and starts[k] <= x + tol else x

    ends = [snap(t + w, w * 1e-6) for t, w in zip(times, widths)]
    after = [None] * len(times)  # the time_s of the replica's next row
    following = {}
    for i in reversed(range(len(times))):
        after[i] = following.get(reps[i])
        following[reps[i]] = times[i]
    rt, rr, rv = [], [], []
    for i, (m, busy, w) in enumerate(zip(ts["mean_running"], ts["busy_s"], widths)):
        rt.append(times[i])
        rr.append(reps[i])
        rv.append(m * min(1.0, busy / w))
        if after[i] is None or after[i] > ends[i] + w * 1e-6:
            rt.append(ends[i])
            rr.append(reps[i])
            rv.append(0.0)
    t, alloc = _total_over_replicas(times, reps, ts["mean_allocated_bytes"])
    _, live = _total_over_replicas(times, reps, ts["mean_live_bytes"])
    cached = _total_over_replicas(times, reps, ts["mean_cached_bytes"])[1] \
        if any(ts["mean_cached_bytes"]) else None
    # held to the end of the last interval
    t, (alloc, live, cached) = _hold_to_end(t, max(ends, default=0.0), (alloc, live, cached))
    return t, alloc, live, cached, _total_over_replicas(rt, rr, rv)


def request_latencies(run):
    """(TTFT s, TPOT ms, E2E s) lists of a run's requests.csv: TTFT and E2E of every request,
    TPOT (mean gap between tokens) of those with at least two output tokens."""
    r = run["requests"]
    ttft = [f - a for a, f in zip(r["arrival_s"], r["first_token_s"])]
    e2e = [f - a for a, f in zip(r["arrival_s"], r["finish_s"])]
    tbt = [(fin - ft) / (n - 1) * 1e3
           for ft, fin, n in zip(r["first_token_s"], r["finish_s"], r["output_tokens"]) if n >= 2]
    return ttft, tbt, e2e
