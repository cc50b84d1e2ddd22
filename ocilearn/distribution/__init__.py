"""Step 01: moving images — the registry client, transports, copy."""
