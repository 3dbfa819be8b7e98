"""Tools from functions and pydantic models: schemas, validation, metadata, capability docs."""

from __future__ import annotations

import asyncio
from typing import Literal

import pydantic
import pytest
from pydantic import BaseModel, Field, SecretStr

from actors.tools import (
    ToolArgumentError,
    ToolContext,
    ToolDefinitionError,
    ToolOutputError,
    ToolRegistry,
    UnknownToolError,
    tool,
)


@tool(read_only=True, tags={"files"}, timeout=5.0)
def read_file(path: str = Field(max_length=50), lines: int = 10) -> str:
    """Read the start of a text file.

    Args:
        path: Relative to the workspace,
            never absolute.
        lines: How many lines to read.
    """
    return f"{path}:{lines}"


class Forecast(BaseModel):
    """The weather forecast for a city."""

    city: str = Field(description="The city's name")
    days: int = Field(default=1, ge=1, le=7)

    async def run(self) -> dict[str, object]:
        await asyncio.sleep(0)
        return {"city": self.city, "days": self.days}


def test_function_schema_comes_from_signature_and_docstring() -> None:
    """Types, defaults, constraints from the signature; descriptions from Args: (wrapped too)."""
    spec = read_file.spec
    assert spec.name == "read_file"
    assert spec.description == "Read the start of a text file."
    props = spec.parameters["properties"]
    assert props["path"] == {
        "type": "string",
        "maxLength": 50,
        "description": "Relative to the workspace, never absolute.",
    }
    assert props["lines"] == {
        "type": "integer",
        "default": 10,
        "description": "How many lines to read.",
    }
    assert spec.parameters["required"] == ["path"]
    assert spec.parameters["additionalProperties"] is False
    assert "title" not in spec.parameters


def test_literal_becomes_an_enum_and_field_descriptions_win() -> None:
    """A Field's own description wins over the docstring's; Literal is an enum."""

    @tool
    def move(
        direction: Literal["up", "down"], speed: float = Field(1.0, description="m/s")
    ) -> None:
        """Move.

        Args:
            direction: Where.
            speed: Ignored, the Field says it.
        """

    props = move.spec.parameters["properties"]
    assert props["direction"]["enum"] == ["up", "down"]
    assert props["speed"]["description"] == "m/s"


def test_pydantic_model_tool_uses_its_fields_and_run() -> None:
    """A model class is a tool: its fields the schema, its docstring the description."""
    made = tool(Forecast)
    assert made.spec.description == "The weather forecast for a city."
    assert made.spec.parameters["properties"]["city"]["description"] == "The city's name"
    assert made.is_async
    validated = made.validate({"city": "Oslo", "days": 3})
    assert asyncio.run(made.invoke(validated, ToolContext())) == {"city": "Oslo", "days": 3}


def test_model_without_run_returns_the_validated_instance() -> None:
    """A model with no run method is a structured answer: calling it returns the instance."""

    class Verdict(BaseModel):
        """Say whether it passed."""

        passed: bool

    made = tool(Verdict)
    result = made.invoke(made.validate({"passed": "true"}), ToolContext())
    assert result == Verdict(passed=True)
    assert made.check_output(result) == {"passed": True}


def test_invalid_arguments_name_each_field() -> None:
    """Validation errors name the fields at fault and what was wrong."""
    with pytest.raises(ToolArgumentError) as caught:
        read_file.validate({"path": "x" * 60, "lines": "many", "extra": 1})
    assert set(caught.value.fields) == {"path", "lines", "extra"}
    assert "field 'lines'" in str(caught.value)
    assert caught.value.kind == "invalid_arguments"
    assert caught.value.correctable


def test_output_is_checked_against_the_return_type() -> None:
    """A result the return annotation rejects is a ToolOutputError, not passed on."""

    @tool
    def count() -> int:
        """Count."""
        return "lots"  # type: ignore[return-value]

    with pytest.raises(ToolOutputError, match="return type"):
        count.check_output(count.invoke(count.validate({}), ToolContext()))


def test_context_parameter_is_injected_not_in_schema() -> None:
    """A ToolContext parameter is filled by the runner and left out of the schema."""

    @tool
    def who(ctx: ToolContext, greeting: str) -> str:
        """Greet the caller."""
        return f"{greeting} {ctx.identity}"

    assert list(who.spec.parameters["properties"]) == ["greeting"]
    assert who.invoke(who.validate({"greeting": "hi"}), ToolContext(identity="ana")) == "hi ana"


def test_secret_fields_are_known() -> None:
    """SecretStr fields and Fields marked secret are the tool's secret fields."""

    @tool
    def login(
        user: str, password: SecretStr, otp: str = Field(json_schema_extra={"secret": True})
    ) -> bool:
        """Log in."""
        return True

    assert login.secret == frozenset({"password", "otp"})


def test_bad_definitions_are_refused_with_the_reason() -> None:
    """Missing annotations, *args and names providers refuse are definition errors."""

    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    def variadic(*items: int) -> int:
        return len(items)

    with pytest.raises(ToolDefinitionError, match="no type annotation"):
        tool(untyped)
    with pytest.raises(ToolDefinitionError, match="'items'"):
        tool(variadic)
    with pytest.raises(ToolDefinitionError, match="1 to 64"):
        tool(name="has space")(variadic)


def test_registry_select_by_name_glob_and_tag_and_docs_trimmed() -> None:
    """A step's allow list trims the specs and the capability docs."""

    @tool(tags={"math"}, destructive=True)
    def wipe() -> None:
        """Wipe everything."""

    registry = ToolRegistry([read_file, wipe, Forecast])
    assert [t.name for t in registry.select(["tag:files"])] == ["read_file"]
    assert [t.name for t in registry.select(["Fore*"])] == ["Forecast"]
    docs = registry.capability_docs(["read_file", "wipe"])
    assert "- read_file(path: string, lines?: integer) [read-only]" in docs
    assert "- wipe() [destructive]" in docs
    assert "Forecast" not in docs
    with pytest.raises(UnknownToolError, match="you may call are: read_file"):
        registry.get("wipe", ["tag:files"])
    with pytest.raises(ToolDefinitionError, match="registered already"):
        registry.add(wipe)


def test_model_tool_keeps_its_own_extra_policy() -> None:
    """A model tool follows its own ``extra`` setting; ``forbid`` shows in the schema."""

    class Strict(BaseModel):
        """Strict."""

        model_config = pydantic.ConfigDict(extra="forbid")
        city: str

    made = tool(Strict)
    assert made.spec.parameters["additionalProperties"] is False
    with pytest.raises(ToolArgumentError) as caught:
        made.validate({"city": "Oslo", "country": "NO"})
    assert caught.value.fields == ("country",)


def test_pydantic_error_type_is_not_leaked() -> None:
    """What the caller gets is a ToolArgumentError, not pydantic's ValidationError."""
    with pytest.raises(ToolArgumentError) as caught:
        read_file.validate({})
    assert not isinstance(caught.value, pydantic.ValidationError)
    assert caught.value.fields == ("path",)
