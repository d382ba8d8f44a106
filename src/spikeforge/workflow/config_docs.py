"""Render config/README.md from the workflow's JSON schema
(`python -m spikeforge.workflow.config_docs`)."""

from __future__ import annotations

import json
import sys

import yaml

from spikeforge.workflow.config import REPO, SCHEMA

README = REPO / "config" / "README.md"


def _type(node: dict) -> str:
    kind = node.get("type", "object")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " or ".join(kinds)
    if "enum" in node:
        text += ": " + ", ".join(f"`{v}`" for v in node["enum"])
    return text


def _rows(node: dict, prefix: str) -> list[str]:
    rows = []
    for name, child in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        default = json.dumps(child.get("default")) if "default" in child else ""
        description = child.get("description", "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(child)} | `{default}` | {description} |")
        rows.extend(_rows(child, key + "."))
        extra = child.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("properties"):
            rows.extend(_rows(extra, key + ".<name>."))
    return rows


def render() -> str:
    schema = yaml.safe_load(SCHEMA.read_text())
    lines = [
        "# Configuration",
        "",
        "A run is defined by one config file (`snakemake --configfile my.yaml`); without one,",
        "`config/config.yaml`, the embedded demo, is used. Every key is validated against",
        "`workflow/schemas/config.schema.yaml` at start-up; unknown keys are rejected and keys",
        "left out take the defaults below (a chain runs only when its `enabled` is true). This",
        "file is generated from the schema: `python -m spikeforge.workflow.config_docs`",
        "rewrites it.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        *_rows(schema, ""),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    README.write_text(render())
    sys.exit(0)
