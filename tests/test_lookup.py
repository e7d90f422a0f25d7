"""The lookup a hash query reads (lookup.py): written by `index` per revision, it gives a query exactly the answers
the search over the whole catalog gives, and a query without one (or with a damaged one) still answers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from simfind.lookup import of as lookup_of
from simfind.store import IndexDir

from .conftest import picture, save
from .test_agreement import _edits


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Pictures with one edited copy each, 24 overlapping crops of one picture (more partners than the search keeps
    per picture, so that which pairs it proposes depends on both pictures' ranks), mirrored copies, distractors."""
    root = tmp_path_factory.mktemp("lookup")
    for k in range(20):
        save(picture(700 + k), root / f"p{k:02d}.jpg", quality=90)
        save(_edits(picture(700 + k), k), root / "copies" / f"p{k:02d}_copy.jpg", quality=80)
    crowd = picture(800, size=(1200, 900))
    w, h = crowd.size
    for k in range(24):  # crops of 55-75% of each side at spread offsets: found by local features, not the hash
        side = 0.55 + 0.2 * (k % 5) / 4
        x, y = (k * 37) % round(w * (1 - side) + 1), (k * 53) % round(h * (1 - side) + 1)
        copy = crowd.crop((x, y, x + round(w * side), y + round(h * side))).resize((480, 360))
        save(ImageOps.mirror(copy) if k % 4 == 3 else copy, root / "crowd" / f"c{k:02d}.jpg", quality=70 + k)
    for k in range(8):
        save(picture(900 + k), root / "other" / f"o{k:02d}.jpg", quality=90)
    return root


def _answers(cli, files: list[str], threshold: str) -> list[dict]:
    result = cli("query", "--from-file", "-", "-t", threshold, "-k", "50", "--format", "json", input="\n".join(files))
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _lookups(index: Path) -> list[str]:
    return sorted(p.name for p in index.iterdir() if p.name.startswith("lookup-"))


@pytest.mark.parametrize("threshold", ["0.9", "0.8"])
def test_a_query_through_the_lookup_answers_as_the_whole_search_does(library, cli, threshold, tmp_path):
    cli("index", library, "--no-clip", "-q")
    assert len(_lookups(cli.index_dir)) == 1
    with IndexDir.open(str(cli.index_dir)) as idx:
        lookup = lookup_of(idx)
        assert lookup is not None and len(lookup) == len(list(library.rglob("*.jpg")))
    files = sorted(str(p) for p in library.rglob("*.jpg"))
    new = save(_edits(picture(705), 4), tmp_path / "new" / "mirrored.jpg", quality=75)  # not indexed
    files.append(str(new))
    through = _answers(cli, files, threshold)
    for name in _lookups(cli.index_dir):
        os.unlink(cli.index_dir / name)  # without one, a query searches the whole catalog
    whole = _answers(cli, files, threshold)
    assert through == whole
    assert sum(len(a["results"]) > 1 for a in through) >= 40  # copies are found, not only the query itself
    assert through[-1]["results"], "the new mirrored copy finds its original"


def test_index_replaces_the_lookup_when_files_change_and_rebuilds_a_damaged_one(library, cli, tmp_path):
    folder = tmp_path / "pics"
    for k in range(4):
        save(picture(950 + k), folder / f"{k}.jpg", quality=90)
    cli("index", folder, "--no-clip", "-q")
    (first,) = _lookups(cli.index_dir)
    save(picture(950).resize((320, 240)), folder / "small.jpg", quality=80)
    cli("index", folder, "--no-clip", "-q")
    (second,) = _lookups(cli.index_dir)
    assert second != first
    found = cli.json("query", folder / "0.jpg")["results"]
    assert {Path(r["path"]).name for r in found} == {"0.jpg", "small.jpg"}

    (cli.index_dir / second).write_bytes(b"not a lookup at all")
    assert {Path(r["path"]).name for r in cli.json("query", folder / "0.jpg")["results"]} == {"0.jpg", "small.jpg"}
    cli("index", folder, "--no-clip", "-q")  # nothing changed, but the lookup could not be read: written again
    with IndexDir.open(str(cli.index_dir)) as idx:
        assert lookup_of(idx) is not None


def test_files_added_by_dupes_are_found_by_the_next_query(cli, tmp_path):
    """`dupes PATH` indexes PATH without writing a lookup: the next query searches the catalog and finds them."""
    a, b = tmp_path / "a", tmp_path / "b"
    save(picture(960), a / "x.jpg", quality=90)
    save(picture(961), a / "y.jpg", quality=90)
    cli("index", a, "--no-clip", "-q")
    save(picture(960).resize((400, 300)), b / "x_small.jpg", quality=80)
    assert cli("dupes", b, "-q").exit_code == 0
    names = {Path(r["path"]).name for r in cli.json("query", a / "x.jpg")["results"]}
    assert names == {"x.jpg", "x_small.jpg"}


def test_a_batch_of_queries_gives_each_its_own_answer(cli, tmp_path):
    folder = tmp_path / "pics"
    for k in range(3):
        save(picture(970 + k), folder / f"{k}.jpg", quality=90)
    save(picture(970).transpose(Image.ROTATE_90), folder / "0_turned.jpg", quality=85)
    cli("index", folder, "--no-clip", "-q")
    args = [folder / "0.jpg", folder / "1.jpg"]
    lines = cli("query", *args, "--format", "json").stdout.splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["query"] for d in docs] == [str(p) for p in args]
    assert {Path(r["path"]).name for r in docs[0]["results"]} == {"0.jpg", "0_turned.jpg"}
    assert [Path(r["path"]).name for r in docs[1]["results"]] == ["1.jpg"]
    single = cli.json("query", folder / "0.jpg")  # one query: the one JSON document, as before
    assert single == docs[0]

    rows = cli("query", *args, "--format", "csv").stdout.splitlines()
    assert rows[0] == "query,rank,path,similarity,size,width,height" and len(rows) == 4

    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / '2.jpg'}\n\n  {folder / '1.jpg'}  \n")
    docs = [json.loads(line) for line in cli("query", "--from-file", listing, "-f", "json").stdout.splitlines()]
    assert [Path(d["query"]).name for d in docs] == ["2.jpg", "1.jpg"]

    miss = cli("query", *args, "--exclude-self", "--fail-on-miss", "-f", "json")
    assert miss.exit_code == 1  # 1.jpg has nothing but itself
    assert len(miss.stdout.splitlines()) == 2  # every answer is still printed

    typo = cli("query", folder / "0.jpg", folder / "nope.jpg", "-f", "json")
    assert typo.exit_code == 2 and "no such image file" in typo.stderr and typo.stdout == ""
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    none = cli("query", "--from-file", empty)
    assert none.exit_code == 2 and "no queries" in none.stderr


def test_dupes_over_the_whole_index_takes_its_candidates_from_the_lookup_and_reports_the_same(library, cli):
    cli("index", library, "--no-clip", "-q")
    with IndexDir.open(str(cli.index_dir)) as idx:
        assert len(lookup_of(idx).proposed()[0]) > 20  # the lookup holds candidates for dupes to take
    through = cli("dupes", "-t", "0.8", "--format", "json").stdout
    for name in _lookups(cli.index_dir):
        os.unlink(cli.index_dir / name)
    searched = cli("dupes", "-t", "0.8", "--format", "json").stdout
    assert through == searched and len(json.loads(through)["groups"]) >= 15


def test_a_query_says_when_a_file_it_would_list_is_gone_and_a_batch_miss_says_which(cli, tmp_path):
    folder = tmp_path / "pics"
    save(picture(980), folder / "a.jpg", quality=90)
    save(picture(980).resize((320, 240)), folder / "a_small.jpg", quality=80)
    save(picture(981), folder / "b.jpg", quality=90)
    cli("index", folder, "--no-clip", "-q")
    (folder / "a_small.jpg").unlink()
    result = cli("query", folder / "a.jpg", "-f", "json")
    assert [Path(r["path"]).name for r in json.loads(result.stdout)["results"]] == ["a.jpg"]
    assert "1 file that would be listed is gone from disk" in result.stderr and "simfind index" in result.stderr
    miss = cli("query", folder / "a.jpg", folder / "b.jpg", "--exclude-self", "--fail-on-miss", "-f", "json")
    assert miss.exit_code == 1 and "no result at the threshold for 2 of 2 queries" in miss.stderr
    quiet = cli("query", folder / "b.jpg", "--exclude-self", "--fail-on-miss", "-q")
    assert quiet.exit_code == 1 and quiet.stderr == ""


def _full_build_equals_written(index: Path) -> None:
    import numpy as np

    from simfind.lookup import Lookup, _whole
    from simfind.pairs import LocalFeatures, local_searched

    with IndexDir.open(str(index)) as idx:
        written = lookup_of(idx)
        pictures = idx.catalog.content_pictures()
        most = local_searched(2 * len(pictures))
        full = Lookup.build(pictures, LocalFeatures(idx.catalog.local_features).searched(pictures, most), most)
    assert written.meta == full.meta
    assert [k for k in full._arrays if not np.array_equal(_whole(full._arrays[k]), _whole(written._arrays[k]))] == []


def test_index_updates_the_lookup_in_place_of_building_it_and_it_equals_a_whole_build(library, cli, tmp_path):
    import shutil

    folder = tmp_path / "lib"
    shutil.copytree(library, folder)
    cli("index", folder, "--no-clip", "-q")
    written = []
    for step in range(3):
        if step == 0:  # new pictures, one a crop of the crowd (new partners for many), one a byte copy
            save(picture(990), folder / "new" / "n0.jpg", quality=88)
            shutil.copy(folder / "crowd" / "c05.jpg", folder / "new" / "c05_copy.jpg")
            save(Image.open(folder / "crowd" / "c07.jpg").crop((40, 30, 400, 300)), folder / "new" / "c07_crop.jpg")
        elif step == 1:  # gone: a crowd picture (a partner of many) and a distractor
            (folder / "crowd" / "c03.jpg").unlink()
            (folder / "other" / "o02.jpg").unlink()
        else:  # changed in place: same path (same id), other content
            save(picture(991), folder / "other" / "o04.jpg", quality=85)
        result = cli("index", folder, "--no-clip", "-q")
        assert result.exit_code == 0, result.stderr
        written.append(_lookups(cli.index_dir))
        _full_build_equals_written(cli.index_dir)
    assert all(len(w) == 1 for w in written) and len({w[0] for w in written}) == 3


def test_posting_windows_read_from_the_file_stop_at_their_table_s_end(tmp_path):
    """A word near the end of a table is read from a window that runs past it: what lies beyond in the file (the
    next array) must read as past every posting, as it does in memory."""
    import numpy as np

    from simfind.lookup import Lookup, _windows

    posts = np.arange(10, 5000, 7, dtype=np.int64)
    arrays = {"ids": np.arange(3, dtype=np.int64), "orient": np.zeros((3, 8, 8), np.uint8),
              "whole": np.zeros((3, 8), np.uint8), "framed": np.zeros(3, bool),
              "partners": np.full((3, 18), -1, np.int32), "votes": np.zeros((3, 18), np.int32),
              "mirrors": np.zeros((3, 18), np.int8), "content": np.zeros((3, 16), np.uint8),
              "counts": np.ones((3, 2), np.int32)}
    built = Lookup._with_postings(arrays, [posts, posts + 1, posts + 2, posts + 3], 256)
    built.write(str(tmp_path / "lookup.bin"))
    read = Lookup.read(str(tmp_path / "lookup.bin"))
    starts = np.array([0, len(posts) - 5, len(posts) - 1, len(posts) + 3])
    for t in range(4):
        assert np.array_equal(_windows(read.postings[t], starts, 40), _windows(built.postings[t], starts, 40))
