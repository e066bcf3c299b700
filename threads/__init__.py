"""What happens to a thread, whoever asks.

Every entry point (REST, WebSocket, CLI, MCP, the terminal chat, the periodic
cleanup) reaches a thread through `threads.operations.Threads`, so the thread's
lock and the caller's rights are checked in one place. Imports flow
`app -> threads -> graph -> memory`.
"""
