"""advisor: see README.md (layers of faderwise)."""
