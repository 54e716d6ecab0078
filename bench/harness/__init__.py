"""The benchmark harness behind bench/run: servers, datasets, tools, measurement, report."""
