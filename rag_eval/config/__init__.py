"""Config: the typed schema (``schema``), EvalScope's shapes (``evalscope``), any shape -> the typed dataclasses
(``normalise``), then the semantic checks -> RunConfig (``load``)."""

from rag_eval.config.load import load_config
from rag_eval.config.schema import (
    HUBS,
    MODEL_TYPES,
    POOLING_MODES,
    EvalConfig,
    ModelConfig,
    RunConfig,
    package_model_path,
    register_resolvers,
    register_schemas,
)

__all__ = [
    "HUBS",
    "MODEL_TYPES",
    "POOLING_MODES",
    "EvalConfig",
    "ModelConfig",
    "RunConfig",
    "load_config",
    "package_model_path",
    "register_resolvers",
    "register_schemas",
]

# the groups' `base` options and ${rag_eval.package_model:...}, for the CLI and any compose() alike
register_schemas()
