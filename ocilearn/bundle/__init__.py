"""Step 03: the bundle — image config → runtime config, unpack."""
