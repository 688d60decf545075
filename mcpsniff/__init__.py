from .native import use_pure

use_pure()  # the compiled modules (mypyc), unless MCPSNIFF_PURE=1 or their build is stale
