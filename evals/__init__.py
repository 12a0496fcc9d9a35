"""evals: see README.md (layers of faderwise)."""
