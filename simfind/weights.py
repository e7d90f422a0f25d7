"""Where a CLIP model's weights would come from, answered from files and one network probe, without torch.

Importing open_clip imports torch: seconds, spent for nothing when the weights cannot be had. So open_clip's
registry (model names, pretrained tags and where each tag's weights live) is read from the installed package's
files: the model configs are JSON; `pretrained.py` is plain dictionaries, run here with every import outside the
standard library replaced by an inert stand-in. Anything unexpected returns None ("unsure"), and the caller
falls back to importing open_clip. Weights are looked for where open_clip's download would put them: the
Hugging Face cache (models--ORG--REPO/snapshots/*/FILE) or open_clip's own cache for URL weights.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import socket
import sys
import types
from dataclasses import dataclass
from functools import lru_cache
from importlib.machinery import SourceFileLoader
from urllib.parse import urlparse

HUB_HOST = "huggingface.co"
PROBE_TIMEOUT_S = 2.0
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"  # open_clip's defaults for a hub repo (open_clip.constants)
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
HF_CONFIG_NAME = "open_clip_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class Registry:
    pretrained: dict[str, dict[str, dict]]  # model name -> tag -> config (url, hf_hub, file, ...)
    config_dir: str = ""  # open_clip's model_configs folder, read only when asked about a name without tags
    listed: frozenset[str] | None = None  # open_clip.list_models(), where open_clip was imported already

    def tag_cfg(self, name: str, tag: str) -> dict | None:
        """open_clip's get_pretrained_cfg: tags are matched lower-cased, with '-' as '_'."""
        return self.pretrained.get(name, {}).get(tag.lower().replace("-", "_"))

    def has_model(self, name: str) -> bool:
        """In open_clip.list_models(). Every name with pretrained tags has a config, so the configs are read only
        for a name without tags."""
        if self.listed is not None:
            return name in self.listed
        return name in self.pretrained or _is_model_config(os.path.join(self.config_dir, name + ".json"))

    def models(self) -> frozenset[str]:
        """Every model name, as open_clip.list_models() gives them."""
        if self.listed is not None:
            return self.listed
        return frozenset(e.name[: -len(".json")] for e in os.scandir(self.config_dir)
                         if e.name.endswith(".json") and _is_model_config(e.path))


@lru_cache(maxsize=1)
def registry() -> Registry | None:
    """open_clip's model names and pretrained tags; None when open_clip is missing or its files are not as
    expected (the caller then imports open_clip and asks it)."""
    oc = sys.modules.get("open_clip")
    if oc is not None:  # imported already: its own answer costs nothing and includes added configs
        try:
            from open_clip import pretrained

            return Registry(dict(pretrained._PRETRAINED), listed=frozenset(oc.list_models()))
        except (ImportError, AttributeError):
            return None
    try:
        spec = importlib.util.find_spec("open_clip")  # finds the package without running it
        if spec is None or not spec.submodule_search_locations:
            return None
        root = next(iter(spec.submodule_search_locations))
        table = _run_plain(root, "pretrained")["_PRETRAINED"]
        config_dir = os.path.join(root, "model_configs")
        if not (isinstance(table, dict) and all(isinstance(v, dict) for v in table.values())
                and os.path.isdir(config_dir)):
            return None
        return Registry(table, config_dir)
    except Exception:  # noqa: BLE001 - any surprise in another package's files means "unsure", never a failure
        return None


def _is_model_config(path: str) -> bool:
    """As open_clip's _rescan_model_configs: a JSON config with embed_dim, vision_cfg and text_cfg."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg"))


class _Inert(types.ModuleType):
    """Stands in for a third-party module (torch, tqdm, huggingface_hub): any attribute is another stand-in, and
    calling one returns one, so module-level wiring such as `partial(hf_hub_download, ...)` runs harmlessly."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        return _Inert(self.__name__ + "()")


class _Unsure(Exception):
    pass


def _run_plain(root: str, name: str, depth: int = 0) -> dict:
    """Run open_clip/NAME.py as plain Python: standard-library imports are real, third-party ones inert, and
    `from .sibling import x` runs the sibling the same way. Returns the module's namespace."""
    if depth > 3 or not name.isidentifier():
        raise _Unsure(name)
    path = os.path.join(root, name + ".py")
    code = SourceFileLoader(f"open_clip.{name}", path).get_code(f"open_clip.{name}")  # the cached bytecode if valid
    stdlib = getattr(sys, "stdlib_module_names", frozenset())

    def importer(mod, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            if mod.partition(".")[0] in stdlib:
                return builtins.__import__(mod, globals, locals, fromlist, level)
            return _Inert(mod)
        if level == 1 and mod and "." not in mod:
            sibling = types.ModuleType(f"open_clip.{mod}")
            vars(sibling).update(_run_plain(root, mod, depth + 1))
            return sibling
        raise _Unsure(f"from {'.' * level}{mod} import ...")

    namespace = {"__name__": f"open_clip.{name}", "__file__": path, "__package__": "open_clip",
                 "__builtins__": dict(vars(builtins), __import__=importer)}
    exec(code, namespace)  # noqa: S102 - the installed package's own code, minus imports
    return namespace


def offline() -> bool:
    """huggingface_hub's offline switch (HF_HUB_OFFLINE, or the older TRANSFORMERS_OFFLINE)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE


def hub_cache() -> str:
    """huggingface_hub's cache folder, from the same variables in the same order."""
    home = os.path.expanduser(os.environ.get("HF_HOME")
                              or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"))
    legacy = os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return os.path.expandvars(os.path.expanduser(os.environ.get("HF_HUB_CACHE") or legacy))


def clip_url_cache() -> str:
    """Where open_clip's download_pretrained_from_url keeps URL weights when no cache_dir is given."""
    return os.path.expanduser("~/.cache/clip")


def in_hub_cache(repo_id: str, filenames: tuple[str, ...]) -> str | None:
    """The first of `filenames` found in any cached snapshot of `repo_id`, or None."""
    snapshots = os.path.join(hub_cache(), "models--" + repo_id.replace("/", "--"), "snapshots")
    try:
        revisions = sorted(os.scandir(snapshots), key=lambda e: e.name)
    except OSError:
        return None
    for filename in filenames:
        for rev in revisions:
            candidate = os.path.join(rev.path, filename)
            if os.path.isfile(candidate):
                return candidate
    return None


def hub_weight_names(filename: str | None) -> tuple[str, ...]:
    """The files open_clip's download_pretrained_from_hf tries for `filename`, safetensors first."""
    filename = filename or HF_WEIGHTS_NAME
    if filename == HF_WEIGHTS_NAME:
        return HF_SAFE_WEIGHTS_NAME, filename
    if filename.endswith((".bin", ".pth")):
        return filename[:-4] + ".safetensors", filename
    return (filename,)


@dataclass(frozen=True)
class Source:
    """Where a tag's weights are: a file found (`found`), else the host they would come from and what was
    looked at (`looked`: cache paths; a change there is a change of situation)."""

    found: str | None
    host: str
    looked: tuple[str, ...]


def locate_tag(cfg: dict, has_hub_client: bool) -> Source:
    """As open_clip's download_pretrained: a `file`; else the hub repo (when huggingface_hub is installed);
    else the URL, cached under its base name."""
    if cfg.get("file"):
        path = cfg["file"]
        return Source(path if os.path.isfile(path) else None, "", (path,))
    hub, url = cfg.get("hf_hub") or "", cfg.get("url") or ""
    if hub and (has_hub_client or not url):
        repo_id, filename = os.path.split(hub)
        return locate_hub(repo_id, hub_weight_names(filename))
    if url:
        path = os.path.join(clip_url_cache(), os.path.basename(urlparse(url).path))
        return Source(path if os.path.isfile(path) else None, urlparse(url).hostname or "", (path,))
    return Source(None, "", ())


def locate_hub(repo_id: str, filenames: tuple[str, ...]) -> Source:
    found = in_hub_cache(repo_id, filenames)
    looked = tuple(os.path.join(hub_cache(), "models--" + repo_id.replace("/", "--"), "snapshots", "*", f)
                   for f in filenames)
    return Source(found, HUB_HOST, looked)


def has_hub_client() -> bool:
    return importlib.util.find_spec("huggingface_hub") is not None


def reachable(host: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether `host`:443 accepts a connection within `timeout` seconds."""
    if not host:
        return False
    try:  # an ASCII name goes to the resolver as bytes, which spares the IDNA codec's imports
        with socket.create_connection((host.encode("ascii") if host.isascii() else host, 443), timeout=timeout):
            return True
    except OSError:
        return False
