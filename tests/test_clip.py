"""CLIP paths with a tiny open_clip model the tests build (small config, random weights, a local-dir: folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import group_paths, picture, save

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def tiny_model(path: Path, seed: int = 0, embed_dim: int = 32) -> str:
    import open_clip
    import torch

    from simfind.embed import write_local_dir

    torch.manual_seed(seed)
    cfg = dict(TINY_CFG, embed_dim=embed_dim)
    return write_local_dir(open_clip.CLIP(**cfg), cfg, str(path))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> str:
    return tiny_model(tmp_path_factory.mktemp("tinyclip"))


@pytest.fixture
def pics(tmp_path: Path) -> Path:
    root = tmp_path / "pics"
    a = picture(1)
    save(a, root / "a.png")
    save(a, root / "copies" / "a.bmp")  # same pixels, other bytes
    for seed in (2, 3, 4):
        save(picture(seed), root / f"p{seed}.jpg", quality=90)
    return root


def test_local_dir_model_embeds_every_file_and_is_recorded(pics, cli, tiny):
    result = cli("index", pics, "--model", tiny, "--quiet")
    assert result.exit_code == 0, result.stderr
    info = json.loads(cli("info", "--format", "json").stdout)
    assert info["embedded"] == 5 and info["files"] == 5
    assert info["model"] == tiny
    assert any(n.startswith("clip-") and n.endswith(".faiss") for n in os.listdir(cli.index_dir))


def test_image_query_finds_itself_first(pics, cli, tiny):
    cli("index", pics, "--model", tiny, "--quiet")
    d = cli.json("query", pics / "p3.jpg", "-k", "3")
    assert d["by"] == "clip" and d["query"] == str(pics / "p3.jpg")
    assert d["results"][0]["path"] == str(pics / "p3.jpg")
    assert d["results"][0]["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert [r["rank"] for r in d["results"]] == [1, 2, 3]


def test_text_query_goes_through_the_text_tower(pics, cli, tiny):
    cli("index", pics, "--model", tiny, "--quiet")
    d = cli.json("query", "a red car", "-k", "5")
    assert d["by"] == "clip" and d["query"] == "a red car" and len(d["results"]) == 5
    sims = [r["similarity"] for r in d["results"]]
    assert sims == sorted(sims, reverse=True)


def test_query_threshold_and_fail_on_miss(pics, cli, tiny):
    cli("index", pics, "--model", tiny, "--quiet")
    assert cli("query", pics / "p2.jpg", "--threshold", "0.999", "--fail-on-miss").exit_code == 0
    save(picture(50), pics.parent / "new.jpg")
    hit = cli.json("query", pics.parent / "new.jpg", "--threshold", "0.9999")
    assert hit["results"] == []
    assert cli("query", pics.parent / "new.jpg", "--threshold", "0.9999", "--fail-on-miss").exit_code == 1


def test_hash_indexed_files_get_embeddings_later_and_only_once(pics, cli, tiny):
    cli("index", pics, "--no-clip", "--quiet")
    assert json.loads(cli("info", "--format", "json").stdout)["embedded"] == 0
    cli("index", pics, "--model", tiny, "--quiet")
    assert json.loads(cli("info", "--format", "json").stdout)["embedded"] == 5
    from simfind import api

    again = api.index([str(pics)], index_dir=str(cli.index_dir), clip=tiny, workers=1)
    assert (again.unchanged, again.added, again.updated) == (5, 0, 0)


def test_a_changed_or_removed_file_leaves_no_stale_vector(pics, cli, tiny):
    cli("index", pics, "--model", tiny, "--quiet")
    (pics / "p4.jpg").unlink()
    save(picture(77), pics / "p2.jpg", quality=90)
    st = (pics / "p2.jpg").stat()
    os.utime(pics / "p2.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    cli("index", pics, "--model", tiny, "--quiet")
    assert json.loads(cli("info", "--format", "json").stdout)["embedded"] == 4
    d = cli.json("query", pics / "p2.jpg", "-k", "1")
    assert d["results"][0]["path"] == str(pics / "p2.jpg")
    assert d["results"][0]["similarity"] == pytest.approx(1.0, abs=1e-3)


def test_a_different_model_is_refused_unless_reembed(pics, cli, tiny, tmp_path):
    cli("index", pics, "--model", tiny, "--quiet")
    other = tiny_model(tmp_path / "other", seed=1, embed_dim=16)
    refused = cli("index", pics, "--model", other, "--quiet")
    assert refused.exit_code == 3 and "holds embeddings from" in refused.stderr and "--reembed" in refused.stderr
    assert cli("index", pics, "--model", other, "--reembed", "--quiet").exit_code == 0
    info = json.loads(cli("info", "--format", "json").stdout)
    assert info["model"] == other and info["embedded"] == 5


def test_dupes_by_clip_groups_same_pixels(pics, cli, tiny):
    cli("index", pics, "--model", tiny, "--quiet")
    d = cli.json("dupes", "--by", "clip", "--threshold", "0.999")
    assert d["by"] == "clip"
    assert {"a.png", "a.bmp"} in group_paths(d)
    between = cli.json("dupes", "--by", "clip", "--threshold", "0.999", "--between", pics, pics / "copies")
    assert group_paths(between) == [{"a.png", "a.bmp"}]


def _index_run(pics: Path, index_dir: Path, *args: str, env: dict[str, str | None] | None = None):
    """`simfind index` in a fresh interpreter, as a user's shell runs it: (exit code, simfind's stderr lines,
    whether torch or open_clip was imported, read from -X importtime). `env` entries set to None are unset."""
    import subprocess
    import sys

    argv = [sys.executable, "-X", "importtime", "-m", "simfind", "index", str(pics), "--index", str(index_dir), *args]
    merged = {**os.environ, **(env or {})}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                         env={k: v for k, v in merged.items() if v is not None})
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in out.stderr.splitlines() if ln.startswith("import time:")}
    said = [ln for ln in out.stderr.splitlines() if not ln.startswith("import time:")]
    return out.returncode, said, bool(imported & {"torch", "open_clip"})


def test_open_clips_registry_is_read_without_importing_it():
    """Model names, tags and where each tag's weights live, as open_clip itself lists them, with no torch."""
    import subprocess
    import sys

    code = ("import json, sys; from simfind import weights; r = weights.registry(); "
            "print(json.dumps([sorted(r.models()), {m: {t: [c.get('hf_hub'), c.get('url')] for t, c in tags.items()} "
            "for m, tags in r.pretrained.items()}, sorted(k for k in ('torch', 'open_clip') if k in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    models, pretrained, heavy = json.loads(out.stdout)
    assert heavy == []
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg

    assert models == sorted(open_clip.list_models())
    assert sorted((m, t) for m in pretrained for t in pretrained[m]) == sorted(open_clip.list_pretrained())
    for m, tags in pretrained.items():
        for t, (hub, url) in tags.items():
            cfg = get_pretrained_cfg(m, t)
            assert [cfg.get("hf_hub"), cfg.get("url")] == [hub, url], (m, t)


@pytest.mark.parametrize("kind", ["no folder", "no config", "no weights", "unknown name", "unknown tag", "no tag"])
def test_a_model_spec_that_can_never_work_exits_2_before_torch(pics, tmp_path, kind):
    folder = tmp_path / "model"
    if kind in ("no config", "no weights"):
        folder.mkdir()
        (folder / ("open_clip_config.json" if kind == "no weights" else "open_clip_pytorch_model.bin")).write_text("{}")
    spec = {"unknown name": "NoSuchNet-B-32:laion2b_s34b_b79k", "unknown tag": "ViT-B-32:nosuchtag",
            "no tag": "ViT-B-32"}.get(kind, f"local-dir:{folder}")
    rc, said, heavy = _index_run(pics, tmp_path / "index", "--model", spec)
    assert rc == 2 and len(said) == 1 and said[0].startswith("simfind: error: --model"), said
    assert not heavy
    assert not (tmp_path / "index").exists()  # refused before anything was scanned or written


def test_offline_without_weights_warns_once_per_index_and_never_imports_torch(pics, tmp_path):
    """The unavailable default is found out from files: no torch, so an unchanged re-index costs what --no-clip
    costs; the index remembers it was told, and tells again when the situation changes."""
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": None, "HUGGINGFACE_HUB_CACHE": None}
    index = tmp_path / "index"
    rc, said, heavy = _index_run(pics, index, env=offline)
    warnings = [ln for ln in said if "warning:" in ln]
    assert rc == 0 and not heavy and len(warnings) == 1, said
    assert "laion2b_s34b_b79k" in warnings[0] and "--no-clip" in warnings[0] and "run once online" in warnings[0]
    assert json.loads(subprocess_info(index))["files"] == 5
    rc, said, heavy = _index_run(pics, index, env=offline)  # unchanged, and nothing has changed: silent
    assert rc == 0 and not heavy and not [ln for ln in said if "warning:" in ln], said
    rc, said, heavy = _index_run(pics, index, "--require-clip", env=offline)
    assert rc == 3 and not heavy and "run once online" in said[-1]
    elsewhere = {**offline, "HF_HOME": str(tmp_path / "other-hf")}  # another cache: another situation
    rc, said, heavy = _index_run(pics, index, env=elsewhere)
    assert rc == 0 and not heavy and len([ln for ln in said if "warning:" in ln]) == 1, said
    rc, said, heavy = _index_run(pics, tmp_path / "fresh-index", env=offline)  # another index is told too
    assert rc == 0 and len([ln for ln in said if "warning:" in ln]) == 1, said


def test_a_quiet_run_does_not_use_up_the_offline_warning(pics, tmp_path):
    """A CI job indexes with --quiet; the person who runs index next must still be told why CLIP is missing."""
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": None, "HUGGINGFACE_HUB_CACHE": None}
    index = tmp_path / "index"
    rc, said, heavy = _index_run(pics, index, "--quiet", env=offline)
    assert rc == 0 and not heavy and said == [], said
    rc, said, heavy = _index_run(pics, index, env=offline)
    assert rc == 0 and not heavy and len([ln for ln in said if "warning:" in ln]) == 1, said
    rc, said, heavy = _index_run(pics, index, env=offline)
    assert rc == 0 and not [ln for ln in said if "warning:" in ln], said


def subprocess_info(index: Path) -> str:
    import subprocess
    import sys

    argv = [sys.executable, "-m", "simfind", "info", "--index", str(index), "--format", "json"]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout


def test_weights_that_appear_in_the_hub_cache_are_used_and_the_warning_comes_back_when_they_go(pics, tmp_path):
    """An hf-hub: model, offline: not cached -> one warning, hashes only; cached (the layout huggingface_hub
    writes) -> embedded from the cache; gone again -> warned again."""
    import shutil

    offline = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    spec = "hf-hub:simfind-tests/tiny-clip"
    index = tmp_path / "index"
    rc, said, heavy = _index_run(pics, index, "--model", spec, env=offline)
    assert rc == 0 and not heavy and len([ln for ln in said if "warning:" in ln]) == 1, said
    repo = tmp_path / "hub" / "models--simfind-tests--tiny-clip"
    tiny_model(repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    rc, said, heavy = _index_run(pics, index, "--model", spec, env=offline)
    assert rc == 0 and heavy and not [ln for ln in said if "warning:" in ln], said
    assert json.loads(subprocess_info(index))["embedded"] == 5
    shutil.rmtree(repo)
    save(picture(60), pics / "later.jpg")
    rc, said, heavy = _index_run(pics, index, "--model", spec, env=offline)
    assert rc == 0 and not heavy and len([ln for ln in said if "warning:" in ln]) == 1, said


def test_a_vanished_model_folder_warns_once_when_new_files_come(pics, cli, tmp_path):
    """The model an index holds is used for files added later (dupes PATH indexes first); where its folder is
    gone, that is said once, not on every run."""
    spec = tiny_model(tmp_path / "model")
    cli("index", pics, "--model", spec, "--quiet")
    import shutil

    shutil.rmtree(tmp_path / "model")
    save(picture(61), pics / "new1.jpg")
    first = cli("dupes", pics)
    assert first.exit_code == 0 and first.stderr.count("warning:") == 1 and "no such folder" in first.stderr
    save(picture(62), pics / "new2.jpg")
    second = cli("dupes", pics)
    assert second.exit_code == 0 and "warning:" not in second.stderr


def test_offline_without_cached_weights_falls_back_without_hanging(pics, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))  # nothing cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine with no network
    result = cli("index", pics, "--model", "ViT-B-32:laion2b_s34b_b79k")
    assert result.exit_code == 0, result.stderr
    assert "warning:" in result.stderr and "--model local-dir:" in result.stderr and "Traceback" not in result.stderr
    strict = cli("index", pics, "--model", "ViT-B-32:laion2b_s34b_b79k", "--require-clip")
    assert strict.exit_code == 3 and "run once online" in strict.stderr


def test_text_query_without_embeddings_is_a_clear_error(pics, cli):
    cli("index", pics, "--no-clip", "--quiet")
    result = cli("query", "a red car")
    assert result.exit_code == 2 and "needs CLIP" in result.stderr


def test_text_query_on_an_empty_index_is_the_same_error(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    assert cli("index", tmp_path / "empty", "--no-clip", "--quiet").exit_code == 0
    result = cli("query", "a red car")
    assert result.exit_code == 2 and "needs CLIP" in result.stderr and result.stdout == ""


def test_exclude_self_leaves_the_query_path_out_so_fail_on_miss_can_fail(pics, cli):
    cli("index", pics, "--no-clip", "--quiet")
    assert cli("query", pics / "p2.jpg", "--threshold", "0.99", "--fail-on-miss").exit_code == 0  # itself, at 1.0
    alone = cli("query", pics / "p2.jpg", "--threshold", "0.99", "--fail-on-miss", "--exclude-self")
    assert alone.exit_code == 1
    d = cli.json("query", pics / "a.png", "--exclude-self", "-k", "1")
    assert [os.path.basename(r["path"]) for r in d["results"]] == ["a.bmp"]  # its copy stays
    assert "--exclude-self" in cli("query", "--help", index=False).stdout


def test_image_query_without_embeddings_ranks_by_hash(pics, cli):
    cli("index", pics, "--no-clip", "--quiet")
    d = cli.json("query", pics / "copies" / "a.bmp", "-k", "2")
    assert d["by"] == "hash"
    assert {os.path.basename(r["path"]) for r in d["results"]} == {"a.png", "a.bmp"}
    assert all(r["similarity"] == 1.0 for r in d["results"])


def test_prepare_matches_open_clip_preprocessing():
    """The workers' resize + centre crop, then normalisation in the model process, equal open_clip's transform."""
    import numpy as np
    import open_clip
    import torch

    from simfind.embed import Preprocess, prepare

    img = picture(9, (300, 200))
    pp = Preprocess(size=64, mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD)
    ref = open_clip.image_transform(64, is_train=False)(img).numpy()
    mine = prepare(img, pp).astype(np.float32) / 255.0
    mine = (mine - np.array(pp.mean)) / np.array(pp.std)
    assert np.abs(mine.transpose(2, 0, 1) - ref).max() < 0.05
    assert torch.is_tensor(torch.from_numpy(ref))


def test_default_model_with_real_weights_when_cached(pics, cli):
    """Runs only where the default weights are in the Hugging Face cache (never on a machine without the hub)."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_pytorch_model.bin")
    if not isinstance(cached, str):
        pytest.skip("ViT-B-32:laion2b_s34b_b79k weights are not in the Hugging Face cache (no hub access here)")
    assert cli("index", pics, "--require-clip", "--quiet").exit_code == 0
    d = cli.json("dupes", "--by", "clip")
    assert {"a.png", "a.bmp"} in group_paths(d)
    assert all(len(g) <= 2 for g in group_paths(d))  # distinct pictures stay apart with trained weights


def test_reindex_with_nothing_to_embed_never_loads_torch(pics, cli, tiny):
    import subprocess
    import sys

    cli("index", pics, "--model", tiny, "--quiet")
    code = (
        "import sys; from simfind import api; "
        f"r = api.index([{str(pics)!r}], index_dir={str(cli.index_dir)!r}, clip={tiny!r}); "
        "print(r.unchanged, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["5", "False"]


def test_bf16_weights_agree_with_fp32_on_real_pixels(pics, tiny):
    """bf16 (chosen by "auto" on CPUs that run it natively) must give the same neighbours as fp32."""
    import numpy as np
    from PIL import Image

    from simfind.embed import load, prepare

    fp32 = load(tiny, precision="fp32")
    bf16 = load(tiny, precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16") and bf16.agreement >= 0.999
    pixels = np.stack([prepare(Image.open(p).convert("RGB"), fp32.preprocess) for p in sorted(pics.rglob("*.*"))])
    a, b = fp32.embed_pixels(pixels), bf16.embed_pixels(pixels)
    assert a.dtype == b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(1).min() >= 0.999
    assert np.abs(a @ a.T - b @ b.T).max() < 0.002  # every file-to-file similarity the same to 0.002
    assert (fp32.embed_texts(["a red car"]) * bf16.embed_texts(["a red car"])).sum() >= 0.999


def test_unknown_precision_is_a_usage_error(tiny):
    from simfind.embed import load
    from simfind.errors import UsageError

    with pytest.raises(UsageError, match="--precision"):
        load(tiny, precision="fp8")


def test_auto_precision_falls_back_to_fp32_when_bf16_disagrees(tiny, monkeypatch):
    """"auto" keeps bf16 only when it agrees with fp32; otherwise the fp32 weights are read again."""
    import torch

    from simfind import embed

    monkeypatch.setattr(embed, "MIN_BF16_AGREEMENT", 1.01)  # no cosine can reach it
    model = embed.load(tiny, precision="auto")
    assert model.precision == "fp32"
    assert {p.dtype for p in model.model.parameters()} == {torch.float32}
    assert model.embed_texts(["a red car"]).shape == (1, model.dim)


def _clustered(n: int, dim: int = 16, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, dim)).astype(np.float32)
    x = centres[rng.integers(0, 60, n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_big_vector_sets_get_an_ivf_index_that_finds_what_exact_search_finds(monkeypatch):
    import faiss
    import numpy as np

    from simfind import knn

    monkeypatch.setattr(knn, "IVF_FROM", 3000)  # the real crossover is 50k vectors; same code path
    x = _clustered(4000)
    ids = np.arange(10, 4010, dtype=np.int64)
    index = knn.build(ids, x)
    assert isinstance(index, faiss.IndexIVFFlat)
    queries = x[:50] + 0.05 * np.random.default_rng(1).standard_normal((50, 16)).astype(np.float32)
    flat = faiss.IndexFlatIP(16)
    flat.add(x)
    _s, want = flat.search(queries, 5)
    hits = [len(set(knn.search(index, q[None], 5)[1][0]) & set(ids[w])) for q, w in zip(queries, want)]
    assert sum(hits) / (5 * len(queries)) >= 0.95
    assert knn.search(index, x[7:8], 1)[1][0][0] == 17  # a stored vector finds its own catalog id

    # the next revision (a few more files) re-uses the trained centroids
    more = np.concatenate([x, _clustered(100, seed=2)])
    again = knn.build(np.arange(10, 4110, dtype=np.int64), more, previous=index)
    assert again.ntotal == 4100 and again.nlist == index.nlist
    assert np.array_equal(again.quantizer.reconstruct_n(0, again.nlist), index.quantizer.reconstruct_n(0, index.nlist))


def test_the_clip_index_file_follows_the_catalog_revision(pics, cli, tiny, monkeypatch):
    """One clip-<rev>.faiss beside the catalog, rebuilt when the catalog moves on, read back when it has not,
    and rebuilt from the catalog when the file is damaged."""
    from simfind import knn
    from simfind.store import IndexDir

    monkeypatch.setattr(knn, "IVF_FROM", 2)
    cli("index", pics, "--model", tiny, "--quiet")
    first = sorted(n for n in os.listdir(cli.index_dir) if n.startswith("clip-"))
    assert len(first) == 1
    (pics / "p2.jpg").unlink()
    cli("index", pics, "--model", tiny, "--quiet")
    second = sorted(n for n in os.listdir(cli.index_dir) if n.startswith("clip-"))
    assert len(second) == 1 and second != first
    (cli.index_dir / second[0]).write_bytes(b"damaged")
    with IndexDir.open(str(cli.index_dir)) as idx:
        assert idx.vectors().ntotal == idx.catalog.counts()["embedded"]
    d = cli.json("query", pics / "p3.jpg", "-k", "1")
    assert d["results"][0]["path"] == str(pics / "p3.jpg")


def test_query_through_an_ivf_index(pics, cli, tiny, monkeypatch):
    from simfind import knn

    monkeypatch.setattr(knn, "IVF_FROM", 2)
    cli("index", pics, "--model", tiny, "--quiet")
    d = cli.json("query", pics / "p3.jpg", "-k", "2")
    assert d["results"][0]["path"] == str(pics / "p3.jpg")


def test_precision_flag_index_in_fp32_query_in_bf16(pics, cli, tiny):
    assert cli("index", pics, "--model", tiny, "--precision", "fp32", "--quiet").exit_code == 0
    d = cli.json("query", pics / "p2.jpg", "-k", "1", "--precision", "bf16")
    assert d["results"][0]["path"] == str(pics / "p2.jpg")
    assert d["results"][0]["similarity"] == pytest.approx(1.0, abs=2e-3)
    bad = cli("query", pics / "p2.jpg", "--precision", "fp8")
    assert bad.exit_code == 2 and "--precision" in bad.stderr


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_embeddings_equal_open_clips_own_forward_pass(pics, tiny, precision):
    """What simfind computes for an image (its preprocessing, its faster patch embedding, bf16 where asked) is
    what open_clip's own model computes from the same pixels."""
    import numpy as np
    import open_clip
    import torch
    from open_clip.model import convert_weights_to_lp
    from PIL import Image

    from simfind.embed import load, prepare

    mine = load(tiny, precision=precision)
    theirs = open_clip.create_model_and_transforms(tiny)[0].eval()
    if precision == "bf16":
        convert_weights_to_lp(theirs, dtype=torch.bfloat16)
    pixels = np.stack([prepare(Image.open(p).convert("RGB"), mine.preprocess) for p in sorted(pics.rglob("*.*"))])
    with torch.inference_mode():
        ref = theirs.encode_image(mine.tensor(pixels)).float()
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    assert (mine.embed_pixels(pixels) * ref).sum(1).min() >= (0.9999 if precision == "fp32" else 0.999)


def test_querying_with_an_indexed_picture_needs_no_model(pics, cli, tmp_path):
    """An image whose bytes are already indexed (the file, or a byte copy anywhere) is queried with its stored
    embedding: same answer, and it works even where the model is gone; a new picture still needs the model."""
    import shutil

    model_dir = tmp_path / "model"
    spec = tiny_model(model_dir)
    cli("index", pics, "--model", spec, "--quiet")
    before = cli.json("query", pics / "p3.jpg", "-k", "3")
    copy = tmp_path / "elsewhere" / "same_bytes.jpg"
    copy.parent.mkdir()
    shutil.copy(pics / "p3.jpg", copy)
    shutil.rmtree(model_dir)
    assert cli.json("query", pics / "p3.jpg", "-k", "3") == before
    assert cli.json("query", copy, "-k", "3")["results"] == before["results"]
    save(picture(40), tmp_path / "new.jpg", quality=90)
    result = cli("query", tmp_path / "new.jpg")
    assert result.exit_code == 3 and "local-dir" in result.stderr


@pytest.mark.parametrize("env", [
    {"HF_HOME": "{tmp}/home"},
    {"XDG_CACHE_HOME": "{tmp}/xdg"},
    {"HF_HOME": "{tmp}/home", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy"},
    {"HF_HOME": "{tmp}/home", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy", "HF_HUB_CACHE": "{tmp}/hub"},
])
def test_the_cache_looked_in_is_huggingface_hubs_own(tmp_path, env):
    """The weights are looked for where huggingface_hub would find them, whichever variable names the cache."""
    import subprocess
    import sys

    names = ("HF_HOME", "XDG_CACHE_HOME", "HUGGINGFACE_HUB_CACHE", "HF_HUB_CACHE")
    clean = {k: v for k, v in os.environ.items() if k not in names}
    clean.update({k: v.format(tmp=tmp_path) for k, v in env.items()})
    code = ("import huggingface_hub.constants as c; from simfind import weights; "
            "print(weights.hub_cache() == c.HF_HUB_CACHE, weights.hub_cache())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=clean)
    assert out.stdout.split()[0] == "True", out.stdout


def test_default_weights_count_as_cached_where_huggingface_hub_would_find_them(tmp_path, monkeypatch):
    from simfind import embed

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = embed.availability(embed.DEFAULT_MODEL)
    assert missing.why == "offline and not in the cache" and missing.memo
    snapshot = tmp_path / "hub" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "snapshots" / ("1" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(b"weights")
    assert embed.availability(embed.DEFAULT_MODEL).why is None
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert embed.availability(embed.DEFAULT_MODEL).memo not in ("", missing.memo)  # another cache, another memo
