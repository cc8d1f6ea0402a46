#!/usr/bin/env python3
"""Throughput of `h2mux tunnel` on loopback: a benchmark, not a test.

A target sends MIB MiB down through `tunnel client` -> pool -> `tunnel server` -> a public
connection (`down`), or the public connection sends them up to the target (`up`). Prints
MiB/s and the CPU seconds per GiB of the two tunnel processes (/proc). Bounded: one
transfer, 60 s socket timeout, both processes killed at the end.
  usage: tests/perf/tunnel_throughput.py BIN MIB down|up     (needs openssl for a test cert)
"""
import os, shutil, socket, subprocess, sys, tempfile, threading, time
if len(sys.argv) != 4 or sys.argv[3] not in ("down", "up"):
    sys.exit(__doc__)
BIN = sys.argv[1]; MIB = int(sys.argv[2]); DIR = sys.argv[3]
N = MIB << 20
buf = bytes(1 << 20)
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
tgt = socket.socket(); tgt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tgt.bind(("127.0.0.1", 0)); tgt.listen(4); tport = tgt.getsockname()[1]
def target():
    c, _ = tgt.accept()
    if DIR == "down":
        left = N
        while left > 0:
            k = min(left, len(buf)); c.sendall(memoryview(buf)[:k]); left -= k
        c.shutdown(socket.SHUT_WR)
        while c.recv(1 << 20): pass
    else:
        got = 0
        while True:
            d = len(c.recv(1 << 20))
            if d == 0: break
            got += d
        print("target got", got, file=sys.stderr)
    c.close()
threading.Thread(target=target, daemon=True).start()
env = dict(os.environ, H2MUX_TUNNEL_SECRET="k")
d = tempfile.mkdtemp()
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem", "-days", "1",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
               check=True, capture_output=True)
srv = subprocess.Popen([BIN, "tunnel", "server", "--listen", "127.0.0.1:47001", "--public", "127.0.0.1:47002",
                        "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem"], env=env, stderr=subprocess.DEVNULL)
time.sleep(0.5)
cli = subprocess.Popen([BIN, "tunnel", "client", "--server", "127.0.0.1:47001", "--target", f"127.0.0.1:{tport}",
                        "--tls-mode", "0", "--hostname", "localhost", "--min-capacity", "4"], env=env, stderr=subprocess.DEVNULL)
try:
    time.sleep(1.5)
    c0 = cpu(srv.pid) + cpu(cli.pid)
    s = socket.create_connection(("127.0.0.1", 47002)); s.settimeout(60)
    t = time.time(); got = 0
    if DIR == "down":
        rb = bytearray(1 << 20)
        while True:
            k = s.recv_into(rb)
            if k == 0: break
            got += k
    else:
        left = N
        while left > 0:
            k = min(left, len(buf)); s.sendall(memoryview(buf)[:k]); left -= k
        s.shutdown(socket.SHUT_WR)
        while s.recv(1 << 16): pass
        got = N
    el = time.time() - t
    c1 = cpu(srv.pid) + cpu(cli.pid)
    print(f"{DIR} {got >> 20} MiB {got / el / 2**20:.0f} MiB/s tunnel cpu {(c1 - c0) / (got / 2**30):.3f} s/GiB")
finally:
    srv.kill(); cli.kill()
    shutil.rmtree(d, ignore_errors=True)
