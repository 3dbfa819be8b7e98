"""Agent templates: roles with constrained parameters, written in TOML or YAML.

A template is a role (system prompt, context, constraints), the capabilities it offers,
the models it prefers, the tools it may use, and parameters, each with a constraint::

    [templates.researcher]
    system_prompt = "You research a question carefully and cite what you rely on."
    capabilities = ["search", "analyze", "synthesize"]
    preferred_models = ["llama3.2", "qwen2.5"]
    [templates.researcher.parameters.temperature]
    type = "float"
    min = 0.7
    max = 0.9
    default = 0.8

(YAML: the same tree.) :meth:`Template.create` makes an :class:`AgentSpec` from one, and
checks *everything* first: each parameter's type and constraint (``min``/``max``,
``choices``, ``pattern``, ``required``), unknown parameters, requested capabilities
(a subset of the template's), and the model (one the catalog knows, a selector policy,
or a chain). A violation raises :class:`TemplateError` naming the field and the
constraint; nothing runs. The parameters are also a pydantic model, so
:meth:`Template.json_schema` can serve as a tool's ``inputSchema``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import pydantic
import yaml

from actors.agents._errors import TemplateError
from actors.agents._roles import AgentSpec, Role, Window
from actors.llm import Catalog

__all__ = ["BUILT_IN_TEMPLATES", "Param", "Template", "load_templates", "parse_templates"]

_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool}


class Param(msgspec.Struct, frozen=True, kw_only=True):
    """One parameter of a template and its constraint.

    Attributes:
        type: ``float``, ``int``, ``str`` or ``bool``.
        min: Smallest allowed value (numbers).
        max: Largest allowed value (numbers).
        choices: The allowed values.
        pattern: A regular expression a ``str`` must match.
        default: The value when none is given (``None``: required).
        description: What it does.
    """

    type: Literal["float", "int", "str", "bool"] = "float"
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    pattern: str | None = None
    default: Any = None
    description: str = ""

    def constraint(self) -> str:
        """The constraint in words (what errors name)."""
        parts = [f"an {self.type}" if self.type == "int" else f"a {self.type}"]
        if self.min is not None and self.max is not None:
            parts.append(f"in [{self.min:g}, {self.max:g}]")
        elif self.min is not None:
            parts.append(f">= {self.min:g}")
        elif self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.choices:
            parts.append(f"one of {list(self.choices)}")
        if self.pattern:
            parts.append(f"matching {self.pattern!r}")
        return " ".join(parts)

    def field(self) -> tuple[Any, Any]:
        """The pydantic field for this parameter (type and ``Field``)."""
        base: Any = _TYPES[self.type]
        if self.choices:
            base = Literal[tuple(self.choices)]
        default = ... if self.default is None else self.default
        return (
            base,
            pydantic.Field(
                default=default,
                ge=self.min,
                le=self.max,
                pattern=self.pattern,
                description=self.description or None,
                strict=None if self.choices else True,
            ),
        )


class Template(msgspec.Struct, frozen=True, kw_only=True):
    """An agent template (see the module docstring).

    Attributes:
        name: The template's name (``researcher``).
        system_prompt: The role's system prompt.
        role: The role's name (default: the template's name).
        description: One line about it.
        context: The role's context (specialties, experience, ...).
        constraints: The role's rules.
        capabilities: What agents made from it can do.
        preferred_models: Models to use, in order, when none is given.
        tools: Tools its agents may use.
        parameters: Its parameters (``temperature``, ``max_tokens``, ``window_turns``, ...).
    """

    name: str
    system_prompt: str
    role: str = ""
    description: str = ""
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    preferred_models: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    parameters: dict[str, Param] = msgspec.field(default_factory=dict)

    def json_schema(self) -> dict[str, Any]:
        """The parameters as a JSON schema (a tool's ``inputSchema``)."""
        return self._model().model_json_schema()

    def _model(self) -> type[pydantic.BaseModel]:
        fields = {name: param.field() for name, param in self.parameters.items()}
        config = pydantic.ConfigDict(extra="forbid")
        model: type[pydantic.BaseModel] = pydantic.create_model(  # type: ignore[call-overload]
            f"{self.name}_parameters", __config__=config, **fields
        )
        return model

    def validate(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters with defaults filled in; raises :class:`TemplateError` on a violation."""
        try:
            checked = self._model().model_validate(dict(parameters))
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            param = self.parameters.get(str(error["loc"][0])) if error["loc"] else None
            if error["type"] == "extra_forbidden":
                known = ", ".join(sorted(self.parameters)) or "none"
                raise TemplateError(
                    self.name, f"parameters.{field}", f"one of the template's parameters ({known})"
                ) from None
            constraint = param.constraint() if param else error["msg"]
            given = parameters.get(field, "nothing")
            raise TemplateError(
                self.name, f"parameters.{field}", constraint, f"got {given!r}"
            ) from None
        return checked.model_dump()

    def create(
        self,
        name: str,
        *,
        model: str | Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        capabilities: Sequence[str] | None = None,
        tools: Sequence[str] | None = None,
        catalog: Catalog | None = None,
        known_models: Sequence[str] | None = None,
    ) -> AgentSpec:
        """An agent made from this template, every parameter checked first.

        Args:
            name: The agent's name.
            model: A model the catalog knows, ``auto``/``auto:<policy>``, ``chain:<name>``,
                or a list (an inline fallback chain); default: the first preferred model
                the catalog knows.
            parameters: Values for the template's parameters (defaults fill the rest).
                ``temperature`` and ``max_tokens`` set the agent's; ``window_turns``,
                ``window_tokens`` and ``summary_after`` its history window.
            capabilities: The capabilities it should have (a subset of the template's).
            tools: Tools it may use (default: the template's).
            catalog: The model catalog models are checked against.
            known_models: Model names to check against instead of (or beside) a catalog.

        Raises:
            TemplateError: A parameter, capability or model breaks its constraint.
        """
        values = self.validate(parameters or {})
        chosen = self._capabilities(capabilities)
        spec_model = self._model_for(model, catalog, known_models)
        window = _window(values)
        spec = AgentSpec(
            name=name,
            role=Role(
                name=self.role or self.name,
                system_prompt=self.system_prompt,
                context=dict(self.context),
                constraints=self.constraints,
            ),
            model=spec_model,
            tools=tuple(self.tools if tools is None else tools),
            window=window,
            temperature=values.get("temperature"),
            max_tokens=values.get("max_tokens"),
            description=self.description,
            template=self.name,
            capabilities=chosen,
        )
        spec.check()
        return spec

    def _capabilities(self, wanted: Sequence[str] | None) -> tuple[str, ...]:
        if wanted is None:
            return self.capabilities
        extra = [c for c in wanted if c not in self.capabilities]
        if extra:
            raise TemplateError(
                self.name, "capabilities", f"a subset of {list(self.capabilities)}", f"got {extra}"
            )
        return tuple(wanted)

    def _model_for(
        self,
        model: str | Sequence[str] | None,
        catalog: Catalog | None,
        known: Sequence[str] | None,
    ) -> str | tuple[str, ...]:
        def knows(name: str) -> bool:
            if known is not None and name in known:
                return True
            return catalog is not None and bool(catalog.lookup(name))

        where = "one the catalog knows" if catalog is not None or known is not None else "given"
        if model is None:
            for preferred in self.preferred_models:
                if knows(preferred):
                    return preferred
            if catalog is None and known is None and self.preferred_models:
                return self.preferred_models[0]
            raise TemplateError(
                self.name,
                "model",
                f"{where} (preferred: {list(self.preferred_models) or 'none'})",
                "no preferred model is available; pass model=",
            )
        if isinstance(model, str):
            if model == "auto" or model.startswith(("auto:", "chain:")):
                return model
            names: tuple[str, ...] = (model,)
        else:
            names = tuple(model)
        if catalog is not None or known is not None:
            for index, item in enumerate(names):
                if not knows(item):
                    path = "model" if isinstance(model, str) else f"model[{index}]"
                    raise TemplateError(
                        self.name, path, "a model the catalog knows", f"{item!r} is unknown"
                    )
        return names[0] if isinstance(model, str) else names


def _window(values: Mapping[str, Any]) -> Window:
    if values.get("summary_after") is not None:
        return Window.summary(
            after=int(values["summary_after"]), keep=int(values.get("keep_turns") or 4)
        )
    if values.get("window_tokens") is not None:
        return Window.token_limit(int(values["window_tokens"]))
    if values.get("window_turns") is not None:
        return Window.last(int(values["window_turns"]))
    return Window()


_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_templates(data: Mapping[str, Any], *, source: str = "templates") -> dict[str, Template]:
    """Templates from a parsed TOML/YAML tree: ``{"templates": {name: {...}}}`` or ``{name: ...}``.

    Raises:
        TemplateError: A template is malformed (naming the template and field).
    """
    tree = data.get("templates", data)
    if not isinstance(tree, Mapping):
        raise TemplateError(source, "templates", "a table of templates")
    found: dict[str, Template] = {}
    for name, body in tree.items():
        if not _TEMPLATE_NAME.match(str(name)) or not isinstance(body, Mapping):
            raise TemplateError(
                f"{source}: {name}", "templates", "a table named with letters, digits, _ . -"
            )
        try:
            found[name] = msgspec.convert({"name": name, **body}, Template)
        except msgspec.ValidationError as exc:
            text = str(exc)
            where = text.rsplit("at `$.", 1)[-1].rstrip("`") if "at `$." in text else "?"
            raise TemplateError(
                f"{source}: {name}", where, text.split(" - at", maxsplit=1)[0]
            ) from None
        for pname, param in found[name].parameters.items():
            if param.default is not None:
                try:
                    found[name].validate({pname: param.default})
                except TemplateError as exc:
                    raise TemplateError(
                        f"{source}: {name}", f"parameters.{pname}.default", exc.constraint
                    ) from None
    return found


def load_templates(path: str | Path) -> dict[str, Template]:
    """Templates from a ``.toml``, ``.yaml`` or ``.yml`` file."""
    file = Path(path)
    if file.suffix not in {".toml", ".yaml", ".yml"}:
        raise TemplateError(str(file), "file", "a .toml, .yaml or .yml file")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(str(file), "file", "a readable file", str(exc)) from None
    if file.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(str(file), "file", "valid TOML", str(exc)) from None
    else:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise TemplateError(str(file), "file", "valid YAML", str(exc)) from None
    if not isinstance(data, Mapping):
        raise TemplateError(str(file), "file", "a table of templates")
    return parse_templates(data, source=str(file))


BUILT_IN_TEMPLATES: dict[str, Template] = parse_templates(
    tomllib.loads((Path(__file__).parent / "templates.toml").read_text(encoding="utf-8")),
    source="built-in",
)
"""The templates that ship with the package (researcher, analyst, writer, coder, critic,
moderator, the four PR reviewers and a summarizer)."""
