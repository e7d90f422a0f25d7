"""`simfind serve`: the index answers over HTTP (an ASGI app on Starlette, the toolkit FastAPI is built on).

The process holds the CLIP model (loaded on the first query that needs a forward pass, then kept; behind a lock)
and opens the index read-only per request, so a request sees one committed state of the catalog (SQLite's
snapshot) and the revision `simfind index` wrote last, without a restart. No endpoint reads a path a client
gives: queries are uploaded bytes or a text, and thumbnails are served by catalog id, for indexed files only.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import socket
import threading
from collections.abc import Callable

from .errors import SimfindError, UsageError
from .records import QueryReport
from .render import query_dict
from .search import search
from .store import IndexDir

DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_MB = 25
MAX_K = 1000


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_binding(host: str, token: str | None) -> None:
    if not token and not is_loopback(host):
        raise UsageError(f"--host {host} lets other machines reach the index: pass --token TOKEN (clients then send "
                         "'Authorization: Bearer TOKEN'), or serve on 127.0.0.1")


class Models:
    """The CLIP model the index's embeddings came from, loaded once and shared by every request (one forward
    pass at a time); loaded again only if the index moves to another model."""

    def __init__(self, device: str, precision: str):
        self._device, self._precision = device, precision
        self._lock = threading.Lock()
        self._held: tuple[str, object] | None = None

    def __call__(self, spec: str):
        with self._lock:
            if self._held is None or self._held[0] != spec:
                from .embed import load

                self._held = spec, _Locked(load(spec, device=self._device, precision=self._precision))
            return self._held[1]


class _Locked:
    """A ClipModel whose forward passes run one at a time (torch's CPU kernels already use every core)."""

    def __init__(self, model):
        self._model = model
        self._lock = threading.Lock()
        self.preprocess = model.preprocess

    def embed_pixels(self, pixels):
        with self._lock:
            return self._model.embed_pixels(pixels)

    def embed_texts(self, texts):
        with self._lock:
            return self._model.embed_texts(texts)


def create_app(index_dir: str, *, token: str | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               device: str = "auto", precision: str = "auto"):
    """The ASGI app. `token`: every endpoint but /health and the page itself needs 'Authorization: Bearer
    TOKEN'."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    models = Models(device, precision)
    per_revision: dict = {}  # what a revision's queries share (its lookup), kept from request to request
    limit = int(max_upload_mb * (1 << 20))

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def authorised(request: Request) -> bool:
        if not token:
            return True
        given = request.headers.get("authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())

    async def body(request: Request) -> bytes | JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return error(413, f"the upload is larger than the server's limit of {max_upload_mb:g} MB")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return error(413, f"the upload is larger than the server's limit of {max_upload_mb:g} MB")
            chunks.append(chunk)
        return b"".join(chunks)

    async def parsed(request: Request) -> dict | JSONResponse:
        """The query: {"data": bytes, "label": name} or {"text": ...}, with k and threshold."""
        raw = await body(request)
        if isinstance(raw, JSONResponse):
            return raw
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            async def replay() -> dict:  # the form is parsed from the body read (and limited) above
                return {"type": "http.request", "body": raw, "more_body": False}

            try:
                form = await Request(request.scope, replay).form()
            except Exception as e:  # a malformed multipart body
                return error(400, f"cannot parse the form: {e}")
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                return error(400, "a multipart query needs an 'image' file field")
            fields = {"data": await upload.read(), "label": upload.filename or "upload",
                      "k": form.get("k"), "threshold": form.get("threshold")}
        elif kind.startswith("application/json"):
            try:
                given = json.loads(raw)
            except ValueError:
                return error(400, "the body is not valid JSON")
            if not isinstance(given, dict) or not isinstance(given.get("text"), str) or not given["text"].strip():
                return error(400, 'a JSON query is {"text": "...", "k": 10, "threshold": 0.9}')
            fields = {"data": None, "label": given["text"], "k": given.get("k"), "threshold": given.get("threshold")}
        else:
            return error(415, "send an image as multipart/form-data (field 'image') or a text as JSON")
        try:
            k = int(fields.get("k") or 10)
            threshold = None if fields.get("threshold") in (None, "") else float(fields["threshold"])
        except (TypeError, ValueError):
            return error(400, "k must be a whole number and threshold a number")
        if not 1 <= k <= MAX_K:
            return error(400, f"k must be between 1 and {MAX_K}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            return error(400, "threshold must be a similarity between 0 and 1")
        return {**fields, "k": k, "threshold": threshold}

    def answer(q: dict) -> QueryReport:
        with IndexDir.open(index_dir, cache=per_revision) as idx:  # per request: the newest committed revision
            return search(idx, q["label"], data=q["data"], k=q["k"], threshold=q["threshold"], model=models)

    async def run_query(request: Request, verdict: bool = False) -> QueryReport | JSONResponse:
        if not authorised(request):
            return error(401, "this server needs 'Authorization: Bearer TOKEN'")
        q = await parsed(request)
        if isinstance(q, JSONResponse):
            return q
        if verdict and q["threshold"] is None:
            return error(400, "/match needs a threshold: the similarity a reference image must reach")
        try:
            return await run_in_threadpool(answer, q)
        except UsageError as e:  # not an image, a text query without embeddings
            return error(400 if q["data"] is None else 422, str(e))
        except SimfindError as e:  # no index, a damaged one: the server's side
            return error(503, str(e))

    async def query(request: Request):
        report = await run_query(request)
        return report if isinstance(report, JSONResponse) else JSONResponse(query_dict(report))

    async def match(request: Request):
        report = await run_query(request, verdict=True)
        if isinstance(report, JSONResponse):
            return report
        doc = query_dict(report)
        best = doc["results"][0] if doc["results"] else None
        return JSONResponse({"version": doc["version"], "query": doc["query"], "by": doc["by"],
                             "threshold": report.threshold, "match": best is not None, "best": best})

    def state() -> dict:
        with IndexDir.open(index_dir) as idx:
            counts = idx.catalog.counts()
            return {"status": "ok", "revision": idx.revision, "files": counts["files"],
                    "model": idx.catalog.get_meta("model") if counts["embedded"] else None}

    async def health(request: Request):
        try:
            return JSONResponse(await run_in_threadpool(state))
        except SimfindError as e:
            return error(503, str(e))

    def thumbnail(file_id: int) -> bytes | None:
        from .pipeline import preview_chunk

        with IndexDir.open(index_dir) as idx:
            found = idx.catalog.files_by_id([file_id])
        if not found:
            return None
        uri = preview_chunk([found[0].path]).get(found[0].path)
        return base64.b64decode(uri.split(",", 1)[1]) if uri else None

    async def thumb(request: Request):
        if not authorised(request):
            return error(401, "this server needs 'Authorization: Bearer TOKEN'")
        try:
            jpeg = await run_in_threadpool(thumbnail, int(request.path_params["file_id"]))
        except SimfindError as e:
            return error(503, str(e))
        if jpeg is None:
            return error(404, "no indexed file has this id (or it cannot be read now)")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})

    async def page(request: Request):
        return HTMLResponse(PAGE.replace("__TOKEN_NEEDED__", "true" if token else "false"))

    routes = [Route("/", page), Route("/health", health), Route("/query", query, methods=["POST"]),
              Route("/match", match, methods=["POST"]), Route("/thumb/{file_id:int}", thumb)]
    async def http_error(request: Request, exc):  # a wrong method or path: JSON, as every other error
        return error(exc.status_code, exc.detail)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def serve(index_dir: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
          max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, device: str = "auto", precision: str = "auto",
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the index until interrupted. UsageError for a public address without a token or a missing extra;
    the index is opened once first, so that a missing or damaged one is said before the server starts."""
    check_binding(host, token)
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise UsageError("simfind serve needs its extra: pip install 'simfind[serve]'") from None
    with IndexDir.open(index_dir):
        pass
    app = create_app(index_dir, token=token, max_upload_mb=max_upload_mb, device=device, precision=precision)
    listening = _listen(host, port)  # before "serving" is said: a port in use is one line, not uvicorn's log
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if ready is not None:
        ready(f"http://{host}:{port}")
    server.run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Answers go out at once: without TCP_NODELAY (which asyncio sets only on sockets it knows for TCP) a
        # response written in two parts waits for the client's delayed ACK, about 40 ms a request on a kept-alive
        # connection. Accepted connections inherit it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        raise SimfindError(f"cannot listen on {host}:{port} ({e.strerror or e}); pass another --port or --host") \
            from None
    return sock


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>simfind</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px system-ui,sans-serif;margin:2rem;color:#222;max-width:60rem}
h1{font-size:1.3rem}form{display:flex;gap:.6rem;flex-wrap:wrap;align-items:center;margin-bottom:1rem}
#query img{max-height:200px;border:1px solid #ccc}
#results{display:flex;flex-wrap:wrap;gap:1rem;margin-top:1rem}
figure{margin:0;width:170px}figure img{width:160px;height:160px;object-fit:contain;background:#f4f4f4}
figcaption{font-size:12px;overflow-wrap:anywhere}.sim{font-weight:600}#status{color:#a00}
</style></head><body>
<h1>simfind: find this picture in the index</h1>
<form id="f">
  <input type="file" id="image" accept="image/*" aria-label="image">
  <input type="text" id="text" placeholder="or a text (CLIP)" aria-label="text">
  <label>k <input type="number" id="k" value="10" min="1" max="1000" style="width:4rem"></label>
  <input type="password" id="token" placeholder="token" aria-label="token" hidden>
  <button type="submit">Search</button>
</form>
<div id="query"></div><div id="status"></div><div id="results"></div>
<script>
const needsToken = __TOKEN_NEEDED__;
const $ = (id) => document.getElementById(id);
if (needsToken) $("token").hidden = false;
function headers() { return needsToken ? {"Authorization": "Bearer " + $("token").value} : {}; }
async function thumb(id, img) {
  const r = await fetch("/thumb/" + id, {headers: headers()});
  if (r.ok) img.src = URL.createObjectURL(await r.blob());
}
$("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("status").textContent = ""; $("results").textContent = ""; $("query").textContent = "";
  const file = $("image").files[0], k = $("k").value;
  let r;
  if (file) {
    const img = document.createElement("img"); img.src = URL.createObjectURL(file); img.alt = "query";
    $("query").appendChild(img);
    const body = new FormData(); body.append("image", file); body.append("k", k);
    r = await fetch("/query", {method: "POST", body, headers: headers()});
  } else if ($("text").value.trim()) {
    r = await fetch("/query", {method: "POST", headers: {...headers(), "Content-Type": "application/json"},
                               body: JSON.stringify({text: $("text").value, k: Number(k)})});
  } else { $("status").textContent = "choose an image or type a text"; return; }
  const doc = await r.json();
  if (!r.ok) { $("status").textContent = doc.error; return; }
  if (!doc.results.length) $("status").textContent = "no similar picture in the index";
  for (const m of doc.results) {
    const fig = document.createElement("figure"), img = document.createElement("img");
    img.alt = m.path; fig.appendChild(img);
    const cap = document.createElement("figcaption");
    const sim = document.createElement("span"); sim.className = "sim"; sim.textContent = m.similarity.toFixed(3);
    cap.append(sim, " " + m.path); fig.appendChild(cap); $("results").appendChild(fig);
    thumb(m.id, img);
  }
});
</script></body></html>
"""
