"""The built-in restart demo: a real SDK server with four namespaces, real SDK clients, a restart.

``server`` and ``clients`` run as subprocesses of ``run`` (the orchestrator behind
``mcpsniff demo``), so a restart is a real process restart and a stuck client cannot
hold the demo hostage.
"""

NAMESPACES = ("tasks", "dev-agents", "sprint", "ci-infra")
