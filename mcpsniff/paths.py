"""Where outputs go: a path the user names is written only into a folder that exists.

A typo in ``-o /tmp/reprots/run.pcapng`` used to create ``/tmp/reprots/`` silently
(``mkdir -p``), and a capture could run for an hour into a folder nobody looks at.
Now a missing folder is bad input, said in one line before anything runs.  Folders
mcpsniff itself names (the demo's default ``captures/demo-<time>/``) are still made.
"""

from __future__ import annotations

from pathlib import Path

from .errors import BadInputError


def output_file(path: Path | None, option: str) -> Path | None:
    """``path`` if its folder exists (else BadInputError naming ``option``); None stays None."""
    if path is None:
        return None
    folder = path.parent
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise BadInputError(f"{option} {path}: directory {folder} {what} (mcpsniff does not create it)")
    if path.is_dir():
        raise BadInputError(f"{option} {path}: is a directory, expected a file name")
    return path


def output_dir(path: Path, option: str) -> Path:
    """Create the folder ``path`` (its last part only) and return it; its parent must exist."""
    if path.is_dir():
        return path
    if path.exists():
        raise BadInputError(f"{option} {path}: exists and is not a directory")
    output_file(path, option)  # the parent must be there: one missing level is made, never a chain
    try:
        path.mkdir()
    except FileExistsError:  # made meanwhile by someone else: fine if it is a folder
        if not path.is_dir():
            raise BadInputError(f"{option} {path}: exists and is not a directory") from None
    except OSError as exc:
        raise BadInputError(f"{option} {path}: cannot create it: {exc.strerror or exc}") from None
    return path
