"""One module per kind of directory: run and compare, sweep, plan, calibration (a kvprobe
profile). Each report_* function reads and checks every input, then returns (doc, build): build()
draws the charts and fills the document."""
