"""`simfind serve`: the index over HTTP, through Starlette's test client and through a real server process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from simfind import api

from .conftest import jpeg_bytes, picture, save
from .test_clip import tiny_model
from .test_decode import _png_claiming

pytest.importorskip("starlette", reason="the serve tests need simfind[serve] (make install)")
httpx = pytest.importorskip("httpx", reason="the serve tests need httpx (make install)")
from starlette.testclient import TestClient  # noqa: E402

from simfind.serve import create_app  # noqa: E402

SIMFIND = [sys.executable, "-m", "simfind"]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path]:
    """An index (hash mode) of 6 pictures; the folder holds them and, apart, an unindexed copy of picture 2."""
    root = tmp_path_factory.mktemp("serve")
    for s in range(6):
        save(picture(300 + s), root / "lib" / f"p{s}.jpg", quality=92)
    save(picture(302).resize((400, 300)), root / "new" / "p2-small.jpg", quality=80)
    index_dir = root / "index"
    api.index([str(root / "lib")], index_dir=str(index_dir), clip=None)
    return root, index_dir


def upload(client, path_or_bytes, url: str = "/query", **fields):
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return client.post(url, files={"image": ("q.jpg", data, "image/jpeg")}, data={k: str(v) for k, v in fields.items()})


def cli_query(index_dir: Path, image: Path, *args: str) -> dict:
    run = subprocess.run([*SIMFIND, "query", str(image), "--index", str(index_dir), "--format", "json", *args],
                         capture_output=True, text=True, timeout=120)
    return json.loads(run.stdout)


def test_an_uploaded_image_gets_the_json_query_prints(library):
    root, index_dir = library
    client = TestClient(create_app(str(index_dir)))
    got = upload(client, root / "new" / "p2-small.jpg", k=3)
    assert got.status_code == 200
    doc = got.json()
    assert doc["results"][0]["path"] == str(root / "lib" / "p2.jpg")
    want = cli_query(index_dir, root / "new" / "p2-small.jpg", "-k", "3")
    assert doc["results"] == want["results"] and doc["by"] == want["by"] == "hash"


def test_match_gives_a_verdict_and_needs_a_threshold(library):
    root, index_dir = library
    client = TestClient(create_app(str(index_dir)))
    yes = upload(client, root / "new" / "p2-small.jpg", url="/match", threshold=0.9).json()
    assert yes["match"] is True and yes["best"]["path"] == str(root / "lib" / "p2.jpg")
    no = upload(client, jpeg_bytes(picture(999)), url="/match", threshold=0.9).json()
    assert no["match"] is False and no["best"] is None
    missing = upload(client, root / "new" / "p2-small.jpg", url="/match")
    assert missing.status_code == 400 and "threshold" in missing.json()["error"]


BAD_UPLOADS = {
    "a text file": (b"this is not a picture\n" * 40, 422),
    "a truncated JPEG": (jpeg_bytes(picture(4))[:300], 422),
    "a decompression bomb": (_png_claiming(100_000, 100_000), 422),
    "an empty file": (b"", 422),
}


@pytest.mark.parametrize("kind", BAD_UPLOADS)
def test_a_bad_upload_is_a_4xx_json_error_and_the_server_goes_on(library, kind):
    root, index_dir = library
    client = TestClient(create_app(str(index_dir)), raise_server_exceptions=True)
    data, status = BAD_UPLOADS[kind]
    got = upload(client, data)
    assert got.status_code == status and got.json()["error"]
    assert upload(client, root / "lib" / "p1.jpg").status_code == 200


def test_uploads_over_the_limit_and_malformed_requests_are_refused(library):
    root, index_dir = library
    client = TestClient(create_app(str(index_dir), max_upload_mb=0.01))
    big = upload(client, jpeg_bytes(picture(5, (1600, 1200)), quality=95))
    assert big.status_code == 413 and "limit" in big.json()["error"]
    assert client.post("/query", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/query", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    text = client.post("/query", json={"text": "a cat", "data": "not bytes", "label": "/etc/passwd"})
    assert text.status_code == 400 and "CLIP" in text.json()["error"]  # a text query, whatever else it carries
    assert client.post("/query", data={"k": "3"}).status_code in (400, 415)
    roomy = TestClient(create_app(str(index_dir)))
    assert upload(roomy, root / "lib" / "p1.jpg", k="many").status_code == 400
    assert upload(roomy, root / "lib" / "p1.jpg", k=0).status_code == 400
    assert upload(roomy, root / "lib" / "p1.jpg", threshold=1.5).status_code == 400


def test_the_token_guards_everything_but_health_and_the_page(library):
    root, index_dir = library
    client = TestClient(create_app(str(index_dir), token="s3cret"))
    assert upload(client, root / "lib" / "p1.jpg").status_code == 401
    bearer = {"Authorization": "Bearer s3cret"}
    ok = client.post("/query", files={"image": ("q.jpg", (root / "lib" / "p1.jpg").read_bytes())}, headers=bearer)
    assert ok.status_code == 200
    assert client.get(f"/thumb/{ok.json()['results'][0]['id']}").status_code == 401
    assert client.get(f"/thumb/{ok.json()['results'][0]['id']}", headers=bearer).content[:2] == b"\xff\xd8"
    wrong = client.post("/query", files={"image": ("q.jpg", b"x")}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert client.get("/health").json()["files"] == 6
    assert client.get("/").status_code == 200


def test_thumbnails_only_for_indexed_files_by_id(library):
    _root, index_dir = library
    client = TestClient(create_app(str(index_dir)))
    assert client.get("/thumb/999999").status_code == 404
    assert client.get("/thumb/..%2F..%2Fetc%2Fpasswd").status_code == 404  # ids only: no path is ever read


def test_a_public_address_without_a_token_is_refused(library, tmp_path):
    _root, index_dir = library
    run = subprocess.run([*SIMFIND, "serve", "--index", str(index_dir), "--host", "0.0.0.0"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "--token" in run.stderr


def test_text_and_image_queries_with_clip(tmp_path):
    spec = tiny_model(tmp_path / "model")
    for s in range(4):
        save(picture(400 + s), tmp_path / "lib" / f"c{s}.jpg")
    api.index([str(tmp_path / "lib")], index_dir=str(tmp_path / "idx"), clip=spec, device="cpu")
    client = TestClient(create_app(str(tmp_path / "idx"), device="cpu"))
    text = client.post("/query", json={"text": "a red ball", "k": 2})
    assert text.status_code == 200 and text.json()["by"] == "clip" and len(text.json()["results"]) == 2
    image = upload(client, tmp_path / "lib" / "c1.jpg", k=1).json()
    assert image["results"][0]["path"] == str(tmp_path / "lib" / "c1.jpg")
    assert client.get("/health").json()["model"] == spec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(library, tmp_path):
    """A `simfind serve` process on a free loopback port, over a copy of the library's index."""
    import shutil

    root, index_dir = library[0], tmp_path / "index"
    shutil.copytree(library[1], index_dir)
    port = _free_port()
    proc = subprocess.Popen([*SIMFIND, "serve", "--index", str(index_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "no start"
        time.sleep(0.1)
    yield url, root, index_dir
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err


def test_a_server_answers_32_concurrent_queries_as_it_answers_them_one_by_one(server):
    url, root, _index_dir = server
    images = [root / "lib" / f"p{s % 6}.jpg" for s in range(32)]

    def ask(path: Path) -> list:
        r = httpx.post(url + "/query", files={"image": ("q.jpg", path.read_bytes())}, data={"k": "3"}, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()["results"]

    one_by_one = [ask(p) for p in images[:6]]
    with ThreadPoolExecutor(32) as pool:
        together = list(pool.map(ask, images))
    assert together == [one_by_one[s % 6] for s in range(32)]


def test_the_server_picks_up_a_new_revision_without_a_restart(server, tmp_path):
    url, root, index_dir = server
    extra = save(picture(777), root / "lib2" / "late.jpg")
    before = httpx.post(url + "/query", files={"image": ("q.jpg", extra.read_bytes())}, timeout=60).json()
    assert all(r["path"] != str(extra) for r in before["results"])
    api.index([str(root / "lib2")], index_dir=str(index_dir), clip=None)
    after = httpx.post(url + "/query", files={"image": ("q.jpg", extra.read_bytes())}, timeout=60).json()
    assert after["results"][0]["path"] == str(extra) and after["results"][0]["similarity"] == 1.0
    assert httpx.get(url + "/health").json()["files"] == 7


def _chromium() -> str | None:
    import shutil

    return next((p for p in (os.environ.get("SIMFIND_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), shutil.which("google-chrome")) if p), None)


def test_the_upload_page_in_a_browser_shows_the_results_of_an_upload(server):
    """The page at / in headless Chromium: choose a file, press Search, see the query picture and the results'
    thumbnails with their similarity."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (make install)")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium here: install it (apt install chromium) or set SIMFIND_CHROMIUM to its path")
    url, root, _index_dir = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(url + "/")
            page.set_input_files("#image", str(root / "new" / "p2-small.jpg"))
            page.click("button[type=submit]")
            page.wait_for_selector("#results figure")
            captions = page.locator("#results figcaption").all_inner_texts()
            assert len(captions) == 1 and captions[0].endswith(str(root / "lib" / "p2.jpg"))
            assert float(captions[0].split()[0]) >= 0.9
            page.wait_for_function("document.querySelector('#results img').naturalWidth > 0")  # the thumbnail came
            assert page.locator("#query img").count() == 1
            assert page.inner_text("#status") == ""
        finally:
            browser.close()


def test_a_port_in_use_is_one_line_and_no_serving_claim(library):
    _root, index_dir = library
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = subprocess.run([*SIMFIND, "serve", "--index", str(index_dir), "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 3 and run.stderr.count("\n") == 1, run.stderr
    assert "cannot listen on 127.0.0.1" in run.stderr and "serving" not in run.stderr


def test_a_wrong_method_is_a_json_error(library):
    client = TestClient(create_app(str(library[1])))
    r = client.get("/query")
    assert r.status_code == 405 and "error" in r.json()


def test_answers_on_a_kept_alive_connection_go_out_at_once():
    """A response written in two parts must not wait for the client's delayed ACK (Nagle): connections the
    server accepts have TCP_NODELAY, as uvicorn's own sockets do (about 40 ms a request otherwise)."""
    from simfind.serve import _listen

    listening = _listen("127.0.0.1", _free_port())
    with listening, socket.create_connection(listening.getsockname()[:2]):
        conn, _addr = listening.accept()
        with conn:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
