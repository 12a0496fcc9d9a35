"""training: dataset synthesis (balanced stems → perturbed A / original B pairs) and fine-tuning."""
