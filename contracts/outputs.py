"""The one JSON shape of every command's output: its version, its units block, its schema file.

Every `--json` a `scaling` subcommand prints, and every fit / backtest JSON it writes, carries
`schema_version` (OUTPUT_SCHEMA_VERSION) and follows `output.schema.json` beside this module, one
JSON Schema (draft 2020-12) with one definition per concept and one per command:

    approach        a string: "1", "2", "3" or "kaplan" (Hoffmann et al. 2022 §3.1-3.3; Kaplan et al. 2020)
    intervals       {name: [lo, hi]} with interval_level beside them
    n_convention    "total" or "nonembedding" (contracts.conventions.N_CONVENTIONS)
    units           {quantity: unit}: loss in nats/token, N in parameters, D in tokens, C in FLOPs
    schema_version  an integer; readers refuse a newer one

Version 1 was the layout before this file (approach as a number, bootstrap draws always included,
n_convention possibly a column name); `analysis.fitjson.read_fit` still reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OUTPUT_SCHEMA_VERSION = 2
"""The version of the output layout described by output.schema.json."""

SCHEMA_FILE = Path(__file__).with_name("output.schema.json")
"""The JSON Schema every command's --json output is validated against in the tests."""

UNITS: dict[str, str] = {"loss": "nats/token", "N": "parameters", "D": "tokens", "C": "FLOPs (6ND)"}
"""The units of the quantities every output shares."""


def stamp(obj: Any) -> Any:
    """`obj` with `schema_version` first when it is a dict without one (any other value as it is)."""
    if isinstance(obj, dict) and "schema_version" not in obj:
        return {"schema_version": OUTPUT_SCHEMA_VERSION, **obj}
    return obj
