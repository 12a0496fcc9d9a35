"""agent: see README.md (layers of faderwise)."""
