"""rag_eval's Hydra config groups; the wheel ships this folder as the package ``rag_eval.conf``."""
