#!/usr/bin/env bash
# Turns a store of a collection study (experiments/suite/collect/*.json, run with
# `hpo run STUDY.json --db NAME.db`) into a surrogate's data file: one JSON line per trial,
# {"number": N, "config": {...}, "value": 1 - val_accuracy}. A trial that FAILED because its
# training diverged counts as chance level (value 0.9, ten classes): a real search gets nothing
# from it, and leaving it out would make its region look good. Other failures are left out.
#   experiments/suite/export_surrogate_data.sh fmnist-mlp.db > experiments/suite/data/fmnist-mlp.jsonl
set -euo pipefail
db=${1:?usage: $0 STORE.db}
sqlite3 -batch -noheader "$db" \
  "SELECT json_object('number', number, 'config', json(config),
                      'value', CASE WHEN state = 'COMPLETED' THEN 1.0 - value ELSE 0.9 END)
     FROM trials
    WHERE (state = 'COMPLETED' AND value IS NOT NULL)
       OR (state = 'FAILED' AND error LIKE '%training diverged%')
    ORDER BY number"
