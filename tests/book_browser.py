"""Open pages of the built book in headless Chromium, as a reader would, and report what went wrong.

Chromium is driven through its DevTools protocol over a websocket
(websocket-client, a small pure-Python package), not through selenium and
chromedriver: the protocol itself reports what this check is about (uncaught
exceptions, console errors, failed loads, every request the page makes, which
it can refuse before it leaves the browser), where WebDriver would need
vendor logging options for half of it.

Nothing leaves 127.0.0.1: Chromium starts with a host resolver that resolves
no name but localhost, and every request the page makes passes through the
protocol's Fetch domain, which fails any request to another host and records
it as a problem of that page.
"""
import base64
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import websocket

LOCAL_HOSTS = {"127.0.0.1"}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Site:
    """The built book served from 127.0.0.1 on a free port (a thread; close() stops it)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium and one page of it, driven over the DevTools protocol."""

    def __init__(self, executable, width=1280, height=900, timeout=60.0):
        self.profile = tempfile.mkdtemp(prefix="numpyvae-chromium-")
        self.timeout = timeout
        args = [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-features=Translate,MediaRouter,OptimizationHints",
                "--metrics-recording-only", "--mute-audio", "--hide-scrollbars", "--no-proxy-server",
                # no name resolves but localhost: a request to any other host cannot even be looked up
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
                f"--window-size={width},{height}", f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0", "--remote-allow-origins=*", "about:blank"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                err = self.process.stderr.read() if self.process.poll() is not None else "(still starting)"
                self.close()
                raise RuntimeError(f"chromium did not start: {err[-2000:]}")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        # the page target: ask the browser for its targets over HTTP on 127.0.0.1
        import urllib.request
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never through an http_proxy
        for _ in range(100):
            targets = json.load(direct.open(f"http://127.0.0.1:{port}/json/list", timeout=5))
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                break
            time.sleep(0.05)
        # websocket-client would send even a 127.0.0.1 connection through an http_proxy of the environment
        proxies = {k: os.environ.pop(k) for k in PROXY_VARIABLES if k in os.environ}
        try:
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                                  suppress_origin=True)
        finally:
            os.environ.update(proxies)
        self.next_id = 0
        self.events = []
        for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.call(method)
        self.call("Fetch.enable", patterns=[{"urlPattern": "*", "requestStage": "Request"}])
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    # -- the protocol
    def _send(self, method, params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def _handle(self, message):
        """Answer the Fetch interceptions at once (local: continue; other hosts: fail); keep the rest."""
        if message.get("method") == "Fetch.requestPaused":
            params = message["params"]
            url = params["request"]["url"]
            host = urlsplit(url).hostname
            if urlsplit(url).scheme in ("data", "blob") or host in LOCAL_HOSTS:
                self._send("Fetch.continueRequest", {"requestId": params["requestId"]})
            else:
                self._send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"})
                self.events.append({"method": "numpyvae.blocked", "params": {"url": url}})
            return
        self.events.append(message)

    def call(self, method, **params):
        wanted = self._send(method, params)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "id" not in message:
                self._handle(message)
        raise TimeoutError(f"{method}: no answer in {self.timeout} s")

    def wait_for(self, method, seconds=None):
        deadline = time.monotonic() + (seconds or self.timeout)
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            finally:
                self.ws.settimeout(self.timeout)
            if "id" not in message:
                self._handle(message)
                if message.get("method") == method:
                    self.events.remove(message)
                    return message
        raise TimeoutError(f"no {method} within {seconds or self.timeout} s")

    def evaluate(self, expression, await_promise=False):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating {expression[:60]!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- pages
    def open(self, url):
        """Load ``url``, wait for it and for MathJax; returns the protocol's events during the load."""
        self.events = []
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        # MathJax typesets after the load event; wait for it to finish (when the page has it)
        self.evaluate("(window.MathJax && MathJax.startup && MathJax.startup.promise) ? "
                      "MathJax.startup.promise.then(() => true) : Promise.resolve(false)", await_promise=True)
        # images below the fold: make every one load, then wait for them
        self.evaluate("Promise.all(Array.from(document.images).map(img => { img.loading = 'eager'; "
                      "return img.complete ? null : new Promise(r => { img.onload = img.onerror = r; "
                      "setTimeout(r, 10000); }); })).then(() => true)", await_promise=True)
        time.sleep(0.05)                       # let late console messages arrive
        self.call("Runtime.evaluate", expression="1")
        return list(self.events)

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if getattr(self, "process", None) is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# what the page shows, read in the page itself
PAGE_FACTS = r"""
(() => {
  const visible = document.body.cloneNode(true);
  visible.querySelectorAll('pre, code, script, style, mjx-container, mjx-assistive-mml, .MathJax, textarea, kbd, ' +
                           'div.highlight, .sig, .cli-help').forEach(e => e.remove());
  return {
    title: document.title,
    text: visible.textContent,
    brokenImages: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
                       .map(i => i.getAttribute('src')),
    images: document.images.length,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    typeset: document.querySelectorAll('mjx-container').length,
    mathErrors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.getAttribute('data-mjx-error') || e.textContent),
    mathSources: document.querySelectorAll('.math, span.math, div.math').length,
    // a displayed formula whose left end lies outside its box (cut off, out of reach of the scroll bar)
    mathCut: Array.from(document.querySelectorAll('mjx-container[display="true"]')).filter(c => {
      const box = (c.closest('div.math') || c).getBoundingClientRect();
      return Array.from(c.querySelectorAll('mjx-math')).some(m => m.getBoundingClientRect().left < box.left - 2);
    }).map(c => (c.querySelector('mjx-assistive-mml') || c).textContent.slice(0, 60)),
  };
})()
"""

# LaTeX left as text: display delimiters, \( \) \[ \] or a command such as \frac, outside code and typeset math
UNTYPESET = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\(frac|mathbb|mathcal|operatorname|log|sum|int|begin|end|left|right|"
                       r"tfrac|dfrac|sigma|mu|varepsilon|nabla|partial|mid|ge|le|cdot|odot|sqrt|hat|bar|tilde)\b")


def page_problems(browser, url, site):
    """Everything a reader would see go wrong on the page at ``url`` (sentences); also the page's facts."""
    events = browser.open(url)
    facts = browser.evaluate(PAGE_FACTS)
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "numpyvae.blocked":
            problems.append(f"requested a non-local address: {params['url']}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"page error: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append(f"console error: {args}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            problems.append(f"console error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"a load failed: {params.get('errorText')} ({params.get('type')})")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            problems.append(f"HTTP {params['response']['status']} for {params['response']['url']}")
    for src in facts["brokenImages"]:
        problems.append(f"image did not load: {src}")
    for error in facts["mathErrors"]:
        problems.append(f"MathJax could not typeset: {error}")
    for formula in facts["mathCut"]:
        problems.append(f"a displayed formula is cut off at the left: {formula!r}")
    for m in UNTYPESET.finditer(facts["text"]):
        context = facts["text"][max(0, m.start() - 40):m.end() + 40].replace("\n", " ")
        problems.append(f"untypeset math {m.group(0)!r} in the text: ...{context}...")
    return problems, facts


class Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


def anchors_of(path, cache={}):
    path = Path(path)
    if path not in cache:
        parser = Anchors()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = parser.ids
    return cache[path]


def link_problems(links, site, page_url):
    """Links inside the book that lead nowhere: a missing file, or an anchor the target does not have."""
    problems = []
    for link in links:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
            continue
        if not link.startswith(site.base):
            problems.append(f"link to another local port: {link}")
            continue
        url, fragment = urldefrag(link)
        rel = unquote(urlsplit(url).path).lstrip("/")
        target = site.folder / rel
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link: {link} (no file {rel or 'index.html'})")
            continue
        if fragment and target.suffix == ".html" and unquote(fragment) not in anchors_of(target):
            problems.append(f"broken anchor: {link} (no id {fragment!r} in {rel})")
    return problems
