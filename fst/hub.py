"""Hub integration: safe ``from_pretrained``, ``save_pretrained``, ``push_to_hub``.

Built on ``huggingface_hub.ModelHubMixin``, with the loading path replaced: only
``config.json`` + ``model.safetensors`` are read, the config is validated before
any allocation, tensors are checked (names, shapes, dtypes, finiteness) before
they reach the network, and loading is strict. Pickle files are never opened.
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import torch
from huggingface_hub import ModelHubMixin
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import HFValidationError, validate_repo_id
from safetensors.torch import save_file

from . import catalog, settings
from .config import BaseConfig
from .errors import HubError, HubUnreachable, ModelLoadError, RepoNotFoundError
from .hub_access import HUB_OFFLINE_HINT, endpoint, hub_download, is_offline
from .safeload import (CONFIG_NAME, MAX_WEIGHTS_BYTES, WEIGHTS_NAME, contained_file, load_weights,
                       model_folder_boundary, refuse_pickle)

logger = logging.getLogger(__name__)

T = TypeVar("T", bound="SafeHubMixin")

DOWNLOAD_WORKERS = 4                  # model downloads that may run at once (each bounded by the deadline)
_downloads: concurrent.futures.ThreadPoolExecutor | None = None   # made on the first download
_downloads_lock = threading.Lock()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU.

    A given device is checked: a misspelt name (``banana``) or a device this machine does
    not have (``cuda`` without CUDA, ``cuda:3`` with one GPU) is a ValueError saying what to use.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {str(device)[:40]!r}; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine "
                             f"(torch {torch.__version__}); use cpu")
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s) "
                             f"(cuda:0..cuda:{count - 1})")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine; use cpu")
    return resolved


class SafeHubMixin(ModelHubMixin):
    """Hub I/O for fst models. Subclasses set ``config_class`` and build from ``self.config``."""

    config_class: ClassVar[type[BaseConfig]]
    network_class: ClassVar[type[torch.nn.Module]]   # built from the config; its tensors are the file's
    config: BaseConfig
    _device_lock: threading.Lock

    def _setup(self, config: BaseConfig | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> None:
        """Validate the config (an instance, a mapping, or its fields) and build the network."""
        name = type(self).__name__
        if config is None:
            config = self.config_class.from_dict(fields, f"{name} arguments")
        elif isinstance(config, Mapping):
            config = self.config_class.from_dict({**config, **fields}, f"{name} config")
        elif fields:
            raise TypeError(f"pass either a config or its fields, not both ({', '.join(sorted(fields))})")
        self.config = config
        self.net = self.network_class(config)
        self._device_lock = threading.Lock()

    # The safetensors file holds the bare network's tensors.
    def state_dict(self, *args: Any, **kwargs: Any):  # noqa: D102
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):  # noqa: D102
        return self.net.load_state_dict(state_dict, strict=strict, assign=assign)

    # ------------------------------------------------------------------ saving
    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        config: dict | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        half_precision: bool = False,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """Write ``config.json``, ``model.safetensors`` (fp16 with ``half_precision``) and,
        when ``model_card_kwargs`` are given, a model card ``README.md``."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        config_dict = self.config.to_dict()
        if config:
            config_dict.update({k: v for k, v in config.items() if k in config_dict})
        _atomic_write_text(folder / CONFIG_NAME, json.dumps(config_dict, indent=2, sort_keys=True) + "\n")
        dtype = torch.float16 if half_precision else torch.float32
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.tensors_to_save().items()}
        tmp = folder / (WEIGHTS_NAME + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        os.chmod(tmp, 0o666 & ~_umask())   # safetensors writes 0600; a shared models folder must be readable
        os.replace(tmp, folder / WEIGHTS_NAME)
        if model_card_kwargs is not None:
            from .model_card import render_model_card  # local: jinja only needed when publishing

            _atomic_write_text(folder / "README.md", render_model_card(**model_card_kwargs))
        if push_to_hub:
            return self.push_to_hub(repo_id or folder.name, config=config, model_card_kwargs=model_card_kwargs,
                                    **push_to_hub_kwargs)
        return None

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls: type[T],
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        device: str | torch.device | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        token: str | bool | None = None,
        local_files_only: bool = False,
        **unused: Any,
    ) -> T:
        """Load a model from a local folder or a Hub repo id (``user/name``).

        The argument is a folder when it exists, or when it starts with ``.``, ``/`` or
        ``~`` or has more than one ``/``; otherwise it is a Hub repo id (or the name of an
        embedded default). Only ``config.json`` and ``model.safetensors`` are read;
        everything is validated before use (see SECURITY.md). When the Hub cannot be
        reached (detected within ``$FST_HUB_TIMEOUT`` seconds, then remembered; see :mod:`fst.settings`),
        a copy in the local Hub cache or the embedded default (``models/``) is used.
        """
        if unused:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(unused))}")
        resolve_device(device)   # a bad device is reported before any download
        options = dict(cache_dir=cache_dir, token=token, local_files_only=local_files_only)   # also for a base
        source = str(pretrained_model_name_or_path)
        local = Path(source).expanduser()
        if local.is_dir():
            return cls._from_folder(local, model_folder_boundary(local), device, options)
        if names_a_folder(source):
            raise ModelLoadError(_no_folder_message(source, local))
        entry = catalog.find_entry(source)
        if entry is not None and source in (entry.name, entry.folder):   # an embedded default
            return cls._from_folder(entry.path, entry.path, device, options)
        try:
            validate_repo_id(source)
        except HFValidationError:
            raise ModelLoadError(f"{source!r} is neither a model folder nor a valid Hub repo id (user/name)") from None
        kwargs = dict(revision=revision, cache_dir=cache_dir, force_download=force_download, token=token)
        try:
            config_path, weights_path, _ = download_with_deadline(source, local_files_only=local_files_only, **kwargs)
        except HubError as exc:
            cached = None if local_files_only or force_download else cached_download(source, **kwargs)
            if cached is not None:
                logger.warning("%s: %s; using the copy in the local Hub cache", source, exc)
                return cls._load(cached[0], cached[1], device, options)
            if entry is None:
                raise _not_found_anywhere(source, exc) from None
            logger.warning("%s: %s; using the embedded copy in %s", source, exc, entry.path)
            return cls._from_folder(entry.path, entry.path, device, options)
        return cls._load(config_path, weights_path, device, options)

    @classmethod
    def _from_folder(cls: type[T], folder: Path, boundary: Path, device, options: Mapping[str, Any]) -> T:
        if not (folder / WEIGHTS_NAME).exists() and not (folder / WEIGHTS_NAME).is_symlink():
            refuse_pickle(folder)
        weights = contained_file(folder, WEIGHTS_NAME, allowed_root=boundary)
        config = contained_file(folder, CONFIG_NAME, allowed_root=boundary)
        return cls._load(config, weights, device, options)

    @classmethod
    def _load(cls: type[T], config_path: Path, weights_path: Path, device, options: Mapping[str, Any]) -> T:
        config = cls.config_class.from_json_bytes(_read_bounded(config_path, 1 << 20), CONFIG_NAME)
        provided = cls.base_tensors(config, config_path.parent, options)
        with torch.device("meta"):
            expected = {k: v.shape for k, v in cls(config).state_dict().items() if k not in provided}
        tensors = load_weights(weights_path, expected, config=config, hint=cls.explain_mismatch)
        model = cls(config)
        model.load_state_dict({**provided, **tensors}, strict=True)
        model.eval()
        return model.to(resolve_device(device))

    @staticmethod
    def explain_mismatch(config: Any, found: Mapping[str, tuple[int, ...]]) -> str | None:
        """A hint naming the config value that disagrees with the weights (override)."""
        return None

    @classmethod
    def base_tensors(cls, config: Any, folder: Path, options: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Tensors the config takes from another network (an add-on's base, loaded with the Hub
        ``options`` of this load), checked; the weights file holds the others. None by default."""
        return {}

    def tensors_to_save(self) -> dict[str, torch.Tensor]:
        """The tensors ``save_pretrained`` writes: the whole network (override for add-ons)."""
        return self.state_dict()

    # ------------------------------------------------------------------ device
    def to_device(self, device: str | torch.device | None) -> "SafeHubMixin":
        """Move the model (thread-safe), returning it."""
        with self._device_lock:
            return self.to(resolve_device(device))  # type: ignore[attr-defined]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device  # type: ignore[attr-defined]


def names_a_folder(source: str) -> bool:
    """True when ``source`` can only be a folder: it starts with ``.``, ``/`` or ``~``, has more
    than one ``/``, or uses the platform's own separator (which Hub repo ids never contain)."""
    return (source.startswith((".", "/", "~")) or source.count("/") > 1
            or (os.sep != "/" and os.sep in source))


def _no_folder_message(source: str, local: Path) -> str:
    where = local if local.is_absolute() else Path.cwd() / local
    if local.exists():
        return f"{source!r} is a file, not a model folder (a folder with config.json and model.safetensors)"
    return f"no model folder {source!r}: {where} does not exist"


def _not_found_anywhere(source: str, error: HubError) -> HubError:
    """The error for a Hub id that neither the Hub, the local Hub cache nor a folder provides:
    what was asked, what went wrong, what to do (other Hub errors are clear as they are)."""
    if not isinstance(error, (HubUnreachable, RepoNotFoundError)):
        return error
    message = f"cannot load {source!r}: {error}"
    if isinstance(error, HubUnreachable):
        message += (", and it is not in the local Hub cache; check your network connection (or HF_ENDPOINT) "
                    f"and try again, or {HUB_OFFLINE_HINT}")
    return type(error)(f"{message}. There is no local folder {source!r} either (looked in {Path.cwd()})")


def _read_bounded(path: Path, limit: int) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ModelLoadError(f"{path.name} is larger than {limit} bytes; refusing to read it")
    return data


def _umask() -> int:
    """The process's umask (read from /proc on Linux; elsewhere set and restored at once)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _download_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that run model downloads, started on the first one (never at import)."""
    global _downloads
    with _downloads_lock:
        if _downloads is None:
            _downloads = concurrent.futures.ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS,
                                                               thread_name_prefix="fst-hub")
        return _downloads


def download_with_deadline(repo_id: str, **kwargs: Any) -> tuple[Path, Path, Path]:
    """Fetch ``config.json`` and ``model.safetensors`` of a Hub repo into the local Hub cache;
    returns their paths and the repo's cache folder. ``kwargs``: ``hf_hub_download``'s (revision,
    cache_dir, token, force_download, local_files_only).

    Bounded by :func:`fst.settings.hub_deadline` seconds (``$FST_HUB_DEADLINE``): past it a
    HubError is raised while the worker may finish in the background (the cache is written
    atomically, so that is harmless). Every Hub failure is a clear HubError (RepoNotFoundError,
    HubUnreachable, ...); a repo that is not an fst model is a ModelLoadError.
    """
    deadline = settings.hub_deadline()
    future = _download_pool().submit(_download, repo_id, **kwargs)
    try:
        return future.result(timeout=deadline)
    except concurrent.futures.TimeoutError:
        raise HubError(f"downloading {repo_id} from the Hub took over {deadline:.0f} s (it goes on in the "
                       "background); check your connection, or try again in a while") from None


def cached_download(repo_id: str, **kwargs: Any) -> tuple[Path, Path, Path] | None:
    """What :func:`download_with_deadline` returns, taken from the local Hub cache only (no
    request): the copy of the repo already there, if complete, else None."""
    kwargs.pop("force_download", None)
    try:
        return _download(repo_id, local_files_only=True, **kwargs)
    except (HubError, ModelLoadError):
        return None


def _download(repo_id: str, **kwargs: Any) -> tuple[Path, Path, Path]:
    """Fetch config.json and model.safetensors; map every Hub failure to a clear HubError."""
    try:
        config_path = Path(_hub_file(repo_id, CONFIG_NAME, **kwargs))
        try:
            weights_path = Path(_hub_file(repo_id, WEIGHTS_NAME, **kwargs))
        except hf_errors.LocalEntryNotFoundError:
            raise
        except hf_errors.EntryNotFoundError:
            message = _missing_weights_message(repo_id, kwargs.get("revision"), kwargs.get("token"))
            raise ModelLoadError(message) from None
    except ModelLoadError:
        raise
    except hf_errors.GatedRepoError:
        raise HubError(f"{repo_id} is a gated repository: accept its terms on the Hub and pass a token") from None
    except hf_errors.RepositoryNotFoundError:
        raise RepoNotFoundError(f"model repository {repo_id!r} not found on the Hub (or it is private: "
                                "log in with `hf auth login` or pass token=...)") from None
    except hf_errors.RevisionNotFoundError:
        raise HubError(f"revision {kwargs.get('revision')!r} not found in {repo_id}") from None
    except hf_errors.LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: test it first)
        if is_offline():
            raise HubError(f"{repo_id} is not in the local cache and HF_HUB_OFFLINE is set; "
                           "unset it to download the model") from None
        raise HubUnreachable(f"the Hub ({endpoint()}) could not be reached and {repo_id} is not in the local "
                             "cache; check your network connection") from None
    except hf_errors.EntryNotFoundError:
        raise HubError(f"{repo_id} has no {CONFIG_NAME}; it is not an fst model repository") from None
    except hf_errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise HubError(f"the Hub answered HTTP {status} for {repo_id}; try again later") from None
    except OSError as exc:  # disk full, permissions on the cache
        raise HubError(f"could not store {repo_id} in the cache: {exc.strerror or exc}") from None
    except Exception as exc:  # network stack errors (httpx) surface with varied types
        raise HubError(f"could not download {repo_id}: {type(exc).__name__}: {str(exc)[:200]}") from None
    # Cache files are symlinks snapshots/<rev>/f -> ../../blobs/<sha>: allow the repo cache folder.
    repo_root = config_path.parent.parent.parent
    for path, name in ((config_path, CONFIG_NAME), (weights_path, WEIGHTS_NAME)):
        contained_file(path.parent, name, allowed_root=repo_root)
    if weights_path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise ModelLoadError(f"{WEIGHTS_NAME} of {repo_id} is too large")
    return config_path, weights_path, repo_root


def _hub_file(repo_id: str, filename: str, **kwargs: Any) -> str:
    return hub_download(repo_id, filename, **kwargs)


def _missing_weights_message(repo_id: str, revision: str | None, token: Any) -> str:
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(repo_id, revision=revision, token=token)
    except Exception:  # noqa: BLE001 - the message below is still right without the listing
        files = []
    pickles = [f for f in files if f.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
    if pickles:
        return (f"no {WEIGHTS_NAME} in {repo_id}; pickle checkpoints ({', '.join(pickles[:3])}) are not "
                "loaded for security reasons - convert to safetensors")
    return f"no {WEIGHTS_NAME} in {repo_id}; an fst model repository needs config.json and model.safetensors"
