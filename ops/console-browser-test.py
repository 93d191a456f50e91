#!/usr/bin/env python3
"""Drives the web console in headless Chromium (Debian's `chromium`) over the DevTools protocol:
signs in with an admin key, opens a service's dead letters, replays one from the page (the
confirmation accepted), and waits to see the count drop; saves a screenshot for review.

Usage: console-browser-test.py BASE_URL SERVICE ADMIN_KEY SCREENSHOT.png [TYPE]
(TYPE: replay the first letter of that message type; default the first letter listed)
   or: console-browser-test.py --shop BASE_URL FOLDER --services A,B --streams S1,S2 --command ID
       --steps N --dead-service S --dead-type T
(the reference shop's overview map and chart, a saga waterfall and a dead-letter group,
checked and saved as PNGs in FOLDER)
Standard library only (a minimal WebSocket client), so it runs on any python3.
Exit 0 when the count dropped; prints what it saw either way.
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class WebSocket:
    def __init__(self, url):
        assert url.startswith("ws://")
        host_port, path = url[5:].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        head, self.buffer = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"websocket handshake failed: {head[:200]!r}")

    def send(self, text):
        payload = text.encode()
        header = bytearray([0x81])
        length = len(payload)
        if length < 126:
            header.append(0x80 | length)
        elif length < 65536:
            header.append(0x80 | 126)
            header += struct.pack(">H", length)
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", length)
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("websocket closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self):
        message = b""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode in (0x1, 0x0):
                message += payload
                if first & 0x80:
                    return message.decode()
            elif opcode == 0x8:
                raise RuntimeError("websocket closed by the browser")


class Page:
    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = self.evaluate(expression)
                if value:
                    return value
            except RuntimeError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for: {expression}")

    def open(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for(f"document.readyState === 'complete' && location.href.startsWith({json.dumps(url.split('?')[0])})")


def launch():
    """Starts headless Chromium with a DevTools port; returns (process, page, profile)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="choreo-chromium-")
    port_socket = socket.socket()
    port_socket.bind(("127.0.0.1", 0))
    port = port_socket.getsockname()[1]
    port_socket.close()
    process = subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    targets = None
    while time.time() < deadline:
        try:
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2))
            if any(t.get("type") == "page" for t in targets):
                break
        except OSError:
            pass
        time.sleep(0.2)
    page_target = next(t for t in targets if t.get("type") == "page")
    page = Page(page_target["webSocketDebuggerUrl"])
    page.call("Page.enable")
    page.call("Runtime.enable")
    return process, page, profile


def close(process, profile):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(profile, ignore_errors=True)


def screenshot(page, path, full=False):
    """Saves a PNG of the page (the whole page with full=True)."""
    params = {"format": "png"}
    if full:
        metrics = page.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics.get("contentSize")
        params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
        params["captureBeyondViewport"] = True
    shot = page.call("Page.captureScreenshot", **params)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(base64.b64decode(shot["data"]))
    print("screenshot:", path)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--shop":
        return shop(sys.argv[2:])
    base, service, key, shot_path = sys.argv[1:5]
    wanted = sys.argv[5] if len(sys.argv) > 5 else ""
    process, page, profile = launch()
    try:
        page.open(f"{base}/console/login")
        page.evaluate(f"document.querySelector('input[name=key]').value = {json.dumps(key)}; "
                      "document.querySelector('form[action=\"/console/login\"]').submit(); true")
        page.wait_for("location.pathname === '/console' && document.readyState === 'complete'")
        print("signed in; overview title:", page.evaluate("document.title"))

        page.open(f"{base}/console/dead/{service}")
        before = int(page.wait_for("document.getElementById('dead-total') && document.getElementById('dead-total').textContent"))
        print("dead letters before:", before)
        # Accept the confirmation dialog, then press the first Replay of a single letter's row.
        page.evaluate("window.confirm = () => true; true")
        clicked = page.evaluate(
            "(() => { const wanted = " + json.dumps(wanted) + "; const rows = [...document.querySelectorAll('tbody tr')].filter(r => r.querySelector('a[href*=\"/console/dead/\"]') && r.querySelector('button.replay') && (!wanted || (r.cells[2] && r.cells[2].textContent === wanted)));"
            " if (!rows.length) return false; rows[0].querySelector('button.replay').click(); return true; })()")
        if not clicked:
            print("no replay button found")
            return 1
        outcome = page.wait_for("document.getElementById('outcome') && document.getElementById('outcome').textContent")
        print("outcome:", outcome)
        after = before
        deadline = time.time() + 20
        while time.time() < deadline:
            page.open(f"{base}/console/dead/{service}")
            after = int(page.wait_for("document.getElementById('dead-total').textContent"))
            if after < before:
                break
            time.sleep(0.5)
        print("dead letters after:", after)
        page.open(f"{base}/console")
        page.wait_for("document.querySelector('table.overview') !== null")
        time.sleep(0.5)
        screenshot(page, shot_path)
        return 0 if after < before else 1
    finally:
        close(process, profile)


def shop(arguments):
    """The reference shop's console: the overview's map (every service and stream drawn, read
    edges carrying rates, some moving under load) and chart, a saga's waterfall (one bar per
    message), a dead-letter group; a screenshot of each."""
    import argparse
    parser = argparse.ArgumentParser(prog="console-browser-test.py --shop")
    parser.add_argument("base")
    parser.add_argument("folder")
    parser.add_argument("--services", required=True)
    parser.add_argument("--streams", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--dead-service", required=True)
    parser.add_argument("--dead-type", required=True)
    options = parser.parse_args(arguments)
    services = sorted(options.services.split(","))
    streams = sorted(options.streams.split(","))
    failures = []
    process, page, profile = launch()
    try:
        page.open(f"{options.base}/console")
        page.wait_for("document.querySelector('svg.map') !== null")
        # Under load the map's read edges show a rate above zero within a few refreshes.
        moving = page.wait_for(
            "[...document.querySelectorAll('svg.map path.edge')].filter(e => parseFloat(e.dataset.rate) > 0).length", 40)
        drawn = page.evaluate("JSON.stringify({"
                              "services: [...document.querySelectorAll('svg.map .node.service')].map(n => n.dataset.name).sort(),"
                              "streams: [...document.querySelectorAll('svg.map .node.stream')].map(n => n.dataset.name).sort(),"
                              "reads: [...document.querySelectorAll('svg.map text.label')].map(t => t.textContent),"
                              "series: document.querySelectorAll('svg.throughput .series').length,"
                              "rate: [...document.querySelectorAll('.rate')].map(r => r.textContent)})")
        drawn = json.loads(drawn)
        print("map services:", drawn["services"])
        print("map streams:", drawn["streams"])
        print("edges moving:", moving, "labels:", drawn["reads"][:6], "chart series:", drawn["series"], "rates:", drawn["rate"])
        if drawn["services"] != services:
            failures.append(f"map services {drawn['services']} != {services}")
        if drawn["streams"] != streams:
            failures.append(f"map streams {drawn['streams']} != {streams}")
        import re
        labelled = [label for label in drawn["reads"] if re.search(r"\d+(\.\d)?/s · lag \d+", label)]
        if not labelled:
            failures.append("no read edge carries a rate and a lag")
        if drawn["series"] < 1:
            failures.append("the throughput chart has no series")
        screenshot(page, os.path.join(options.folder, "console-overview-map.png"), full=True)

        page.open(f"{options.base}/console/commands/{options.command}")
        page.wait_for("document.querySelector('svg.waterfall') !== null")
        bars = page.evaluate("document.querySelectorAll('svg.waterfall g.bar').length")
        hops = page.evaluate("document.querySelectorAll('svg.waterfall rect.hop').length")
        slowest = page.evaluate("document.querySelectorAll('svg.waterfall rect.hop.slowest').length")
        print("waterfall bars:", bars, "hops:", hops, "slowest marked:", slowest)
        if bars != options.steps:
            failures.append(f"the waterfall has {bars} bars for {options.steps} messages")
        if slowest != 1:
            failures.append(f"{slowest} hops marked slowest (want 1)")
        screenshot(page, os.path.join(options.folder, "console-saga-waterfall.png"), full=True)

        page.open(f"{options.base}/console/dead/{options.dead_service}?type={options.dead_type}")
        count = page.wait_for("document.getElementById('dead-total') && document.getElementById('dead-total').textContent")
        groups = page.evaluate("[...document.querySelectorAll('table tbody tr')].map(r => r.textContent.trim()).slice(0, 3)")
        print("dead letters:", count, "groups:", groups)
        if int(count) < 1:
            failures.append("no dead letters shown")
        screenshot(page, os.path.join(options.folder, "console-dead-group.png"), full=True)
    finally:
        close(process, profile)
    for failure in failures:
        print("FAIL:", failure)
    print("shop console: " + ("ok" if not failures else f"{len(failures)} failure(s)"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
