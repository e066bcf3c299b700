"""The terminal's own owner: `threadline chat` and the CLI without `--user`."""

import hashlib

from memory.sessions import Owner

# One local anonymous owner, so the terminal's sessions can be resumed.
TERMINAL_OWNER = Owner(anon_token_hash=hashlib.sha256(b"threadline-terminal").hexdigest())
