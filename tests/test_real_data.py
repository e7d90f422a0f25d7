"""Real photos nobody on the project made (the shared labelled set): what a user would check by eye."""

from __future__ import annotations

import json

import pytest

from .conftest import group_paths


@pytest.fixture(scope="module")
def labelled_dupes(tmp_path_factory, labelled):
    from .conftest import Cli

    cli = Cli(tmp_path_factory.mktemp("labelled") / "index")
    result = cli("index", labelled, "--quiet", "--no-clip")
    assert result.exit_code == 0, result.stderr
    info = json.loads(cli("info", "--errors", "--format", "json").stdout)
    return cli.json("dupes"), info


def _together(groups, *names) -> bool:
    return any(set(names) <= g for g in groups)


def test_byte_identical_files_under_other_extensions_group(labelled_dupes):
    groups = group_paths(labelled_dupes[0])
    assert _together(groups, "ukbench09380.jpg", "ukbench09380.bmp", "ukbench09380.png", "ukbench09380.jpeg")
    assert _together(groups, "berlin_315673741_1.jpg", "berlin_31567374_1.jpg")
    assert _together(groups, "ukbench00120.jpg", "ukbench00120_resize.jpg", "ukbench00120_gray.jpg")


def test_reencodes_and_colour_modes_group(labelled_dupes):
    groups = group_paths(labelled_dupes[0])
    assert _together(groups, "forest-high.jpg", "forest-low.jpg", "forest-thumb.jpg")
    assert _together(groups, "original.jpg", "RGB.jpg", "CMYK.jpg", "L.png", "P.png", "1.png", "LAB.webp", "I.webp")
    assert _together(groups, "aaa-orig.jpg", "blur-a-little.jpg", "shrink-a-lot.jpg", "square-256x256.jpg")


def test_similar_scenes_are_not_copies(labelled_dupes):
    groups = group_paths(labelled_dupes[0])
    offices = ["tumblr_ndyfdoR6Wp1tubinno1_1280.jpg", "tumblr_ndyfnr7lk21tubinno1_1280.jpg",
               "tumblr_ndyfq386o41tubinno1_1280.jpg"]
    for i, a in enumerate(offices):
        for b in offices[i + 1 :]:
            assert not _together(groups, a, b)
    assert not _together(groups, "berlin_187206_1.jpg", "berlin_187206_2.jpg")
    assert not _together(groups, "q0003.jpg", "q0004.jpg")


def test_corrupt_files_are_listed_as_errors(labelled_dupes):
    dupes, info = labelled_dupes
    corrupt = sorted(e["path"].rsplit("/", 1)[1] for e in info["error_files"])
    assert corrupt == ["ukbench09268_corrupt.jpg", "ukbench09268_corrupt.jpg"]
    assert dupes["stats"]["errors"] == 2
