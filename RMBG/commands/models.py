"""``rmbg models``: the models that ``--model`` (and ``--peer``, ``--teacher``) take by name."""

from __future__ import annotations

import argparse
import json

from RMBG.models.names import ENSEMBLE_SEPARATOR, catalogue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m RMBG models",
        description="List the models --model accepts by name: size, input, licence, source, and whether the "
        f"file is here (else the command that gets it). NAME{ENSEMBLE_SEPARATOR}NAME is the mean of their maps.")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    table = catalogue()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    for row in table:
        state = f"present: {row['file']}" if row["present"] else f"missing; get it: {row['get']}"
        print(f"{row['name']:8} {row['size'] / 1e6:6.1f} MB  input {row['input_size']}  {state}")
        print(f"{'':8} preprocessing: {row['preprocessing']}")
        print(f"{'':8} licence: {row['licence']}")
        print(f"{'':8} source: {row['source']}")
    print(f"NAME{ENSEMBLE_SEPARATOR}NAME (e.g. u2net{ENSEMBLE_SEPARATOR}isnet): the pixel-wise mean of the models' "
          "maps, each model at its own input size")
    return 0
