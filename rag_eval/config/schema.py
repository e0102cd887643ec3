"""The typed config: one dataclass per section, stored in Hydra's ConfigStore.

Field names follow EvalScope's ``ModelArguments`` / ``EvalArguments`` so an EvalScope user's dict
works unchanged. Each Hydra group (``model``, ``reranker``, ``eval``) gets the dataclass as its
``base`` option; every group file extends it (``defaults: [base, _self_]``). So every key exists in
the composed config whichever file was chosen (``eval.limits=100`` always works), Hydra checks
types while composing (``eval.limits=ten`` is refused) and a typo (``eval.limts``) is refused too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

HUBS = ("huggingface", "modelscope")
POOLING_MODES = ("cls", "lasttoken", "max", "mean", "mean_sqrt_len_tokens", "weightedmean")
#: sentence_transformer / static: a bi-encoder; bm25: mteb's BM25 (bm25s) search model; hybrid: mteb's
#: HybridSearch fusing the sub-models listed in ``hybrid.models``
MODEL_TYPES = ("sentence_transformer", "static", "bm25", "hybrid")
SEARCH_TYPES = ("bm25", "hybrid")  # search models: they retrieve (Retrieval / Reranking tasks) but embed nothing
OUTPUT_DTYPES = ("float16", "bfloat16", "int8", "uint8", "int4", "uint4", "binary")  # mteb OutputDType values
SEARCH_BACKENDS = ("exact", "faiss")
#: compute precision of a local model (rag_eval/resolve/precision.py): fp32 as loaded, fp16 on CUDA, bf16
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: inference runtime of a local encoder (rag_eval/resolve/backends/): torch = sentence-transformers as loaded;
#: onnx / openvino = its transformer exported once to ONNX and run by onnxruntime / OpenVINO on the CPU
BACKENDS = ("torch", "onnx", "openvino")


@dataclass(frozen=True)
class ExportedBackend:
    """What the config knows of an exported backend: the runtime it needs and the precisions it runs."""

    runtime: str  # the module that must be importable (with onnx, which the export needs)
    precisions: tuple[str, ...]  # what it runs on the CPU (null precision: fp32)
    instead: str  # the hint for the precision it does not run


EXPORTED_BACKENDS = {
    "onnx": ExportedBackend("onnxruntime", ("fp32", "int8"), "backend=openvino for bf16"),
    "openvino": ExportedBackend("openvino", ("fp32", "bf16"), "backend=onnx for int8"),
}
assert set(EXPORTED_BACKENDS) | {"torch"} == set(BACKENDS)
#: how a served reranker's answer is shaped (resolve/api_models.py)
RERANK_SCHEMAS = ("cohere", "tei")


class RerankerFormat(str, Enum):
    """A reranker's scoring format (``reranker_format``); each LLM format is one module of
    rag_eval/resolve/rerankers/, ``auto`` decides from the model folder before any model runs."""

    auto = "auto"
    cross_encoder = "cross_encoder"
    qwen3 = "qwen3"
    flag_llm = "flag_llm"
    flag_layerwise = "flag_layerwise"


#: formats named but refused up front, and why
REFUSED_FORMATS = {
    "flag_layerwise": "bge-reranker-v2-minicpm-layerwise runs its own modelling code (LayerWiseMiniCPMForCausalLM, "
                      "trust_remote_code) whose per-layer heads rag_eval cannot check offline: it is not supported",
}
#: the formats a user can name for a folder auto cannot decide
SUPPORTED_FORMATS = ", ".join(f.value for f in RerankerFormat if f.value not in REFUSED_FORMATS and f.value != "auto")
FUSIONS = ("rrf", "dbsf", "rsf")
#: eval.limits_mode: rag_eval's seeded sample with the whole corpus, or EvalScope's first rows / judged documents
LIMITS_MODES = ("seeded", "evalscope")
#: model_type bm25: its model_kwargs are mteb's BM25 options plus rag_eval's tokenizer choice
BM25_TOKENIZERS = ("auto", "char", "jieba")
BM25_OPTIONS = frozenset({"k1", "b", "delta", "method", "stopwords", "stemmer_language", "freq_threshold",
                          "tokenizer"})


@dataclass
class ModelConfig:
    """One model: a bi-encoder (default) or a cross-encoder (``is_cross_encoder: true``)."""

    model_name_or_path: str = ""
    # display name used in results; defaults to the hub id or the local folder's name
    name: str | None = None
    revision: str | None = None
    hub: str = "modelscope"  # where a hub id is looked up (EvalScope's default)
    is_cross_encoder: bool = False
    model_type: str = "sentence_transformer"
    pooling_mode: str | None = None  # None keeps the model's own pooling
    max_seq_length: int | None = None  # None keeps the model's own limit
    prompt: str = ""  # query prompt (EvalScope); documents get none
    prompts: dict[str, str] = field(default_factory=dict)  # mteb-style per-task prompts
    # a reranker's scoring format (rag_eval/resolve/rerankers): auto | cross_encoder | qwen3 | flag_llm |
    # flag_layerwise; auto decides from the model folder before any model runs
    reranker_format: str = "auto"
    # the instruction for every task (overrides the per-task and the model's default instructions); null: those
    instruction: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    config_kwargs: dict[str, Any] = field(default_factory=dict)
    encode_kwargs: dict[str, Any] = field(default_factory=dict)
    trust_remote_code: bool = False
    # a device name, or a list (cuda:0, cuda:1) to encode on all of them (bi-encoder only);
    # typed Any because OmegaConf has no str-or-list type: load_config checks it
    device: Any = field(default=None, metadata={"kind": "device"})
    # fp32 (null: as model_kwargs.torch_dtype says), fp16 (CUDA only), bf16 (CPU: autocast; CUDA: weights);
    # part of the cache keys and of the experiment folder name (resolve/precision.py)
    precision: str | None = None
    # torch | onnx | openvino (CPU; encoder families such as BERT / XLM-R): the transformer's forward pass
    # runs on onnxruntime / OpenVINO; part of the cache keys and of the experiment folder name (resolve/backends/)
    backend: str = "torch"
    # --- retrieval options (stage 1): recorded in the result file and the experiment folder name ---
    embed_dim: int | None = None  # Matryoshka: keep the first embed_dim dimensions (sentence-transformers truncate_dim)
    output_dtype: str | None = None  # quantise the vectors (mteb's CompressionWrapper): int8, uint8, int4, binary, ...
    search_backend: str = "exact"  # exact: mteb's chunked search; faiss: mteb's FaissSearchIndex (flat, exact)
    # model_type hybrid: {models: [model configs], fusion: rrf|dbsf|rsf, weights: [...], rrf_k: 60,
    # sub_model_top_k: null} (mteb.HybridSearch); model_type bm25 takes mteb's BM25 options in model_kwargs
    # (k1, b, delta, method, stopwords, stemmer_language, tokenizer: auto | char | jieba)
    hybrid: dict[str, Any] = field(default_factory=dict)
    # --- a model served behind an HTTP API (EvalScope's keys; see rag_eval/resolve/api_models.py) ---
    # the id the server serves; as in EvalScope, setting it (or api_base) makes this an API model
    model_name: str | None = None
    api_base: str | None = None  # e.g. http://127.0.0.1:7997/v1 (bi-encoder default: OPENAI_BASE_URL or OpenAI's)
    api_key: str | None = None  # else RAG_EVAL_API_KEY / OPENAI_API_KEY; never written into results or logs
    dimensions: int | None = None  # the /embeddings `dimensions` field (server-side Matryoshka)
    rerank_schema: str = "cohere"  # cohere: {model, query, documents} | tei: {query, texts}
    request_timeout: float = 60.0  # seconds per request
    max_retries: int = 3  # on timeouts, connection errors, HTTP 429 and 5xx, with exponential backoff
    concurrency: int = 1  # requests in flight
    extra_body: dict[str, Any] = field(default_factory=dict)  # merged into every request body

    @property
    def is_api(self) -> bool:
        return bool(self.model_name or self.api_base)

    @property
    def is_search(self) -> bool:
        return self.model_type in SEARCH_TYPES


@dataclass
class EvalConfig:
    """What to evaluate and where the results go (EvalScope's ``EvalArguments`` and more)."""

    tasks: list[Any] = field(default_factory=list)  # names, or dicts for local data
    # an mteb benchmark whose tasks are evaluated too (e.g. "MTEB(cmn, v1)", C-MTEB)
    benchmark: str | None = None
    # filters on the built-in tasks (the benchmark's and the named ones; with neither, they select from
    # mteb's whole registry, as EvalScope's task_types / languages do); empty: no filter
    task_types: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # ISO 639-3 codes (cmn) or with script (cmn-Hans)
    dataset_path: str | None = None  # EvalScope: the folder of a Custom* task
    verbosity: int = 2
    output_folder: str = "outputs"
    overwrite_results: bool = True
    limits: int | None = None
    # how limits samples: "seeded" (rag_eval: limits queries / rows drawn with the seed, corpus kept whole, so
    # every other document stays a distractor) or "evalscope" (EvalScope's: the first limits queries / rows,
    # and the corpus cut to the documents judged for those queries; see rag_eval/resolve/sampling.py)
    limits_mode: str = "seeded"
    corpus_size: int | None = None
    # exact search: documents encoded and scored per step (mteb's corpus_chunk_size; null: mteb's 50,000).
    # A step holds about chunk x (2 x dim + queries) x 4 bytes (the vectors themselves go to the cache on
    # disk); 10,000 was as fast as 50,000 on 100k documents and peaked 175 MiB lower (docs/BENCHMARKS.md (d))
    corpus_chunk_size: int | None = 10_000
    seed: int = 42
    hub: str = "modelscope"  # where built-in tasks' data comes from
    # two-stage: stage-1 candidates per query the cross-encoder reranks; a list ([10, 20, 50, 100]) sweeps
    # them in one run (one experiment folder per k; each pair scored once, through the score cache)
    top_k: Any = field(default=100, metadata={"kind": "top_k"})
    raise_error: bool = False
    cache_embeddings: bool = True  # reuse bi-encoder embeddings across tasks, stages and runs
    cache_scores: bool = True  # reuse cross-encoder pair scores across tasks, top_k values, stage-1 models and runs
    # load and sample every task, check everything, print the plan (rows per split, texts to encode, texts
    # already cached) and stop: no model loaded, nothing written (rag_eval/stages/dry_run.py)
    dry_run: bool = False

    @property
    def top_ks(self) -> list[int]:
        """The top_k values of the run, largest first (the largest scores every pair the others need)."""
        values = self.top_k if isinstance(self.top_k, list) else [self.top_k]
        return sorted(set(values), reverse=True)


@dataclass
class RunConfig:
    models: list[ModelConfig]
    eval: EvalConfig

    @property
    def bi_encoder(self) -> ModelConfig:
        return self.models[0]

    @property
    def cross_encoder(self) -> ModelConfig | None:
        return self.models[1] if len(self.models) > 1 else None

    def pairs(self) -> list[RunConfig]:
        """The runs one config asks for, as EvalScope dispatches ``models``: with no cross-encoder, each
        bi-encoder one-stage in turn; with cross-encoders (listed after the bi-encoders), every
        bi-encoder x cross-encoder pair two-stage (a retriever x reranker matrix). One model, or one
        bi-encoder and one cross-encoder, is the run itself."""
        if len(self.models) <= 1 or len(self.models) == 2 and self.models[1].is_cross_encoder:
            return [self]
        bis = [m for m in self.models if not m.is_cross_encoder]
        ces = [m for m in self.models if m.is_cross_encoder]
        if not ces:
            return [RunConfig(models=[m], eval=self.eval) for m in bis]
        return [RunConfig(models=[b, c], eval=self.eval) for b in bis for c in ces]


def package_model_path(package: str) -> str:
    """Folder of a model shipped inside a Python package (``get_model_path()``)."""
    import importlib

    from rag_eval.errors import ConfigError

    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ConfigError(
            f"model package '{package}' is not installed: pip install {package.replace('_', '-')}"
        ) from None
    return str(module.get_model_path())


def register_resolvers() -> None:
    """``${rag_eval.package_model:<package>}`` and ``${rag_eval.demo:<folder>}`` for the YAML files."""
    from omegaconf import OmegaConf

    from rag_eval.demo_data import demo_path

    if not OmegaConf.has_resolver("rag_eval.package_model"):
        OmegaConf.register_new_resolver("rag_eval.package_model", package_model_path)
    if not OmegaConf.has_resolver("rag_eval.demo"):
        OmegaConf.register_new_resolver("rag_eval.demo", demo_path)


def register_schemas() -> None:
    """The dataclasses as the ``base`` option of the ``model``, ``reranker`` and ``eval`` groups."""
    from hydra.core.config_store import ConfigStore

    register_resolvers()
    store = ConfigStore.instance()
    if "base.yaml" in store.repo.get("model", {}):
        return
    store.store(group="model", name="base", node=_open_mappings(ModelConfig()))
    store.store(group="reranker", name="base", node=_open_mappings(ModelConfig(is_cross_encoder=True)))
    store.store(group="eval", name="base", node=EvalConfig)


#: free-form mappings: ``model.model_kwargs.torch_dtype=float16`` adds a key without Hydra's ``+``
OPEN_MAPPINGS = ("prompts", "model_kwargs", "config_kwargs", "encode_kwargs", "extra_body", "hybrid")


def _open_mappings(model: ModelConfig):
    """The typed node, with its free-form mappings open to new keys (Hydra closes the rest)."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(model)
    for key in OPEN_MAPPINGS:
        OmegaConf.set_struct(node[key], False)
    return node
