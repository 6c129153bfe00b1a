#!/usr/bin/env python3
"""relay-big: 100 KB DKIM-signed messages, 2 recipients each, relayed by an MTA to a sink.

Subcommands (bench/relay_big.sh calls them; each can be run by hand):
  gen-eml OUT        write the test message once: multipart/mixed with a text/plain +
                     text/html alternative and a base64 attachment, ~100 KB, CRLF lines
  load               send one .eml N times over S concurrent SMTP sessions (asyncio; a new
                     connection per message unless --reuse); prints one JSON line
  sink               the shared harness's lib/sink.py (same protocol and accounting), which
                     also keeps the raw stream of its first --capture-conns connections
  run                one measured run against one MTA: starts the capturing sink and the
                     load generator, waits until the sink accepted N*R recipients, prints one
                     JSON line (the shared driver's fields, plus the load generator's own CPU
                     and the DKIM check of the captured messages)
  table FILE...      medians per MTA, mailerd/Postfix ratios, msg/s per core used

The /proc accounting (process tree CPU incl. reaped children, summed PSS/RSS sampled every
0.5 s, other CPU on the machine) is the shared driver's own (../shared/bench/lib/smtpbench.py),
imported, so relay-big figures are comparable with the harness's other scenarios.
Stdlib only, except `dkim` (Debian python3-dkim) to verify a captured signature, if present.
Loopback only.
"""
import argparse
import asyncio
import base64
import datetime
import json
import os
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_LIB = os.environ.get(
    "SHARED_BENCH_LIB", os.path.join(HERE, "..", "..", "shared", "bench", "lib"))
sys.path.insert(0, os.path.abspath(SHARED_LIB))

# KumoMTA's published figure: 3.3 million 100 KB DKIM-signed messages per hour on 8 cores.
KUMO_PER_CORE = 3_300_000 / 3600 / 8


# ----------------------------------------------------------------------------- gen-eml
def gen_eml(out, size, sender):
    rnd = random.Random(22)
    words = ("delivery queue message server domain report weekly update customer order "
             "invoice account settings offer product team release notes security support "
             "schedule meeting summary newsletter").split()

    def para(n):
        return " ".join(rnd.choice(words) for _ in range(n)).capitalize() + "."

    paras = [para(rnd.randint(30, 60)) for _ in range(18)]
    text = "\r\n\r\n".join(_wrap(p, 72) for p in paras)
    html = ("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>Weekly update</title>"
            "</head>\r\n<body style=\"font-family:sans-serif\">\r\n"
            + "\r\n".join("<p>%s</p>" % _wrap(p, 72) for p in paras)
            + "\r\n</body></html>")
    head = [
        "From: Example News <%s>" % sender,
        "To: Subscriber <r@rcpt.test>",
        "Subject: Weekly update with the report attached",
        "Date: Sun, 06 Dec 2026 12:00:00 +0000",
        "Message-ID: <relay-big-22@sender.test>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"=_mixed_22\"",
    ]
    alt = ["--=_mixed_22",
           "Content-Type: multipart/alternative; boundary=\"=_alt_22\"", "",
           "--=_alt_22",
           "Content-Type: text/plain; charset=utf-8",
           "Content-Transfer-Encoding: 7bit", "", text, "",
           "--=_alt_22",
           "Content-Type: text/html; charset=utf-8",
           "Content-Transfer-Encoding: 7bit", "", html, "",
           "--=_alt_22--", ""]
    skeleton = "\r\n".join(head) + "\r\n\r\n" + "\r\n".join(alt)
    att_head = ("--=_mixed_22\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
                "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n")
    tail = "\r\n--=_mixed_22--\r\n"
    room = size - len(skeleton) - len(att_head) - len(tail)
    # base64 lines of 76 chars + CRLF carry 57 bytes each
    raw = rnd.randbytes(max(0, room) * 57 // 78)
    b64 = base64.b64encode(raw).decode()
    att = "\r\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    msg = (skeleton + att_head + att + tail).encode()
    with open(out, "wb") as f:
        f.write(msg)
    print("%s: %d bytes" % (out, len(msg)))


def _wrap(s, width):
    lines, cur = [], ""
    for w in s.split():
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = (cur + " " + w) if cur else w
    lines.append(cur)
    return "\r\n".join(lines)


# ----------------------------------------------------------------------------- load
async def _reply(reader):
    """One SMTP reply (multi-line aware) -> (code, last line)."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3]), line


async def _session(a, data, state):
    host, port = a.target.rsplit(":", 1)
    reader = writer = None
    pipelining = False
    while state["next"] < a.messages:
        state["next"] += 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, int(port))
                code, line = await _reply(reader)
                if code != 220:
                    raise ConnectionError(line)
                writer.write(b"EHLO load.relay-big.test\r\n")
                pipelining = False
                while True:
                    line = await reader.readline()
                    if not line:
                        raise ConnectionError("closed at EHLO")
                    if line[4:].strip().upper() == b"PIPELINING":
                        pipelining = True
                    if line[3:4] != b"-":
                        break
            cmds = [b"MAIL FROM:<%s>\r\n" % a.sender.encode()] + \
                   [b"RCPT TO:<%s>\r\n" % r.encode() for r in a.rcpt] + [b"DATA\r\n"]
            if pipelining:
                writer.write(b"".join(cmds))
                codes = [(await _reply(reader))[0] for _ in cmds]
            else:
                codes = []
                for c in cmds:
                    writer.write(c)
                    codes.append((await _reply(reader))[0])
            if codes[-1] != 354:
                raise ConnectionError("refused: %s" % codes)
            writer.write(data)
            code, line = await _reply(reader)
            if code != 250:
                raise ConnectionError(line)
            state["ok"] += 1
            if not a.reuse:
                writer.write(b"QUIT\r\n")
                await _reply(reader)
                writer.close()
                writer = None
        except (OSError, ConnectionError, ValueError) as e:
            state["errors"] += 1
            state["last_error"] = str(e)[:200]
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        try:
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        except (OSError, ConnectionError):
            pass
        writer.close()


def dot_stuff(msg):
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    if msg.startswith(b"."):
        msg = b"." + msg
    return msg.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def _load(a):
    with open(a.eml, "rb") as f:
        data = dot_stuff(f.read())
    state = {"next": 0, "ok": 0, "errors": 0, "last_error": None}
    t0 = time.time()
    await asyncio.gather(*(_session(a, data, state) for _ in range(a.sessions)))
    t1 = time.time()
    self_cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"sent": state["ok"], "errors": state["errors"],
                      "last_error": state["last_error"], "wall_s": round(t1 - t0, 3),
                      "cpu_s": round(self_cpu.ru_utime + self_cpu.ru_stime, 3),
                      "bytes_per_msg": len(data)}), flush=True)


def cmd_load(a):
    asyncio.run(_load(a))
    return 0


# ----------------------------------------------------------------------------- sink
def cmd_sink(a):
    import sink as shared_sink

    class CapturingSink(shared_sink.SinkProtocol):
        """The shared sink, keeping the raw stream of its first connections (for the DKIM
        check): up to --capture-bytes of each, written as it arrives."""

        def connection_made(self, transport):
            super().connection_made(transport)
            self.cap = None
            if a.capture_dir and self.st.conns <= a.capture_conns:
                path = os.path.join(a.capture_dir, "conn-%d.raw" % self.st.conns)
                self.cap = open(path, "wb", buffering=0)
                self.cap_left = a.capture_bytes

        def buffer_updated(self, nbytes):
            if self.cap is not None and self.cap_left > 0:
                chunk = bytes(self.rview[:min(nbytes, self.cap_left)])
                self.cap.write(chunk)
                self.cap_left -= len(chunk)
            super().buffer_updated(nbytes)

        def connection_lost(self, exc):
            if self.cap is not None:
                self.cap.close()
                self.cap = None
            super().connection_lost(exc)

    shared_sink.SinkProtocol = CapturingSink
    if a.capture_dir:
        os.makedirs(a.capture_dir, exist_ok=True)
    args = argparse.Namespace(listen=a.listen, reject_domain=[], interval=0.1)
    try:
        asyncio.run(shared_sink.main(args))
    except KeyboardInterrupt:
        pass
    return 0


def captured_messages(capture_dir):
    """Message contents (dot-unstuffed) found in the captured client streams."""
    out = []
    for name in sorted(os.listdir(capture_dir)):
        with open(os.path.join(capture_dir, name), "rb") as f:
            raw = f.read()
        pos = 0
        while True:
            i = raw.find(b"\nDATA\r\n", pos)
            if i < 0:
                break
            start = i + len(b"\nDATA\r\n")
            end = raw.find(b"\r\n.\r\n", start)
            if end < 0:
                break
            body = raw[start:end + 2]
            if body.startswith(b".."):
                body = body[1:]
            out.append(body.replace(b"\r\n..", b"\r\n."))
            pos = end + 5
    return out


def dkim_check(capture_dir, txt_file, domain, selector, verify_max=3):
    msgs = captured_messages(capture_dir)
    signed = [m for m in msgs if b"\nDKIM-Signature:" in b"\n" + m[:m.find(b"\r\n\r\n")]]
    res = {"sampled": len(msgs), "signed": len(signed), "verified": None}
    if not signed or not txt_file:
        return res
    try:
        import dkim
    except ImportError:
        res["verify_error"] = "python3-dkim not installed"
        return res
    with open(txt_file, "rb") as f:
        txt = f.read().strip()
    want = ("%s._domainkey.%s." % (selector, domain)).encode()

    def dnsfunc(name, timeout=5):
        return txt if name.rstrip(b".") + b"." == want else None

    def verify(m):
        try:
            return bool(dkim.verify(m, dnsfunc=dnsfunc))
        except Exception as e:  # dkimpy raises on malformed input
            res["verify_error"] = str(e)[:200]
            return False

    sample = signed[:verify_max]
    strict = sum(verify(m) for m in sample)
    res["verified"] = "%d/%d" % (strict, len(sample))
    if strict < len(sample):
        # RFC 6376 3.7: the b= value is hashed as empty "including all surrounding whitespace";
        # dkimpy keeps folding whitespace between the b= value and a following ";" (as
        # mail-auth writes it), so retry with that whitespace removed.
        bws = re.compile(rb"(\sb=[A-Za-z0-9+/=\s]*?[A-Za-z0-9+/=])[ \t]*(?:\r\n[ \t]+)*;")
        res["verified_b_ws_removed"] = "%d/%d" % (
            sum(verify(bws.sub(rb"\1;", m, count=1)) for m in sample), len(sample))
    return res


# ----------------------------------------------------------------------------- run
def cmd_run(a):
    import smtpbench as sb

    listen_host, listen_port = sb.parse_hostport(a.listen)
    sb.parse_hostport(a.sink)
    capture_dir = os.path.join(a.scratch, "capture-%s-%d" % (a.mta, os.getpid()))
    rec = {"scenario": "relay-big", "mta": a.mta, "n": a.messages, "r": len(a.rcpt),
           "s": a.sessions, "l": os.path.getsize(a.eml), "reuse": a.reuse,
           "listen": a.listen, "sink": a.sink, "note": a.note,
           "ts": datetime.datetime.now().isoformat(timespec="seconds"),
           "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    sink_cmd = [sys.executable, os.path.abspath(__file__), "sink", "--listen", a.sink,
                "--capture-dir", capture_dir, "--capture-conns", str(a.capture_conns)]
    sink = sb.SinkProc.__new__(sb.SinkProc)
    # SinkProc with our command line (same reader thread and JSON status protocol)
    sink.impl = "py"
    sink.latest = {"msgs": 0, "rcpts": 0, "bounces": 0, "rejected_rcpts": 0,
                   "last": None, "last_bounce": None}
    import threading
    sink.lock = threading.Lock()
    sink.ready = threading.Event()
    sink.p = subprocess.Popen(sink_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sink.t = threading.Thread(target=sink._reader, daemon=True)
    sink.t.start()
    try:
        if not sink.ready.wait(10):
            raise SystemExit("sink did not start: %s" % sink.p.stderr.read()[-400:])
        if not sb.wait_port(listen_host, listen_port, 30):
            raise SystemExit("nothing listens on %s" % a.listen)
        roots = set(a.mta_pid) or sb.tree_roots(sb.listening_pids(listen_host, listen_port))
        rec["mta_roots"] = sorted(roots)
        if a.wait_idle > 0:
            rec["idle_wait_s"], rec["busy_cpus_before"] = sb.wait_quiet(a.wait_idle, 0.3)
        load_cmd = [sys.executable, os.path.abspath(__file__), "load", "--target", a.listen,
                    "-n", str(a.messages), "-s", str(a.sessions), "--eml", a.eml,
                    "--sender", a.sender] + sum((["--rcpt", r] for r in a.rcpt), []) + \
                   (["--reuse"] if a.reuse else [])
        rec["source_cmd"] = " ".join(load_cmd)
        sampler = sb.Sampler(roots, 0.5)
        sampler.sample()
        cpu0 = sb.tree_cpu_ticks(sb.process_tree(roots))
        busy0, _ = sb.machine_busy_ticks()
        self0 = os.times()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sink_cpu0 = sink.cpu_s()
        sampler.start()
        t0 = time.time()
        p = subprocess.run(load_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t1 = time.time()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_accept = sb.tree_cpu_ticks(sb.process_tree(roots))
        load = {}
        try:
            load = json.loads(p.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            rec["source_stderr"] = p.stderr.decode("utf-8", "replace")[-600:]
        rec["source_rc"] = p.returncode
        rec["source_sent"] = load.get("sent")
        rec["source_errors"] = load.get("errors")
        if load.get("last_error"):
            rec["source_last_error"] = load["last_error"]
        rec["accept_s"] = round(t1 - t0, 3)
        rec["accept_mps"] = round(a.messages / (t1 - t0), 1)
        rec["source_cpu_s"] = round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 2)
        rec["source_cpu_ms_per_msg"] = round(1000 * rec["source_cpu_s"] / a.messages, 3)

        ok = p.returncode == 0 and load.get("sent") == a.messages
        want = a.messages * len(a.rcpt)
        last_val, last_change = -1, time.time()
        while ok:
            v = sink.snapshot().get("rcpts", 0)
            now = time.time()
            if v >= want:
                break
            if v != last_val:
                last_val, last_change = v, now
            if now - last_change > a.stall or now - t0 > a.timeout:
                ok = False
                rec["error"] = "sink saw %d/%d rcpts" % (v, want)
            time.sleep(0.05)
        cpu_end = sb.tree_cpu_ticks(sb.process_tree(roots))
        busy1, _ = sb.machine_busy_ticks()
        self1 = os.times()
        sampler.stop()
        snap = sink.snapshot()
        sc = sink.cpu_s()
        rec["sink_cpu_s"] = round(sc - sink_cpu0, 2) if sc is not None and sink_cpu0 is not None else None
    finally:
        sink.stop()
    rec["sink_counts"] = {k: snap.get(k) for k in ("msgs", "rcpts", "conns", "bytes")}
    if snap.get("last"):
        d = snap["last"] - t0
        rec["deliver_s"] = round(d, 3)
        rec["deliver_mps"] = round(a.messages / d, 1)
        rec["deliver_rps"] = round(want / d, 1)
    rec["mta_cpu_accept_s"] = round((cpu_accept - cpu0) / sb.CLK_TCK, 2)
    rec["mta_cpu_s"] = round((cpu_end - cpu0) / sb.CLK_TCK, 2)
    rec["mta_cpu_ms_per_msg"] = round(1000.0 * (cpu_end - cpu0) / sb.CLK_TCK / a.messages, 3)
    rec["mta_peak_rss_kb"] = sampler.peak_rss
    rec["mta_peak_pss_kb"] = sampler.peak_pss
    rec["mta_max_procs"] = sampler.max_procs
    if rec.get("deliver_s") and rec["mta_cpu_s"] > 0:
        # cores the MTA kept busy on average, and its rate per such core
        rec["mta_cores_used"] = round(rec["mta_cpu_s"] / rec["deliver_s"], 3)
        rec["mps_per_core"] = round(a.messages / rec["mta_cpu_s"], 1)
    wall = time.time() - t0
    driver_cpu = (self1.user - self0.user) + (self1.system - self0.system)
    known = rec["mta_cpu_s"] + rec["source_cpu_s"] + (rec.get("sink_cpu_s") or 0) + driver_cpu
    rec["wall_s"] = round(wall, 3)
    rec["machine_busy_cpus"] = round((busy1 - busy0) / sb.CLK_TCK / wall, 2)
    rec["other_cpu_s"] = round((busy1 - busy0) / sb.CLK_TCK - known, 2)
    rec["dkim"] = dkim_check(capture_dir, a.dkim_txt, a.dkim_domain, a.dkim_selector)
    ok = ok and rec["dkim"]["signed"] > 0 and rec["dkim"]["signed"] == rec["dkim"]["sampled"]
    if not ok and "error" not in rec and rec["dkim"]["signed"] != rec["dkim"]["sampled"]:
        rec["error"] = "unsigned messages at the sink"
    rec["ok"] = ok
    print(json.dumps(rec), flush=True)
    return 0 if ok else 1


# ----------------------------------------------------------------------------- table
def cmd_table(a):
    recs = []
    for path in a.files:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    if r.get("scenario") == "relay-big" and r.get("ok"):
                        recs.append(r)
    by = {}
    for r in recs:
        by.setdefault(r["mta"], []).append(r)

    def med(rs, k):
        v = [r[k] for r in rs if r.get(k) is not None]
        return statistics.median(v) if v else None

    rows = {}
    for mta, rs in by.items():
        rows[mta] = {k: med(rs, k) for k in (
            "deliver_mps", "mta_cpu_ms_per_msg", "mta_peak_pss_kb", "mta_peak_rss_kb",
            "mta_cores_used", "mps_per_core", "source_cpu_ms_per_msg", "other_cpu_s")}
        rows[mta]["runs"] = len(rs)
        rows[mta]["range"] = "%s-%s" % (min(r["deliver_mps"] for r in rs),
                                        max(r["deliver_mps"] for r in rs))
    print("| relay-big (100 KB, DKIM, 2 rcpt), medians | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))

    def line(label, key, fmt):
        print("| %s | %s |" % (label, " | ".join(
            (fmt % rows[m][key]) if rows[m].get(key) is not None else "-" for m in rows)))

    line("runs", "runs", "%d")
    line("delivered msg/s", "deliver_mps", "%.1f")
    line("delivered msg/s min-max", "range", "%s")
    line("MTA CPU ms/msg (whole tree)", "mta_cpu_ms_per_msg", "%.2f")
    line("MTA cores used (CPU s / delivery s)", "mta_cores_used", "%.2f")
    line("msg/s per core used", "mps_per_core", "%.0f")
    line("peak PSS KiB", "mta_peak_pss_kb", "%.0f")
    line("peak RSS KiB", "mta_peak_rss_kb", "%.0f")
    line("load generator CPU ms/msg", "source_cpu_ms_per_msg", "%.2f")
    line("other CPU s on the machine", "other_cpu_s", "%.1f")
    m, p = rows.get("mailerd"), rows.get("postfix")
    if m and p and p["deliver_mps"] and m["mta_cpu_ms_per_msg"]:
        print()
        print("mailerd / Postfix+OpenDKIM: %.2fx msg/s, %.2fx less CPU per message" % (
            m["deliver_mps"] / p["deliver_mps"], p["mta_cpu_ms_per_msg"] / m["mta_cpu_ms_per_msg"]))
    if m and m.get("mps_per_core"):
        print("mailerd per core used: %.0f msg/s = %.2fx KumoMTA's published %.0f msg/s per core "
              "(3.3M/h on 8 cores, 100 KB, DKIM)" % (
                  m["mps_per_core"], m["mps_per_core"] / KUMO_PER_CORE, KUMO_PER_CORE))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen-eml")
    g.add_argument("out")
    g.add_argument("--size", type=int, default=102400)
    g.add_argument("--sender", default="news@sender.test")
    ld = sub.add_parser("load")
    ld.add_argument("--target", required=True)
    for p in (ld,):
        p.add_argument("-n", "--messages", type=int, default=300)
        p.add_argument("-s", "--sessions", type=int, default=20)
        p.add_argument("--eml", required=True)
        p.add_argument("--sender", default="s@sender.test")
        p.add_argument("--rcpt", action="append", default=[])
        p.add_argument("--reuse", action="store_true")
    sk = sub.add_parser("sink")
    sk.add_argument("--listen", default="127.0.0.20:2526")
    sk.add_argument("--capture-dir", default="")
    sk.add_argument("--capture-conns", type=int, default=4)
    sk.add_argument("--capture-bytes", type=int, default=1 << 20)
    rn = sub.add_parser("run")
    rn.add_argument("--mta", required=True)
    rn.add_argument("--listen", required=True)
    rn.add_argument("--sink", default="127.0.0.20:2526")
    rn.add_argument("-n", "--messages", type=int, default=300)
    rn.add_argument("-s", "--sessions", type=int, default=20)
    rn.add_argument("--eml", required=True)
    rn.add_argument("--sender", default="s@sender.test")
    rn.add_argument("--rcpt", action="append", default=[])
    rn.add_argument("--reuse", action="store_true")
    rn.add_argument("--mta-pid", type=int, action="append", default=[])
    rn.add_argument("--scratch", default="/tmp")
    rn.add_argument("--capture-conns", type=int, default=4)
    rn.add_argument("--dkim-txt", default="")
    rn.add_argument("--dkim-domain", default="sender.test")
    rn.add_argument("--dkim-selector", default="bench")
    rn.add_argument("--timeout", type=float, default=1800)
    rn.add_argument("--stall", type=float, default=120)
    rn.add_argument("--wait-idle", type=float, default=0)
    rn.add_argument("--note", default="")
    tb = sub.add_parser("table")
    tb.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.cmd in ("load", "run") and not a.rcpt:
        a.rcpt = ["1r@rcpt.test", "2r@rcpt.test"]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return {"gen-eml": lambda: gen_eml(a.out, a.size, a.sender), "load": lambda: cmd_load(a),
            "sink": lambda: cmd_sink(a), "run": lambda: cmd_run(a),
            "table": lambda: cmd_table(a)}[a.cmd]() or 0


if __name__ == "__main__":
    sys.exit(main())
