"""Config validation with one line per problem, naming the dotted key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml


def config_problems(config: dict[str, Any], schema_path: str | Path) -> list[str]:
    """Every schema violation as 'config key a.b.c: problem' (unknown keys listed by name)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties" and error.validator_value is False:
            known = sorted(error.schema.get("properties", {}))
            for name in sorted(set(error.instance) - set(known)):
                key = f"{where}.{name}" if where else name
                problems.append(f"config key {key}: unknown key (known here: {', '.join(known)})")
        else:
            problems.append(f"config key {where or '(top level)'}: {error.message}")
    return problems
