"""The engine and the application: the CLI, the daemon, the executor (to come)."""

__all__: list[str] = []
