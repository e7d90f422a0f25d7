"""CLIP image and text embeddings through open_clip, loaded lazily (torch is imported only here).

Model specs: `NAME:TAG` (an open_clip model with its pretrained tag; weights from the Hugging Face cache),
`hf-hub:org/repo`, or `local-dir:/path` (a folder with open_clip_config.json and the weights).
Embeddings are L2-normalised float32. The pixel preparation that open_clip's transform does with
torchvision (resize, centre crop) is done by `prepare` on PIL images in the decode workers, so the model
process only converts, normalises and runs the forward pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import weights
from .errors import ModelUnavailable, UsageError
from .options import PRECISIONS, check_choice

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# ViT-B-32 is the cheapest CLIP that is good at near-duplicates: ~4.4 GFLOPs per image, 4x less than ViT-B-16.
# The LAION-2B tag is the strongest ViT-B-32 weights in open_clip that every mirror has.
DEFAULT_MODEL = "ViT-B-32:laion2b_s34b_b79k"


@dataclass(frozen=True)
class Preprocess:
    """What `prepare` needs from open_clip's preprocess config; plain values, cheap to send to workers."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    fill_color: int = 0


def prepare(image: Image.Image, pp: Preprocess) -> np.ndarray:
    """RGB PIL image -> (size, size, 3) uint8, as open_clip's Resize + CenterCrop (or squash/longest) would."""
    import numpy as np
    from PIL import Image as PILImage

    resample = {"bicubic": PILImage.BICUBIC, "bilinear": PILImage.BILINEAR, "random": PILImage.BICUBIC}.get(
        pp.interpolation, PILImage.BICUBIC
    )
    s = pp.size
    w, h = image.size
    if pp.resize_mode == "squash":
        return np.asarray(image.resize((s, s), resample), dtype=np.uint8)
    if pp.resize_mode == "longest":
        scale = s / max(w, h)
        im = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample)
        canvas = PILImage.new("RGB", (s, s), (pp.fill_color,) * 3)
        canvas.paste(im, ((s - im.width) // 2, (s - im.height) // 2))
        return np.asarray(canvas, dtype=np.uint8)
    # shortest side to s (torchvision Resize(int)), then centre crop: the crop box is resized directly, which
    # is the same up to rounding and cheaper than resizing the whole picture first
    if w <= h:
        nw, nh = s, int(s * h / w)
    else:
        nw, nh = int(s * w / h), s
    left, top = int(round((nw - s) / 2.0)), int(round((nh - s) / 2.0))
    sx, sy = w / nw, h / nh
    box = (left * sx, top * sy, (left + s) * sx, (top + s) * sy)
    return np.asarray(image.resize((s, s), resample, box=box, reducing_gap=3.0), dtype=np.uint8)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`NAME:TAG` -> (NAME, TAG); `hf-hub:...` and `local-dir:...` -> (spec, None)."""
    if spec.startswith("local-dir:"):
        path = os.path.abspath(os.path.expanduser(spec[len("local-dir:") :]))
        return "local-dir:" + path, None
    if spec.startswith("hf-hub:"):
        return spec, None
    name, sep, tag = spec.partition(":")
    if not sep or not name or not tag:
        raise UsageError(
            f"--model {spec!r}: name a pretrained tag (e.g. {DEFAULT_MODEL}), or use hf-hub:org/repo or local-dir:/path"
        )
    return name, tag


def canonical(spec: str) -> str:
    name, tag = parse_spec(spec)
    return f"{name}:{tag}" if tag else name


_LOCAL_DIR_FIX = "it needs open_clip_config.json and the weights (.safetensors, .bin or .pth)"


def _local_dir_problem(path: str) -> str | None:
    """What a local-dir: folder lacks (open_clip's local-dir loader needs both), or None."""
    if not os.path.isdir(path):
        return "no such folder"
    if not os.path.isfile(os.path.join(path, weights.HF_CONFIG_NAME)):
        return "open_clip_config.json is missing"
    if not any(n.endswith(weights.WEIGHT_SUFFIXES) for n in os.listdir(path)):
        return "no weights file"
    return None


def _check_local_dir(path: str) -> None:
    problem = _local_dir_problem(path)
    if problem:
        raise ModelUnavailable(f"--model local-dir:{path}: {problem}; {_LOCAL_DIR_FIX}")


def _check_registered(spec: str, name: str, tag: str | None, known_model: bool, known_tag: bool) -> None:
    if not known_model:
        raise UsageError(f"--model {spec!r}: unknown open_clip model {name!r}")
    if not known_tag and not os.path.isfile(tag or ""):
        raise UsageError(f"--model {spec!r}: {tag!r} is not a pretrained tag of {name} in open_clip")


def check_spec(spec: str) -> None:
    """Raise UsageError, before any heavy import, for a --model that can never work: a malformed spec, a
    local-dir: folder that is not a model, an unknown open_clip name or tag. Where open_clip's registry cannot be
    read without importing it, names and tags are left to load(), which checks them after the import."""
    name, tag = parse_spec(spec)
    if name.startswith("local-dir:"):
        path = name[len("local-dir:") :]
        problem = _local_dir_problem(path)
        if problem:
            raise UsageError(f"--model local-dir:{path}: {problem}; {_LOCAL_DIR_FIX}")
    elif not name.startswith("hf-hub:"):
        reg = weights.registry()
        if reg is not None:
            _check_registered(spec, name, tag, reg.has_model(name), reg.tag_cfg(name, tag or "") is not None)


@dataclass(frozen=True)
class Availability:
    """Whether a spec's weights can be had, decided from files and at most one network probe, without torch.
    `why` is None when they can (cached, a model folder, reachable for download, or not known before the
    import); otherwise `memo` names the situation checked, so that the warning about it is given once."""

    spec: str
    why: str | None
    memo: str = ""

    def error(self) -> ModelUnavailable:
        if self.spec.startswith("local-dir:"):
            return ModelUnavailable(f"--model {self.why}; {_LOCAL_DIR_FIX}")
        return _unavailable(self.spec, self.why or "")

    def warning(self) -> str:
        if self.spec.startswith("local-dir:"):
            problem = f"--model {self.why} ({_LOCAL_DIR_FIX})"
        else:
            problem = (f"CLIP weights for {self.spec} are not available ({self.why}); to have them, run once online "
                       "or pass --model local-dir:/path/to/model")
        return (f"warning: {problem}. Indexing hashes only; this index will not warn again until that changes, "
                "and --no-clip skips CLIP and this check")


def availability(spec: str) -> Availability:
    """Are the weights of `spec` on disk, or to be downloaded? Unavailable only when neither: the files are not
    where open_clip would load them from, and the hub is switched off (HF_HUB_OFFLINE) or cannot be reached."""
    name, tag = parse_spec(spec)
    spec = canonical(spec)
    if name.startswith("local-dir:"):
        path = name[len("local-dir:") :]
        problem = _local_dir_problem(path)
        return Availability(spec, None) if problem is None else _missing(spec, f"local-dir:{path}: {problem}", path)
    if name.startswith("hf-hub:"):
        repo_id = name[len("hf-hub:") :]
        config = weights.locate_hub(repo_id, (weights.HF_CONFIG_NAME,))
        source = weights.locate_hub(repo_id, weights.hub_weight_names(None))
        if config.found and source.found:
            return Availability(spec, None)
        looked = (*config.looked, *source.looked)
    else:
        if os.path.isfile(tag or ""):
            return Availability(spec, None)
        reg = weights.registry()
        cfg = reg.tag_cfg(name, tag or "") if reg is not None else None
        if not cfg:  # unknown to the registry, or the registry unreadable: load() decides after the import
            return Availability(spec, None)
        source = weights.locate_tag(cfg, weights.has_hub_client())
        if source.found:
            return Availability(spec, None)
        looked = source.looked
    if weights.offline():
        return _missing(spec, "offline and not in the cache", "HF_HUB_OFFLINE", *looked)
    if not weights.reachable(source.host):
        return _missing(spec, f"{source.host or 'the download host'} cannot be reached and not in the cache", *looked)
    return Availability(spec, None)


def _missing(spec: str, why: str, *looked: str) -> Availability:
    """Unavailable, with a memo of everything the answer rests on: when any of it changes, so does the memo."""
    return Availability(spec, why, "\n".join((spec, why, *looked)))


def _hub_reachable() -> bool:
    return weights.reachable(weights.HUB_HOST)


def _cache_only() -> None:
    """Make huggingface_hub use its cache and never the network: the env var for a first import, the constant
    for a module imported already (it reads the constant at call time)."""
    import sys

    os.environ["HF_HUB_OFFLINE"] = "1"
    hub = sys.modules.get("huggingface_hub")
    if hub is not None:
        hub.constants.HF_HUB_OFFLINE = True


def _unavailable(spec: str, why: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"CLIP weights for {spec} are not available ({why}); run once online to cache them, "
        "or pass --model local-dir:/path/to/model, or index with --no-clip"
    )


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps: MPS is not available")
    return device


class ClipModel:
    """A loaded open_clip model: images (prepared uint8 pixels) and texts -> L2-normalised float32 vectors."""

    def __init__(self, spec: str, model, tokenizer, preprocess: Preprocess, device: str, dim: int, precision: str,
                 agreement: float | None = None):
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.device = device
        self.dim = dim
        self.precision = precision
        self.agreement = agreement  # bf16 only: the lowest cosine to fp32 on the probe batch at load time
        import torch

        self._dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self._mean = torch.tensor(preprocess.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(preprocess.std, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255.0

    def tensor(self, pixels: np.ndarray):
        """(N, S, S, 3) uint8 -> normalised (N, 3, S, S) float tensor on the model's device."""
        import numpy as np
        import torch

        x = torch.from_numpy(np.require(pixels, np.uint8, ["C", "W"])).to(self.device).permute(0, 3, 1, 2).float()
        return ((x - self._mean) / self._std).to(self._dtype)

    def embed_tensor(self, x) -> np.ndarray:
        import numpy as np
        import torch

        with torch.inference_mode():
            feats = self.model.encode_image(x)
        feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        import numpy as np

        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_tensor(self.tensor(pixels))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        import numpy as np
        import torch

        tokens = self.tokenizer(texts).to(self.device)
        with torch.inference_mode():
            feats = self.model.encode_text(tokens)
        feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)


class LazyModel:
    """A model spec, loaded on first use: a re-index with nothing to embed never imports torch. Whether the
    weights can be had is asked first, from files (availability()), so that where they cannot, get() returns
    None (hashes only) without importing torch, and says so through `notify` unless the caller was told of that
    very situation already (`told`, a memo an index keeps); with `require` it raises ModelUnavailable instead.
    With `notify=None` nobody is listening (a quiet run): the situation is not remembered as told, so the next
    run that shows warnings shows it."""

    def __init__(self, spec: str, *, require: bool = False, device: str = "auto", precision: str = "auto",
                 threads: int | None = None, notify: Callable[[str], None] | None = lambda message: None):
        self.spec = canonical(spec)
        self._load = dict(spec=spec, device=device, precision=precision, threads=threads)
        self._require = require
        self._notify = notify
        self._model: ClipModel | None = None
        self._tried = False
        self._availability: Availability | None = None
        self.memo = ""  # after get(): the memo of the situation that kept the weights away, "" when none did

    @property
    def options(self) -> dict:
        """What load() is given: spec, device, precision, threads."""
        return dict(self._load)

    def check(self) -> None:
        """Fail early, before a scan: UsageError for a spec that can never work; ModelUnavailable when the
        weights cannot be had and `require`."""
        check_spec(self._load["spec"])
        if self._require:
            self._available()

    def _available(self) -> Availability:
        if self._availability is None:
            self._availability = availability(self._load["spec"])
        if self._availability.why is not None and self._require:
            raise self._availability.error()
        return self._availability

    def get(self, told: str | None = None) -> ClipModel | None:
        if not self._tried:
            self._tried = True
            found = self._available()
            if found.why is not None:
                if self._notify is None:  # untold: the memo stays as the index has it
                    self.memo = told or ""
                    return None
                self.memo = found.memo
                if found.memo != told:
                    self._notify(found.warning())
                return None
            try:
                self._model = load(**self._load, checked=True)
            except ModelUnavailable as e:
                if self._require:
                    raise
                if self._notify is not None:
                    self._notify(f"warning: {e}; indexing hashes only")
        return self._model


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 (reported by bench/bench_clip.py next to the bf16 figures)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# bf16 is kept only where it agrees with fp32 this closely on the probe batch (cosine of each embedding)
MIN_BF16_AGREEMENT = 0.999


def pick_precision(precision: str, device: str) -> str:
    """"auto" picks bf16 where the hardware runs it natively (AVX512-BF16/AMX CPUs, CUDA with bf16); load() then
    keeps it only if it agrees with fp32 on a probe batch. open_clip's bf16 weights (LayerNorm kept fp32) run
    ViT-B-32 about twice as fast as fp32 on such hardware with embeddings all but equal (bench/bench_clip.py
    prints both); torch autocast is slower than fp32 there, as it casts on every op."""
    check_choice("--precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    import torch

    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device == "cpu" and cpu_has_bf16() else "fp32"


def _probe_inputs(size: int, device: str):
    """A fixed, photo-like pair of images (smooth colour gradients with a disc and a little noise) and a text."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(2):
        c = rng.uniform(0, 1, (3, 3))
        img = c[:, 0, None, None] * xx + c[:, 1, None, None] * yy + c[:, 2, None, None] * (xx * yy)
        r = rng.uniform(0.1, 0.3)
        cx, cy = rng.uniform(0.3, 0.7, 2)
        img = img + 0.5 * (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r)
        images.append(img + rng.normal(0, 0.03, img.shape))
    x = torch.tensor(np.stack(images), dtype=torch.float32, device=device)
    x = (x - x.mean()) / x.std()  # roughly what the normalisation gives real photos
    return x, ["a photo of a dog on the grass"]


def _to_bf16(model, tokenizer, size: int, device: str) -> float:
    """Cast the weights to bf16 as open_clip's own "bf16" precision does (LayerNorm stays fp32) and return the
    lowest cosine between the bf16 and fp32 embeddings of a probe batch (two images, one text: a batch of texts
    takes a slow path in bf16 attention that costs far more than the check)."""
    import torch
    from open_clip.model import convert_weights_to_lp

    x, texts = _probe_inputs(size, device)
    tokens = tokenizer(texts).to(device)

    def embed():
        with torch.inference_mode():
            return [torch.nn.functional.normalize(model.encode_image(x.to(dtype)).float(), dim=-1),
                    torch.nn.functional.normalize(model.encode_text(tokens).float(), dim=-1)]

    dtype = torch.float32
    ref = embed()
    convert_weights_to_lp(model, dtype=torch.bfloat16)
    dtype = torch.bfloat16
    return min(float((r * lo).sum(-1).min()) for r, lo in zip(ref, embed()))


@contextmanager
def _no_random_init():
    """Every weight is overwritten by the checkpoint right after the model is built (open_clip loads it strictly:
    a missing key is an error), so the random initialisation is wasted: much of a ViT-B-32 load on a CPU. As
    transformers' no_init_weights does, torch.nn.init's fill functions do nothing while the model is built."""
    import torch

    names = ("uniform_", "normal_", "trunc_normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
             "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_")
    saved = {n: getattr(torch.nn.init, n) for n in names if hasattr(torch.nn.init, n)}
    for n in saved:
        setattr(torch.nn.init, n, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(torch.nn.init, n, fn)


def load(spec: str = DEFAULT_MODEL, *, device: str = "auto", threads: int | None = None, precision: str = "auto",
         checked: bool = False) -> ClipModel:
    """Load a CLIP model. Raises ModelUnavailable (weights missing) or UsageError (bad spec), both before torch is
    imported where files can tell (`checked`: the caller asked availability() already); never hangs on the
    network: the hub is probed for 2 s and, when unreachable, only the local cache is used."""
    name, tag = parse_spec(spec)
    if name.startswith("local-dir:"):
        _check_local_dir(name[len("local-dir:") :])
    else:
        if not checked:
            check_spec(spec)
            found = availability(spec)
            if found.why is not None:
                raise found.error()
        if weights.offline() or not _hub_reachable():
            _cache_only()
    import logging

    import numpy as np
    import open_clip
    import torch

    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    chosen, agreement = pick_precision(precision, dev), None
    if not name.startswith(("local-dir:", "hf-hub:")):
        if name not in open_clip.list_models():
            raise UsageError(f"--model {spec!r}: unknown open_clip model {name!r}")
        if (name, tag) not in set(open_clip.list_pretrained()) and not os.path.isfile(tag or ""):
            raise UsageError(f"--model {spec!r}: {tag!r} is not a pretrained tag of {name} in open_clip")

    def create():
        logging.disable(logging.CRITICAL)  # open_clip logs through the root logger; our one-line errors say it all
        try:
            with _no_random_init():
                return open_clip.create_model_and_transforms(name, pretrained=tag, device=dev)[0]
        except (RuntimeError, OSError, ValueError) as e:
            offline = os.environ.get("HF_HUB_OFFLINE")
            why = "offline and not in the cache" if offline else str(e).splitlines()[0]
            raise _unavailable(canonical(spec), why) from None
        finally:
            logging.disable(logging.NOTSET)

    model = create()
    model.eval()
    pp_cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = pp_cfg.get("size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    pp = Preprocess(
        size=size,
        mean=tuple(pp_cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(pp_cfg.get("std", open_clip.OPENAI_DATASET_STD)),
        interpolation=pp_cfg.get("interpolation", "bicubic"),
        resize_mode=pp_cfg.get("resize_mode", "shortest"),
        fill_color=pp_cfg.get("fill_color", 0),
    )
    tokenizer = open_clip.get_tokenizer(name)
    if chosen == "bf16":  # asked for, or chosen by "auto" and then kept only if it agrees with fp32
        agreement = _to_bf16(model, tokenizer, size, dev)
        if agreement < MIN_BF16_AGREEMENT and precision == "auto":
            chosen, model = "fp32", create().eval()  # rare: reading the weights again beats a copy kept each time
    if dev == "cpu":
        _patch_embedding_as_matmul(model)
    clip = ClipModel(canonical(spec), model, tokenizer, pp, dev, 0, chosen, agreement)
    clip.dim = int(clip.embed_pixels(np.zeros((1, size, size, 3), np.uint8)).shape[-1])
    return clip


def weights_digest(model) -> str:
    """A digest of a model's weights that does not depend on the precision it runs in: every tensor as bf16 (the
    rounding convert_weights_to_lp applies), so that a worker running bf16 and one running fp32 of the same
    checkpoint agree, and any other checkpoint differs."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        t = tensor.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(torch.bfloat16).view(torch.int16)
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _patch_embedding_as_matmul(model) -> None:
    """A ViT's patch embedding is a convolution whose kernel equals its stride: the same sums as one matrix
    product of the flattened patches with the flattened kernel, which oneDNN runs several times faster than the
    convolution on a CPU. The weights are not changed; models without such a layer are left alone."""
    import torch

    conv = getattr(getattr(model, "visual", None), "conv1", None)
    if not (isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == conv.stride and conv.groups == 1
            and conv.padding == (0, 0) and conv.dilation == (1, 1) and conv.padding_mode == "zeros"):
        return
    kh, kw = conv.kernel_size
    weight = conv.weight.detach().reshape(conv.out_channels, -1).t().contiguous()
    bias = None if conv.bias is None else conv.bias.detach()
    convolve = conv.forward

    def forward(x):
        b, c, h, w = x.shape
        if h % kh or w % kw:
            return convolve(x)
        gh, gw = h // kh, w // kw
        patches = x.reshape(b, c, gh, kh, gw, kw).permute(0, 2, 4, 1, 3, 5).reshape(b * gh * gw, c * kh * kw)
        y = patches @ weight if bias is None else torch.addmm(bias, patches, weight)
        return y.reshape(b, gh, gw, -1).permute(0, 3, 1, 2)

    conv.forward = forward


def write_local_dir(model, model_cfg: dict, path: str, preprocess_cfg: dict | None = None) -> str:
    """Save an open_clip model as a `local-dir:` folder (config + weights). Used to ship or test models offline."""
    import json

    import torch

    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "open_clip_config.json"), "w", encoding="utf-8") as fh:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg or {}}, fh)
    torch.save(model.state_dict(), os.path.join(path, "open_clip_pytorch_model.bin"))
    return "local-dir:" + os.path.abspath(path)
