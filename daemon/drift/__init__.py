"""Drift monitoring: per-source statistics of inputs and detector outputs, checked daily against a frozen
reference, without ground truth and without sending anything anywhere. See README, "Drift monitoring"."""
