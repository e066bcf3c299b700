"""The terminal's own owner: `threadline chat` and the CLI without `--user`."""

from memory.sessions import Owner

# One local anonymous owner, so the terminal's sessions can be resumed. Its mark is
# not the SHA-256 of any token (not 64 hex digits) and is never registered as an
# anonymous owner, so no HTTP request can prove it: the terminal's threads are
# reachable from this machine's command line only (migration 0004 moved the old,
# guessable mark's sessions to it).
TERMINAL_OWNER = Owner(anon_token_hash="local:terminal")
