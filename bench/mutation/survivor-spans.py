#!/usr/bin/env python3
"""Prints one Stryker --mutate pattern per survivor (or uncovered mutant) of a json report: the file glob and the
mutant's character span, so a re-run (bench/mutation.sh <area> --survivors) tests only what survived last time.

   python3 bench/mutation/survivor-spans.py artifacts/mutation/<area>/reports/mutation-report.json
"""
import json
import sys

report = json.load(open(sys.argv[1]))
for name, f in sorted(report["files"].items()):
    lines = f["source"].split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    spans = set()
    for m in f["mutants"]:
        if m["status"] not in ("Survived", "NoCoverage"):
            continue
        s, e = m["location"]["start"], m["location"]["end"]
        spans.add((starts[s["line"] - 1] + s["column"] - 1, starts[e["line"] - 1] + e["column"] - 1))
    if spans:
        print("**/" + name.split("/src/ClusterSync.Core/")[-1] + "".join(f"{{{a}..{b}}}" for a, b in sorted(spans)))
