"""Step 02–03: layers — tar reading, whiteouts, applying a layer to a rootfs."""
