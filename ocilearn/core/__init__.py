"""Core: errors, narration, Linux syscalls, in-root file helpers, streams — used by every step."""
