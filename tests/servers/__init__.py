"""Real model servers the tests start on 127.0.0.1 (each in its own venv, built once)."""
