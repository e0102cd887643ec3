"""Evaluation stages: one-stage (a bi-encoder) and, later, two-stage (retrieve then rerank)."""
