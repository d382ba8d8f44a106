"""A run's config: validated against the workflow's JSON schema with one line per problem
naming the dotted key, then completed with the schema's defaults."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEMO_CONFIG = REPO / "config" / "config.yaml"


def load_schema(schema_path: str | Path = SCHEMA) -> dict[str, Any]:
    """The schema (a fresh copy: callers fill defaults from it)."""
    return copy.deepcopy(_parsed_schema(str(Path(schema_path).resolve())))


@functools.lru_cache(maxsize=4)
def _parsed_schema(schema_path: str) -> dict[str, Any]:
    # libyaml's loader where installed: the schema is parsed at every workflow start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(schema_path).read_text(), Loader=loader)


def config_problems(config: dict[str, Any], schema_path: str | Path = SCHEMA) -> list[str]:
    """Every schema violation as 'config key a.b.c: problem' (unknown keys listed by name)."""
    validator = jsonschema.Draft202012Validator(load_schema(schema_path))
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


def fill_defaults(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`config` (in place) with every key it leaves out set to the schema's default, at every
    depth, including the entries of name-keyed blocks (splits, recordings)."""
    for name, sub in schema.get("properties", {}).items():
        if name not in config and "default" in sub:
            config[name] = copy.deepcopy(sub["default"])
        if isinstance(config.get(name), dict):
            fill_defaults(config[name], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for name, value in config.items():
            if name not in schema.get("properties", {}) and isinstance(value, dict):
                fill_defaults(value, extra)
    return config


def resolved_config(config: dict[str, Any], schema_path: str | Path = SCHEMA) -> dict[str, Any]:
    """A valid config with its defaults; ValueError listing every problem otherwise."""
    problems = config_problems(config, schema_path)
    if problems:
        raise ValueError("\n".join(problems))
    return fill_defaults(copy.deepcopy(config), load_schema(schema_path))
