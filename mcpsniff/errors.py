"""One error hierarchy. The CLI turns every MCPSniffError into a one-line message and exit code 2."""


class MCPSniffError(Exception):
    """Base class: something the user can fix (bad input, bad option, missing tool)."""


class BadInputError(MCPSniffError):
    """A capture, records file or config that cannot be read at all."""


class ConfigError(MCPSniffError):
    """The YAML config is invalid."""


class CaptureError(MCPSniffError):
    """Live capture or proxy could not start (permissions, missing tools, busy port)."""
