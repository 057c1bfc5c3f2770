#!/usr/bin/env bash
# Trains the shipped model models/lifetime.zip (+ lifetime.md, lifetime.frontier.png, lifetime.calibration.png):
# LUFlow (../shared/data/luflow, override with LUFLOW=...) plus two generated days dated before the LUFlow
# capture, so that they only ever land in the training days; the 4 latest LUFlow days are held out.
set -euo pipefail
cd "$(dirname "$0")/.."
LUFLOW="${LUFLOW:-../shared/data/luflow}"
dotnet build src/ClusterSync.Cli -c Release -v q -nologo
CS=(dotnet src/ClusterSync.Cli/bin/Release/net10.0/clustersync.dll)
mkdir -p models/.work
"${CS[@]}" generate --out models/.work/generated-2020-06.csv --start 2020-06-01 --days 2 --rate 1 --seed 2020
"${CS[@]}" train --luflow "$LUFLOW" --trace models/.work/generated-2020-06.csv --name lifetime --out-dir models --test-days 4 --force
