"""mitmproxy script: ``mitmdump --mode reverse:http://127.0.0.1:5076 -p 5077 -s addons/mcpsniff_addon.py --set mcpsniff_output=run.jsonl``.

The wheel ships it as mcpsniff/addons/mcpsniff_addon.py: ``mitmdump -s "$(mcpsniff addon-path)" ...``.
Works from a checkout even when mcpsniff is not installed: the repository root is put on sys.path.
"""

import sys
from pathlib import Path

try:
    from mcpsniff.capture.mitm import McpSniff
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mcpsniff.capture.mitm import McpSniff

addons = [McpSniff()]
