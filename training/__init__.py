"""training: see README.md (layers of faderwise)."""
