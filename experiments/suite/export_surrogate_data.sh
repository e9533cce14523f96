#!/usr/bin/env bash
# Turns a store of a collection study (experiments/suite/collect/*.json, run with
# `hpo run STUDY.json --db NAME.db`) into a surrogate's data file: one JSON line per COMPLETED
# trial, {"number": N, "config": {...}, "value": 1 - val_accuracy}.
#   experiments/suite/export_surrogate_data.sh fmnist-mlp.db > experiments/suite/data/fmnist-mlp.jsonl
set -euo pipefail
db=${1:?usage: $0 STORE.db}
sqlite3 -batch -noheader "$db" \
  "SELECT json_object('number', number, 'config', json(config), 'value', 1.0 - value)
     FROM trials WHERE state = 'COMPLETED' AND value IS NOT NULL ORDER BY number"
