"""wrk scripts of the benchmark harness (`gmsd bench`); data files, no code."""
