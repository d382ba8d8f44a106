from spikeforge.workflow.config_docs import README, SCHEMA, render


def test_config_readme_is_generated_from_schema():
    assert README.read_text() == render(), "run: python -m spikeforge.workflow.config_docs"


def test_every_schema_key_has_description_and_default():
    import yaml

    def walk(node, key):
        for name, child in node.get("properties", {}).items():
            assert child.get("description"), f"{key}{name} has no description"
            assert "default" in child, f"{key}{name} has no default"
            walk(child, f"{key}{name}.")
            extra = child.get("additionalProperties")
            if isinstance(extra, dict):
                walk(extra, f"{key}{name}.<name>.")

    walk(yaml.safe_load(SCHEMA.read_text()), "")
