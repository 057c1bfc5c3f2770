#!/usr/bin/env python3
"""Summarises a Stryker.NET json report: per file killed/survived/no coverage/timeout and score, then each survivor.

   python3 bench/mutation/summary.py artifacts/mutation/<area>/reports/mutation-report.json [--all]
"""
import json
import sys

path = sys.argv[1]
show_all = "--all" in sys.argv
report = json.load(open(path))
tot = {"Killed": 0, "Survived": 0, "NoCoverage": 0, "Timeout": 0}
rows = []
for name, f in sorted(report["files"].items()):
    c = {}
    for m in f["mutants"]:
        c[m["status"]] = c.get(m["status"], 0) + 1
    if not any(c.get(s) for s in tot):
        continue
    for s in tot:
        tot[s] += c.get(s, 0)
    rows.append((name, c))
    src = f["source"].split("\n")
    for m in sorted(f["mutants"], key=lambda m: m["location"]["start"]["line"]):
        if m["status"] in ("Survived", "NoCoverage") or (show_all and m["status"] not in ("Killed", "Ignored", "CompileError")):
            line = m["location"]["start"]["line"]
            print(f"{m['status']:10} {name.split('/')[-1]}:{line}:{m['location']['start']['column']} [{m['mutatorName']}] id={m['id']}")
            print(f"           src: {src[line - 1].strip()[:150]}")
            print(f"           ->   {m.get('replacement', '')[:150]}")
print()
for name, c in rows:
    k, s, n, t = (c.get(x, 0) for x in ("Killed", "Survived", "NoCoverage", "Timeout"))
    den = k + s + n + t
    print(f"{name.split('ClusterSync.Core/')[-1]:45} killed {k:4} survived {s:3} no-coverage {n:3} timeout {t:3}  score {100.0 * (k + t) / den if den else 0:6.2f} %")
k, s, n, t = (tot[x] for x in ("Killed", "Survived", "NoCoverage", "Timeout"))
den = k + s + n + t
print(f"{'TOTAL':45} killed {k:4} survived {s:3} no-coverage {n:3} timeout {t:3}  score {100.0 * (k + t) / den if den else 0:6.2f} %")
