"""Evaluation: text metrics, evaluators and benchmarks."""
