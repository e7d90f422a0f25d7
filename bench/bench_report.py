"""The HTML report at scale: 5,000 duplicate groups (10,000 generated photos-like files).

Reports the time `simfind dupes --format html` takes, the report's size on disk, and (where headless Chromium is
present) how long the browser takes to load it and how many thumbnails it decoded up front (lazy loading: only
those near the first screen).
Usage: python bench/bench_report.py [--groups N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIMFIND = [sys.executable, "-m", "simfind"]


def make_files(folder: str, groups: int) -> None:
    rng = np.random.default_rng(0)
    for g in range(groups):
        sub = os.path.join(folder, f"{g // 500:02d}")
        os.makedirs(sub, exist_ok=True)
        field = (rng.random((4, 5, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(field, "RGB").resize((200, 150), Image.BICUBIC)
        img.save(os.path.join(sub, f"img{g:05d}.jpg"), quality=85)
        img.resize((100, 75)).save(os.path.join(sub, f"img{g:05d}_small.jpg"), quality=80)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=5000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="simfind-report-")
    env = {**os.environ, "SIMFIND_INDEX": os.path.join(work, "index"), "PYTHONPATH": ROOT}
    try:
        folder = os.path.join(work, "photos")
        make_files(folder, a.groups)
        subprocess.run(SIMFIND + ["index", folder, "--no-clip", "--quiet"], check=True, env=env)
        page = os.path.join(work, "report.html")
        t0 = time.perf_counter()
        subprocess.run(SIMFIND + ["dupes", "--format", "html", "-o", page, "--quiet"], check=True, env=env)
        t_report = time.perf_counter() - t0
        html = open(page, encoding="utf-8").read()
        groups = html.count('"title":"Group ')
        print(f"report: {groups} groups, {html.count('data:image/jpeg')} thumbnails, "
              f"{os.path.getsize(page) / 1e6:.1f} MB, written in {t_report:.1f} s")
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser:
            common = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={work}/profile",
                      "--window-size=1200,900"]
            t0 = time.perf_counter()
            subprocess.run(common + [f"--screenshot={work}/first.png", "file://" + page], capture_output=True, timeout=300)
            t_paint = time.perf_counter() - t0
            t0 = time.perf_counter()
            subprocess.run(common + [f"--screenshot={work}/blank.png", "about:blank"], capture_output=True, timeout=300)
            t_blank = time.perf_counter() - t0
            dom = subprocess.run(common + ["--virtual-time-budget=5000", "--dump-dom", "file://" + page],
                                 capture_output=True, text=True, timeout=300).stdout
            loaded = re.search(r'data-loaded="(\d+)"', dom)
            print(f"chromium: first screen of the report in {t_paint:.1f} s ({t_blank:.1f} s for a blank page, "
                  f"process start included); {loaded.group(1) if loaded else 0} thumbnails decoded up front, "
                  "the rest as they scroll into view")
        else:
            print("chromium: not installed, load time not measured")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
