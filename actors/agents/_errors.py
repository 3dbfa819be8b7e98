"""What goes wrong with agents, templates and conversations.

::

    AgentError                  (ValueError)
    ├── TemplateError           a parameter breaks its constraint (names field and constraint)
    ├── AgentNotFoundError           no agent is defined under that name
    └── ConversationError       a conversation cannot start, continue or be found
"""

from __future__ import annotations

__all__ = ["AgentError", "AgentNotFoundError", "ConversationError", "TemplateError"]


class AgentError(ValueError):
    """An agent, template or conversation was used wrongly."""


class TemplateError(AgentError):
    """An agent's configuration breaks a constraint; nothing was run.

    Attributes:
        template: The template (or agent) whose configuration is wrong.
        field: The field, as a path (``parameters.temperature``).
        constraint: The constraint it breaks (``in [0.7, 0.9]``).
    """

    def __init__(self, template: str, field: str, constraint: str, detail: str = "") -> None:
        self.template = template
        self.field = field
        self.constraint = constraint
        tail = f": {detail}" if detail else ""
        super().__init__(f"{template}: {field} must be {constraint}{tail}")


class AgentNotFoundError(AgentError, LookupError):
    """No agent is defined under the name."""


class ConversationError(AgentError):
    """A conversation cannot be started, continued or found."""
