"""Reading kvsim's outputs (summary.json, compare.json, sweep.json, plan.json and plan.csv,
requests.csv, timeseries.csv, manifest.json) and kvprobe's profile.txt. Every reader checks what
it reads and raises InputError naming the file, the line or the key path of a bad value."""
