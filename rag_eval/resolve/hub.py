"""Turn a model or dataset id into a local folder, from a local path or a hub cache.

Air-gapped runs are the normal case here, so this module decides *before* calling a hub
library whether the hub can be reached, and passes ``local_files_only`` accordingly: an
offline lookup only reads the cache and fails in well under a second instead of retrying
for minutes. Every failure becomes one :class:`HubError` line that names the id, the hub
and the fix.

``huggingface_hub`` and ``modelscope`` are imported inside the functions: importing
``modelscope`` alone takes about a second, and most commands never need it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rag_eval import _compat
from rag_eval.errors import HubError, one_line

HUGGINGFACE = "huggingface"
MODELSCOPE = "modelscope"
_HUB_ALIASES = {
    "huggingface": HUGGINGFACE,
    "hf": HUGGINGFACE,
    "modelscope": MODELSCOPE,
    "ms": MODELSCOPE,
}
_DEFAULT_REVISION = {HUGGINGFACE: "main", MODELSCOPE: "master"}
_DEFAULT_ENDPOINT = {HUGGINGFACE: "https://huggingface.co", MODELSCOPE: "https://modelscope.cn"}

_TRUE = {"1", "true", "yes", "on"}
_GLOBAL_OFFLINE_FLAGS = ("RAG_EVAL_OFFLINE",)
_HUB_OFFLINE_FLAGS = {
    HUGGINGFACE: ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"),
    MODELSCOPE: ("MODELSCOPE_OFFLINE",),
}
_PROBE_TIMEOUT_S = 2.0
_SMALL_JSON_BYTES = 1 << 20  # config-sized json files are hashed byte for byte
_FINGERPRINT_SKIP_DIRS = {".git", "__pycache__"}

_probe_cache: dict[str, bool] = {}
_probe_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedModel:
    """Where a configured model lives on disk, and which version it is (for results)."""

    model_id: str  # as configured
    path: Path  # local folder holding the model files
    revision: str  # commit hash, requested revision, or "local-<fingerprint>"
    source: str  # "local" | "huggingface" | "modelscope"


# --------------------------------------------------------------------------- offline detection


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def normalize_hub(hub: str) -> str:
    key = str(hub or "").strip().lower()
    if key not in _HUB_ALIASES:
        raise HubError(f"unknown hub {hub!r}: use 'huggingface' or 'modelscope'")
    return _HUB_ALIASES[key]


def _hub_endpoint(hub: str) -> str:
    if hub == HUGGINGFACE:
        return os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT[HUGGINGFACE]
    return (
        os.environ.get("MODELSCOPE_ENDPOINT")
        or os.environ.get("MODELSCOPE_DOMAIN")
        or _DEFAULT_ENDPOINT[MODELSCOPE]
    )


def _probe_target(hub: str) -> tuple[str, int]:
    """The host:port a request to the hub would open first: the proxy if one applies."""
    import urllib.request

    url = _hub_endpoint(hub)
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (80 if parts.scheme == "http" else 443)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        if "://" not in proxy:
            proxy = "http://" + proxy
        pparts = urlsplit(proxy)
        if pparts.hostname:
            return pparts.hostname, pparts.port or (443 if pparts.scheme == "https" else 80)
    return host, port


def _hub_reachable(hub: str) -> bool:
    """One TCP connect to the hub (or its proxy), at most ~2 s, cached for the process.

    DNS lookups ignore socket timeouts, so the connect runs in a daemon thread that we
    stop waiting for after the deadline.
    """
    hub = normalize_hub(hub)
    with _probe_lock:
        if hub in _probe_cache:
            return _probe_cache[hub]
    result: list[bool] = []

    def probe() -> None:
        try:
            host, port = _probe_target(hub)
            with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
                result.append(True)
        except Exception:  # noqa: BLE001 - any failure to connect means unreachable
            result.append(False)

    thread = threading.Thread(target=probe, name=f"rag-eval-probe-{hub}", daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S)
    reachable = bool(result and result[0])
    with _probe_lock:
        _probe_cache[hub] = reachable
    return reachable


def _reset_probe_cache() -> None:
    """Forget probe results (tests; or after the network came back)."""
    with _probe_lock:
        _probe_cache.clear()


def is_offline(hub: str | None = None) -> bool:
    """Whether to stay off the network: an offline env flag is set, or the hub is unreachable.

    With ``hub`` given only that hub's flags (plus ``RAG_EVAL_OFFLINE``) and probe count, so
    ``HF_HUB_OFFLINE=1`` does not stop ModelScope downloads; without it any flag counts and
    the Hugging Face hub is probed.
    """
    if any(_flag(f) for f in _GLOBAL_OFFLINE_FLAGS):
        return True
    if hub is None:
        if any(_flag(f) for flags in _HUB_OFFLINE_FLAGS.values() for f in flags):
            return True
        return not _hub_reachable(HUGGINGFACE)
    hub = normalize_hub(hub)
    if any(_flag(f) for f in _HUB_OFFLINE_FLAGS[hub]):
        return True
    return not _hub_reachable(hub)


def _mark_offline(hub: str) -> None:
    """Tell the HF libraries to stay offline too, so a later load cannot hang on retries.

    The env vars only work for modules imported afterwards; huggingface_hub and datasets read
    them at import, so already-imported ones get their module flag set as well.
    """
    if hub != HUGGINGFACE and not any(_flag(f) for f in _GLOBAL_OFFLINE_FLAGS):
        return  # ModelScope being down says nothing about the HF hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if not _flag("HF_HUB_OFFLINE"):
        return  # the user explicitly said HF_HUB_OFFLINE=0: leave the libraries alone
    _compat.set_hf_offline_flags(hub=True, datasets=_flag("HF_DATASETS_OFFLINE"))


# --------------------------------------------------------------------------- local folders


def _looks_like_path(value: str) -> bool:
    """True for things no hub id looks like (hub ids are ``name`` or ``org/name``)."""
    return (
        value.startswith(("/", "./", "../", "~"))
        or value in (".", "..")
        or "\\" in value
        or (len(value) > 1 and value[1] == ":")  # C:... on Windows
        or value.count("/") > 1
    )


def _local_dir(value: str) -> Path | None:
    path = Path(value).expanduser()
    return path.resolve() if path.is_dir() else None


def local_fingerprint(folder: Path) -> str:
    """Short content hash, so two different models in same-named folders never share results.

    Hashes every file's relative path and size, plus the bytes of small ``*.json`` files
    (configs, tokenizers' settings) -- cheap even for multi-GB weights.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    entries: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _FINGERPRINT_SKIP_DIRS)
        for name in files:
            full = Path(root) / name
            entries.append((full.relative_to(folder).as_posix(), full))
    for rel, full in sorted(entries):
        try:
            size = full.stat().st_size
        except OSError:
            continue  # dangling symlink: not part of the model
        digest.update(f"{rel}\0{size}\n".encode())
        if rel.endswith(".json") and size <= _SMALL_JSON_BYTES:
            try:
                digest.update(full.read_bytes())
            except OSError:
                pass
    return digest.hexdigest()[:10]


def check_local_path(kind: str, value: str) -> None:
    """A value that can only be a local path (see :func:`_looks_like_path`) must exist: one line now, before
    anything slower (a hub, a dataset) is looked at."""
    value = str(value or "").strip()
    if value and _local_dir(value) is None and _looks_like_path(value):
        raise _path_not_found(kind, value)


def _path_not_found(kind: str, value: str) -> HubError:
    field = "model_name_or_path" if kind == "model" else "the dataset path"
    return HubError(
        f"{kind} path {value!r} not found (resolved to {Path(value).expanduser().absolute()}): "
        f"fix {field} to point at an existing folder, or give a hub id like 'org/name'"
    )


# --------------------------------------------------------------------------- hub lookups


def _hf_cache_dir() -> str:
    """The HF hub cache, read from the env now (huggingface_hub freezes it at import)."""
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return os.path.expandvars(os.path.expanduser(env))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    return os.path.join(os.path.expandvars(os.path.expanduser(home)), "hub")


def _ms_cache_dir() -> str:
    """ModelScope's cache root (``MODELSCOPE_CACHE``, else ~/.cache/modelscope), read now.

    modelscope_hub reads the env var once into a process-wide ``HubConfig``, so without an
    explicit ``cache_dir`` a later change of ``MODELSCOPE_CACHE`` would be ignored. The old
    SDK's default ``~/.cache/modelscope/hub/models/...`` is still found under this root.
    """
    env = os.environ.get("MODELSCOPE_CACHE")
    return (
        os.path.expanduser(env)
        if env
        else os.path.join(os.path.expanduser("~"), ".cache", "modelscope")
    )


def download_command(kind: str, repo_id: str, hub: str, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision else ""
    if hub == HUGGINGFACE:
        rtype = " --repo-type dataset" if kind == "dataset" else ""
        return f"hf download {repo_id}{rtype}{rev}"
    # --model/--dataset: deprecated in modelscope 1.40 but understood by old and new CLIs alike
    return f"modelscope download --{kind} {repo_id}{rev}"


def exc_names(exc: BaseException) -> set[str]:
    """Class names over the exception and its causes (hub libraries wrap each other's errors)."""
    names: set[str] = set()
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        names.update(c.__name__ for c in type(cur).__mro__)
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return names


def _hub_error(
    kind: str, repo_id: str, hub: str, revision: str | None, exc: BaseException, offline: bool
) -> HubError:
    """Map a hub library's exception to one actionable line."""
    names = exc_names(exc)
    cache = _hf_cache_dir() if hub == HUGGINGFACE else _ms_cache_dir()
    cache_env = "HF_HUB_CACHE" if hub == HUGGINGFACE else "MODELSCOPE_CACHE"
    cmd = download_command(kind, repo_id, hub, revision)
    what = f"{kind} {repo_id!r}" + (f" (revision {revision!r})" if revision else "")
    local_fix = (
        "set model_name_or_path to a local folder"
        if kind == "model"
        else "use a local copy of the data"
    )
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if "IncompleteSnapshotError" in names:
        return HubError(
            f"{what} is only partly in the local {hub} cache ({cache}) and the hub cannot be "
            f"reached: finish the download where there is network ({cmd}) or {local_fix}"
        )
    if names & {"HFValidationError", "InvalidParameter"}:
        return HubError(
            f"{kind} id {repo_id!r} is not a valid {hub} id ({one_line(exc, 200)}): "
            f"use 'org/name', or a path starting with ./ or / for a local folder"
        )
    if offline or names & {"CacheNotFound", "LocalEntryNotFoundError", "OfflineModeIsEnabled"}:
        reason = "(offline)" if offline else f"({one_line(exc, 200)})"
        return HubError(
            f"{what} is not in the local {hub} cache ({cache}) and the hub cannot be reached "
            f"{reason}: download it where there is network ({cmd}) and copy the cache here "
            f"(or point {cache_env} at it), or {local_fix}"
        )
    if "GatedRepoError" in names:
        return HubError(
            f"{what} on {hub} is gated: accept its terms on the hub page and log in "
            f"(hf auth login, or set HF_TOKEN), or {local_fix}"
        )
    if "RevisionNotFoundError" in names:
        return HubError(
            f"{what} exists on {hub} but the revision does not: fix or drop the revision"
        )
    if names & {"RepositoryNotFoundError", "NotExistError"} or status == 404:
        return HubError(
            f"{what} was not found on {hub} (or it is private): check the id and the hub "
            f"setting, log in if it is private, or {local_fix}"
        )
    if names & {"AuthenticationError", "PermissionDeniedError"} or status in (401, 403):
        login = "hf auth login" if hub == HUGGINGFACE else "modelscope login"
        return HubError(f"{what} on {hub} needs access rights: log in ({login}) or {local_fix}")
    return HubError(
        f"could not get {what} from {hub} ({type(exc).__name__}: {one_line(exc, 200)}): "
        f"check the network or the id, or download it where there is network ({cmd}) "
        f"or {local_fix}"
    )


def _hf_snapshot(repo_id: str, repo_type: str, revision: str, offline: bool) -> str:
    if offline:
        _mark_offline(HUGGINGFACE)  # before the import, so huggingface_hub reads it
    from huggingface_hub import snapshot_download

    return snapshot_download(
        repo_id=repo_id,
        repo_type=repo_type,
        revision=revision,
        cache_dir=_hf_cache_dir(),
        local_files_only=offline,
    )


def _ms_snapshot(repo_id: str, repo_type: str, revision: str | None, offline: bool) -> str:
    if offline:
        _mark_offline(MODELSCOPE)
    # ``modelscope.snapshot_download`` is a lazy alias of this; its dataset_snapshot_download
    # drops ``local_files_only``, so datasets go through snapshot_download(repo_type=...) too.
    from modelscope.hub.snapshot_download import snapshot_download

    return snapshot_download(
        repo_id=repo_id,
        repo_type=repo_type,
        revision=revision,
        cache_dir=_ms_cache_dir(),
        local_files_only=offline,
    )


def _hub_revision(path: Path, hub: str, revision: str | None) -> str:
    """The snapshot folder's name where the cache has one (HF: the commit hash)."""
    if path.parent.name == "snapshots":
        return path.name
    return revision or _DEFAULT_REVISION[hub]


def _resolve(kind: str, repo_id: str, hub: str, revision: str | None) -> tuple[Path, str, str]:
    """Shared logic of resolve_model / resolve_dataset: (path, revision, source)."""
    value = str(repo_id or "").strip()
    if not value:
        raise HubError(f"{kind} id is empty: give a hub id like 'org/name' or a local folder")
    local = _local_dir(value)
    if local is not None:
        return local, "local-" + local_fingerprint(local), "local"
    if _looks_like_path(value):
        raise _path_not_found(kind, value)
    hub = normalize_hub(hub)
    offline = is_offline(hub)
    repo_type = "dataset" if kind == "dataset" else "model"
    try:
        if hub == HUGGINGFACE:
            raw = _hf_snapshot(value, repo_type, revision or _DEFAULT_REVISION[hub], offline)
        else:
            raw = _ms_snapshot(value, repo_type, revision, offline)
    except HubError:
        raise
    except Exception as exc:  # every hub failure becomes one actionable line
        raise _hub_error(kind, value, hub, revision, exc, offline) from exc
    path = Path(raw)
    if not path.is_dir():
        raise HubError(
            f"{kind} {value!r} resolved on {hub} to {path}, which is not a folder: "
            f"clear that cache entry and download it again ({download_command(kind, value, hub, revision)})"
        )
    return path, _hub_revision(path, hub, revision), hub


def resolve_model(
    model_id: str, hub: str = "modelscope", revision: str | None = None
) -> ResolvedModel:
    """A local folder for ``model_id``: an existing directory as is, else the hub's cache.

    Offline (see :func:`is_offline`) only the cache is read, so this never hangs.
    """
    path, rev, source = _resolve("model", model_id, hub, revision)
    return ResolvedModel(model_id=model_id, path=path, revision=rev, source=source)


def resolve_dataset(repo_id: str, hub: str = "huggingface", revision: str | None = None) -> Path:
    """A local folder for a dataset repo: an existing directory as is, else the hub's cache."""
    return dataset_snapshot(repo_id, hub, revision)[0]


def dataset_snapshot(repo_id: str, hub: str = "huggingface", revision: str | None = None) -> tuple[Path, str]:
    """:func:`resolve_dataset`, and the revision that served it: the snapshot's commit on Hugging Face,
    the branch or tag on ModelScope (``master`` unless one is asked), ``local-<fingerprint>`` for a folder."""
    path, rev, _source = _resolve("dataset", repo_id, hub, revision)
    return path, rev
