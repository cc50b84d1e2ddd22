"""Step 01–02: the OCI image — digests, media types, the model, references, the image layout."""
