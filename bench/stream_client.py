#!/usr/bin/env python3
"""Streaming client for bench/stream.sh (standard library only).

  ttft    N streamed chat completions on C keep-alive connections; per request the time from
          writing the request to the first SSE event whose choices[0].delta.content is
          non-empty ("ttft"), and to the first whose content has a non-space character
          ("vis": the first visible token), and whether the reassembled content equals
          --expect. Prints one BENCH line (percentiles in microseconds).
  tput    streams for --duration seconds on C connections and counts the SSE events
          (`data:` lines) delivered; prints one BENCH line (events/s).
  once    one streamed request; prints the reassembled content and the raw events (JSON).

HTTP/1.1 is spoken over a raw socket (chunked or length-delimited bodies) so the client adds
as little as possible between the socket and the timestamp.
"""

import argparse
import json
import socket
import sys
import threading
import time
from urllib.parse import urlparse


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, url):
        u = urlparse(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path
        self.sock = None
        self.buf = b""

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, body):
        if self.sock is None:
            self.connect()
        req = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
               f"Content-Type: application/json\r\nAuthorization: Bearer sk-bench\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.sock.sendall(req)

    def _fill(self):
        d = self.sock.recv(262144)
        if not d:
            raise ConnectionError("connection closed")
        self.buf += d

    def headers(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            h[k.strip().lower()] = v.strip()
        return status, h

    def body_pieces(self, h):
        """Yields decoded body bytes as they arrive."""
        if h.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while not self.buf.startswith(b"\r\n"):
                        if b"\r\n" in self.buf:  # trailers
                            self.buf = self.buf.split(b"\r\n", 1)[1]
                        else:
                            self._fill()
                    self.buf = self.buf[2:]
                    return
                while len(self.buf) < size + 2:
                    self._fill()
                piece, self.buf = self.buf[:size], self.buf[size + 2:]
                yield piece
        elif "content-length" in h:
            left = int(h["content-length"])
            while left > 0:
                if not self.buf:
                    self._fill()
                piece, self.buf = self.buf[:left], self.buf[left:]
                left -= len(piece)
                yield piece
        else:  # until close
            while True:
                if self.buf:
                    piece, self.buf = self.buf, b""
                    yield piece
                try:
                    self._fill()
                except ConnectionError:
                    self.sock.close()
                    self.sock = None
                    return
        if h.get("connection", "").lower() == "close":
            self.sock.close()
            self.sock = None


def content_of(data):
    try:
        j = json.loads(data)
    except ValueError:
        return None
    ch = j.get("choices") or []
    if not ch:
        return None
    return (ch[0].get("delta") or {}).get("content")


def one_stream(conn, body, t_send_ref=None):
    """Sends one request; returns (status, ttft_s or None, content, events, total_s)."""
    t0 = time.perf_counter()
    conn.send(body)
    status, h = conn.headers()
    ttft = vis = None
    parts, events, pending = [], [], b""
    for piece in conn.body_pieces(h):
        pending += piece
        while b"\n\n" in pending:
            ev, pending = pending.split(b"\n\n", 1)
            for line in ev.split(b"\n"):
                if line.startswith(b"data:"):
                    data = line[5:].strip().decode()
                    events.append(data)
                    if data == "[DONE]":
                        continue
                    c = content_of(data)
                    if c:
                        now = time.perf_counter() - t0
                        if ttft is None:
                            ttft = now
                        if vis is None and c.strip():
                            vis = now
                        parts.append(c)
    return status, (ttft, vis), "".join(parts), events, time.perf_counter() - t0


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def make_body(a):
    b = {"model": a.model, "stream": True, "max_tokens": 4096,
         "messages": [{"role": "user", "content": a.prompt}]}
    if a.say is not None:
        b["mock_script"] = {"say": a.say}
    if a.extra:
        b.update(json.loads(a.extra))
    return json.dumps(b).encode()


def cmd_ttft(a):
    body = make_body(a)
    lock = threading.Lock()
    todo = list(range(a.requests))
    res = []

    def worker():
        conn = Conn(a.url)
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            try:
                status, ttft, content, _, total = one_stream(conn, body)
            except (OSError, ValueError) as e:
                conn.sock = None
                with lock:
                    res.append({"error": str(e)})
                continue
            with lock:
                res.append({"status": status, "ttft": ttft[0], "visible": ttft[1], "total": total,
                            "ok": status == 200 and (a.expect is None or content == a.expect),
                            "content": content if a.expect is not None and content != a.expect else None})
            if a.pause_ms:
                time.sleep(a.pause_ms / 1000)

    ths = [threading.Thread(target=worker) for _ in range(a.conc)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    warm = res[a.warmup:]
    tt = [r["ttft"] * 1e6 for r in warm if r.get("ttft") is not None]
    vis = [r["visible"] * 1e6 for r in warm if r.get("visible") is not None]
    tot = [r["total"] * 1e6 for r in warm if "total" in r]
    bad = [r for r in res if not r.get("ok")]
    if a.raw:
        with open(a.raw, "w") as f:
            for r in res:
                f.write(json.dumps(r) + "\n")
    for r in bad[:3]:
        print("MISMATCH", json.dumps(r)[:600], file=sys.stderr)
    print(f"BENCH requests={len(warm)} errors={len(bad)} "
          f"ttft_p50_us={pct(tt, 50):.0f} ttft_p90_us={pct(tt, 90):.0f} ttft_p99_us={pct(tt, 99):.0f} "
          f"ttft_max_us={max(tt) if tt else float('nan'):.0f} "
          f"vis_p50_us={pct(vis, 50):.0f} vis_p99_us={pct(vis, 99):.0f} total_p50_us={pct(tot, 50):.0f} "
          f"no_token={sum(1 for r in warm if r.get('ttft') is None)}")


def cmd_tput(a):
    body = make_body(a)
    stop = time.perf_counter() + a.duration
    lock = threading.Lock()
    tot = {"events": 0, "streams": 0, "bytes": 0, "errors": 0, "short": 0}

    def worker():
        conn = Conn(a.url)
        while time.perf_counter() < stop:
            try:
                conn.send(body)
                status, h = conn.headers()
                raw = b"".join(conn.body_pieces(h))
            except (OSError, ValueError):
                conn.sock = None
                with lock:
                    tot["errors"] += 1
                continue
            n = raw.count(b"data:")
            with lock:
                tot["events"] += n
                tot["streams"] += 1
                tot["bytes"] += len(raw)
                tot["errors"] += status != 200 or b"[DONE]" not in raw
                tot["short"] += a.expect_events is not None and n < a.expect_events

    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker) for _ in range(a.conc)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    el = time.perf_counter() - t0
    print(f"BENCH events={tot['events']} streams={tot['streams']} seconds={el:.3f} "
          f"events_per_s={tot['events'] / el:.0f} bytes={tot['bytes']} errors={tot['errors']} short={tot['short']}")


def cmd_once(a):
    conn = Conn(a.url)
    status, ttft, content, events, total = one_stream(conn, make_body(a))
    print(json.dumps({"status": status, "content": content, "events": len(events),
                      "ttft_ms": None if ttft[0] is None else round(ttft[0] * 1e3, 3),
                      "total_ms": round(total * 1e3, 3), "raw_events": events[-6:]}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["ttft", "tput", "once"])
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", default="tell me something")
    p.add_argument("--say", help="mock_script.say (the mock answers this text)")
    p.add_argument("--extra", help="JSON object merged into the request body")
    p.add_argument("--expect", help="content the client must receive (ttft)")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--conc", type=int, default=2)
    p.add_argument("--pause-ms", type=float, default=0)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--expect-events", type=int)
    p.add_argument("--raw", help="write per-request results (JSON lines) here")
    a = p.parse_args()
    {"ttft": cmd_ttft, "tput": cmd_tput, "once": cmd_once}[a.mode](a)


if __name__ == "__main__":
    main()
