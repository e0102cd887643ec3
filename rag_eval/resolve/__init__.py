"""Resolve a config into runnable parts: model folders (hub), encoders, tasks and their data."""
