"""The output layer: every byte escli writes to stdout goes through a writer from here."""
