"""Writes docs/serve-page.png: the page `simfind serve` shows at /, after an upload, in headless Chromium.

A few of the shared photos and edited copies of one of them (resized, cropped, mirrored, captioned) are indexed
in hash mode; a crop of that photo is uploaded. Needs playwright and a Chromium (apt install chromium).
Usage: python docs/serve_screenshot.py [--photos DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main() -> None:
    import httpx
    from PIL import Image, ImageDraw, ImageOps
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", default=os.path.join(ROOT, "..", "shared", "data", "photos"))
    args = ap.parse_args()
    photos = sorted(glob.glob(os.path.join(args.photos, "**", "*.jpg"), recursive=True))[:12]
    if not photos:
        raise SystemExit(f"no photos under {args.photos}")
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "photos")
        os.makedirs(lib)
        for p in photos:
            with Image.open(p) as im:
                ImageOps.exif_transpose(im).convert("RGB").resize((640, round(640 * im.height / im.width))).save(
                    os.path.join(lib, os.path.basename(p)), quality=90)
        with Image.open(os.path.join(lib, os.path.basename(photos[0]))) as im:
            base = im.copy()
        w, h = base.size
        base.resize((w // 2, h // 2)).save(os.path.join(lib, "copy-small.jpg"), quality=75)
        ImageOps.mirror(base).save(os.path.join(lib, "copy-mirrored.jpg"), quality=85)
        captioned = ImageOps.expand(base, border=(0, 0, 0, h // 6), fill="white")
        ImageDraw.Draw(captioned).text((20, h + 20), "holiday 2019", fill="black")
        captioned.save(os.path.join(lib, "copy-captioned.jpg"), quality=85)
        query = os.path.join(tmp, "crop.jpg")
        base.crop((w // 8, h // 8, w * 7 // 8, h * 7 // 8)).save(query, quality=80)
        index = os.path.join(tmp, "index")
        simfind = [sys.executable, "-m", "simfind"]
        subprocess.run([*simfind, "index", lib, "--no-clip", "-q", "--index", index], check=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([*simfind, "serve", "--index", index, "--port", str(port)],
                                  stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            chromium = os.environ.get("SIMFIND_CHROMIUM") or shutil.which("chromium") or shutil.which("google-chrome")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 900, "height": 640})
                page.goto(url + "/")
                page.set_input_files("#image", query)
                page.click("button[type=submit]")
                page.wait_for_selector("#results figure")
                page.wait_for_function("[...document.querySelectorAll('#results img')].every(i => i.naturalWidth)")
                page.screenshot(path=os.path.join(HERE, "serve-page.png"), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait()
    print(f"wrote {os.path.join(HERE, 'serve-page.png')}")


if __name__ == "__main__":
    main()
