"""evals: scoring advisors — gain error (gain_error.py) and the accuracy harness on perturbed material (advisor_accuracy.py)."""
