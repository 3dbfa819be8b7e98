"""Agent templates in TOML and YAML: every parameter checked, models checked in the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.agents import BUILT_IN_TEMPLATES, TemplateError, load_templates
from tests.actors.agents.conftest import World

TOML = """
[templates.researcher]
system_prompt = "You research."
capabilities = ["search", "analyze", "synthesize"]
preferred_models = ["gpt-9", "llama3.2"]
tools = ["search_*"]
[templates.researcher.parameters.temperature]
type = "float"
min = 0.7
max = 0.9
default = 0.8
[templates.researcher.parameters.style]
type = "str"
choices = ["brief", "thorough"]
default = "brief"
[templates.researcher.parameters.summary_after]
type = "int"
min = 2
max = 50
default = 8
"""

YAML = """
templates:
  researcher:
    system_prompt: You research.
    capabilities: [search, analyze, synthesize]
    preferred_models: [llama3.2]
    parameters:
      temperature: {type: float, min: 0.7, max: 0.9, default: 0.8}
      window_tokens: {type: int, min: 100, max: 100000, default: 3000}
"""


@pytest.fixture
def toml_file(tmp_path: Path) -> Path:
    path = tmp_path / "templates.toml"
    path.write_text(TOML)
    return path


def test_toml_and_yaml_templates_read_the_same_tree(toml_file: Path, tmp_path: Path) -> None:
    """Both formats give templates with parameters and their constraints."""
    yaml_file = tmp_path / "templates.yaml"
    yaml_file.write_text(YAML)
    from_toml = load_templates(toml_file)["researcher"]
    from_yaml = load_templates(yaml_file)["researcher"]
    assert from_toml.parameters["temperature"] == from_yaml.parameters["temperature"]
    assert from_toml.parameters["temperature"].constraint() == "a float in [0.7, 0.9]"
    assert from_yaml.create("y", known_models=["llama3.2"]).window.kind == "tokens"


def test_creating_from_a_template_fills_defaults_and_the_first_known_preferred_model(
    toml_file: Path,
) -> None:
    """Defaults apply; the first preferred model the catalog knows is chosen."""
    template = load_templates(toml_file)["researcher"]
    spec = template.create("r1", parameters={"temperature": 0.75}, known_models=["llama3.2"])
    assert spec.model == "llama3.2"
    assert spec.temperature == 0.75
    assert spec.tools == ("search_*",)
    assert spec.window.kind == "summary"
    assert spec.window.turns == 8
    assert spec.capabilities == ("search", "analyze", "synthesize")
    assert spec.template == "researcher"


@pytest.mark.parametrize(
    ("kwargs", "field", "constraint"),
    [
        ({"parameters": {"temperature": 0.95}}, "parameters.temperature", "a float in [0.7, 0.9]"),
        ({"parameters": {"temperature": "hot"}}, "parameters.temperature", "a float in [0.7, 0.9]"),
        ({"parameters": {"style": "long"}}, "parameters.style", "one of ['brief', 'thorough']"),
        ({"parameters": {"summary_after": 1}}, "parameters.summary_after", "an int in [2, 50]"),
        ({"parameters": {"top_k": 3}}, "parameters.top_k", "one of the template's parameters"),
        ({"capabilities": ["search", "fly"]}, "capabilities", "a subset of"),
        ({"model": "gpt-9"}, "model", "a model the catalog knows"),
        ({"model": ["llama3.2", "nope"]}, "model[1]", "a model the catalog knows"),
    ],
)
def test_an_invalid_configuration_names_the_field_and_the_constraint(
    toml_file: Path, kwargs: dict[str, object], field: str, constraint: str
) -> None:
    """Each violation is a TemplateError carrying the field and the constraint."""
    template = load_templates(toml_file)["researcher"]
    with pytest.raises(TemplateError) as caught:
        template.create("r1", known_models=["llama3.2"], **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert constraint in caught.value.constraint
    assert caught.value.template == "researcher"
    assert field in str(caught.value)


def test_a_malformed_template_file_is_rejected_with_the_field(tmp_path: Path) -> None:
    """A wrong type, a bad default, a bad file and an unknown suffix are all TemplateErrors."""
    bad_type = tmp_path / "a.toml"
    bad_type.write_text('[templates.x]\nsystem_prompt = "p"\ncapabilities = "search"\n')
    with pytest.raises(TemplateError, match="capabilities"):
        load_templates(bad_type)
    bad_default = tmp_path / "b.yaml"
    bad_default.write_text(
        "x:\n  system_prompt: p\n  parameters:\n"
        "    temperature: {type: float, max: 1, default: 2}\n"
    )
    with pytest.raises(TemplateError, match=r"parameters\.temperature\.default"):
        load_templates(bad_default)
    broken = tmp_path / "c.yaml"
    broken.write_text("x: [unclosed\n")
    with pytest.raises(TemplateError, match="valid YAML"):
        load_templates(broken)
    with pytest.raises(TemplateError, match=r"\.toml, \.yaml"):
        load_templates(tmp_path / "d.json")


def test_the_parameters_are_a_json_schema_with_their_bounds() -> None:
    """The researcher's temperature is bounded in its JSON schema (an MCP inputSchema)."""
    schema = BUILT_IN_TEMPLATES["researcher"].json_schema()
    temperature = schema["properties"]["temperature"]
    assert (temperature["minimum"], temperature["maximum"]) == (0.7, 0.9)
    assert schema["additionalProperties"] is False


def test_models_are_checked_against_the_real_catalog(world: World) -> None:
    """The fleet's catalog knows llama3.2 (bare or host/model) and not gpt-9."""
    catalog = world.engine.catalog
    template = BUILT_IN_TEMPLATES["researcher"]
    assert template.create("a", model="local/llama3.2", catalog=catalog).model == "local/llama3.2"
    assert template.create("b", catalog=catalog).model == "qwen2.5"  # first preferred it knows
    assert template.create("c", model="auto:cheapest", catalog=catalog).model == "auto:cheapest"
    with pytest.raises(TemplateError) as caught:
        template.create("d", model="gpt-9", catalog=catalog)
    assert (caught.value.field, caught.value.constraint) == ("model", "a model the catalog knows")
