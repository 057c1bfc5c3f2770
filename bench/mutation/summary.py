#!/usr/bin/env python3
"""Summarises Stryker.NET json reports: per file killed/survived/no coverage/timeout/equivalent and score, then each
mutant left alive.

   python3 bench/mutation/summary.py REPORT.json [--rerun RERUN.json ...] [--equivalent bench/mutation/equivalent-mutants.tsv] [--all]

--rerun overlays the statuses of a later run over the same source (bench/mutation.sh <area> --survivors re-tests only
the survivors); --equivalent names the equivalent mutants (file, line, mutator, replacement, why), which are
counted apart and left out of the score. Score = (killed + timeout) / (killed + timeout + survived + no coverage).
"""
import argparse
import csv
import json

ap = argparse.ArgumentParser()
ap.add_argument("report")
ap.add_argument("--rerun", action="append", default=[])
ap.add_argument("--equivalent")
ap.add_argument("--all", action="store_true")
args = ap.parse_args()


def short(name):
    return name.split("/src/ClusterSync.Core/")[-1]


def ident(name, m):
    loc = m["location"]
    return (short(name), loc["start"]["line"], loc["start"]["column"], loc["end"]["line"], loc["end"]["column"], m["mutatorName"], m.get("replacement", ""))


report = json.load(open(args.report))
later = {}
for path in args.rerun:
    for name, f in json.load(open(path))["files"].items():
        for m in f["mutants"]:
            if m["status"] not in ("Ignored", "CompileError"):
                later[ident(name, m)] = m["status"]

equivalent = []
if args.equivalent:
    with open(args.equivalent) as fh:
        for row in csv.reader((line for line in fh if line.strip() and not line.startswith("#")), delimiter="\t"):
            equivalent.append((row[0], int(row[1]), row[2], row[3]))


def is_equivalent(i):
    return any(i[0].endswith(f) and i[1] == line and i[5] == mut and i[6].replace("\n", " ").startswith(rep) for f, line, mut, rep in equivalent)


STATES = ("Killed", "Timeout", "Survived", "NoCoverage", "Equivalent")
tot = dict.fromkeys(STATES, 0)
rows = []
for name, f in sorted(report["files"].items()):
    c = dict.fromkeys(STATES, 0)
    src = f["source"].split("\n")
    for m in sorted(f["mutants"], key=lambda m: (m["location"]["start"]["line"], m["location"]["start"]["column"])):
        if m["status"] in ("Ignored", "CompileError"):
            continue
        i = ident(name, m)
        status = later.get(i, m["status"])
        if status in ("Survived", "NoCoverage") and is_equivalent(i):
            status = "Equivalent"
        c[status] = c.get(status, 0) + 1
        if status in ("Survived", "NoCoverage") or (args.all and status == "Equivalent"):
            line = i[1]
            print(f"{status:10} {i[0]}:{line}:{i[2]} [{i[5]}] id={m['id']}")
            print(f"           src: {src[line - 1].strip()[:150]}")
            print(f"           ->   {i[6][:150]}")
    if sum(c.values()):
        rows.append((short(name), c))
        for s in STATES:
            tot[s] += c[s]


def line(label, c):
    k, t, s, n, e = (c[x] for x in STATES)
    den = k + t + s + n
    score = 100.0 * (k + t) / den if den else 0.0
    return f"{label:45} killed {k:4} timeout {t:3} survived {s:3} no-coverage {n:3} equivalent {e:3}  score {score:6.2f} %"


print()
for name, c in rows:
    print(line(name, c))
print(line("TOTAL", tot))
