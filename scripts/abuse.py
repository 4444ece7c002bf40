#!/usr/bin/env python3
"""Abuse run against a release build of ironseal (issue 10, "Proof and
figures"). A command, not a test: bounded in count and time, loopback only.

It starts ironseal on free loopback ports with a fresh data directory, then:

  1. a redirect chain to an internal address: an http-01 responder that
     redirects once on its own host, then to 169.254.169.254 (cloud
     metadata); the challenge must fail with the address policy's refusal;
  2. an order with the most identifiers (100: accepted) and one more
     (101: refused);
  3. at once, for FLOOD_SECS at most: IDLE silent TCP connections spread
     over 127.0.0.2-127.0.0.41, a newNonce flood, an unauthenticated admin
     flood, an OCSP flood of random serials and an OCSP flood with nonces;
     while they run, a certbot issuance and `openssl ocsp` queries must
     still succeed.

It prints the server's peak RSS, its peak open file descriptors, the flood
rates and the latency of the certbot and openssl probes. Figures go into
docs/security.md ("Abuse run").

Usage: scripts/abuse.sh  (wraps this with the venv that has certbot and
cryptography). Environment: IRONSEAL (binary), IDLE (10000), NONCES
(20000), ADMIN (5000), OCSP (20000), OCSP_NONCE (10000), FLOOD_SECS (60).
"""

import base64
import hashlib
import http.client
import http.server
import json
import os
import random
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

IRONSEAL = os.environ.get("IRONSEAL", "target/release/ironseal")
IDLE = int(os.environ.get("IDLE", "10000"))
NONCES = int(os.environ.get("NONCES", "20000"))
ADMIN = int(os.environ.get("ADMIN", "5000"))
OCSP = int(os.environ.get("OCSP", "20000"))
OCSP_NONCE = int(os.environ.get("OCSP_NONCE", "10000"))
FLOOD_SECS = float(os.environ.get("FLOOD_SECS", "60"))
WORKERS = 4


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Server:
    """The ironseal process and its figures (peak RSS and descriptors)."""

    def __init__(self, work):
        self.work = work
        self.port, self.http_port, self.h01_port = free_port(), free_port(), free_port()
        self.data = os.path.join(work, "data")
        hosts = os.path.join(work, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 probe1.abuse.test probe2.abuse.test redirect.abuse.test\n")
        self.log = open(os.path.join(work, "ironseal.log"), "w")
        self.proc = subprocess.Popen(
            [IRONSEAL, "serve", "--data-dir", self.data,
             "--listen", f"127.0.0.1:{self.port}",
             "--http-listen", f"127.0.0.1:{self.http_port}",
             "--http-public-url", f"http://127.0.0.1:{self.http_port}",
             "--hostname", "localhost", "--hostname", "127.0.0.1",
             "--validation-hosts", hosts,
             "--test-http01-port", str(self.h01_port)],
            stdout=self.log, stderr=self.log)
        self.root = os.path.join(self.data, "root.pem")
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200 and os.path.exists(self.root):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            sys.exit("ironseal did not start; see " + self.log.name)
        self.peak_rss_kb = 0
        self.peak_fds = 0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        pid = self.proc.pid
        while not self._stop.is_set():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
                self.peak_fds = max(self.peak_fds, len(os.listdir(f"/proc/{pid}/fd")))
            except OSError:
                pass
            time.sleep(0.2)

    def alive(self):
        return self.proc.poll() is None

    def tls(self):
        ctx = ssl.create_default_context(cafile=self.root)
        return ctx

    def stop(self):
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Acme:
    """A minimal RFC 8555 client (ES256) for the scripted steps."""

    def __init__(self, srv):
        self.srv = srv
        self.key = ec.generate_private_key(ec.SECP256R1())
        nums = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC",
                    "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big"))}
        canon = json.dumps(self.jwk, separators=(",", ":"), sort_keys=True).encode()
        self.thumb = b64u(hashlib.sha256(canon).digest())
        self.conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.tls(), timeout=30)
        self.dir = self.get("/directory")[1]
        self.kid = None

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        return r, json.loads(body) if body else None

    def nonce(self):
        self.conn.request("HEAD", "/acme/new-nonce")
        r = self.conn.getresponse()
        r.read()
        return r.getheader("Replay-Nonce")

    def post(self, url, payload):
        prot = {"alg": "ES256", "nonce": self.nonce(), "url": url}
        if self.kid:
            prot["kid"] = self.kid
        else:
            prot["jwk"] = self.jwk
        p64 = b64u(json.dumps(prot).encode())
        body64 = "" if payload is None else b64u(json.dumps(payload).encode())
        der = self.key.sign(f"{p64}.{body64}".encode(), ec.ECDSA(hashes.SHA256()))
        r_, s_ = decode_dss_signature(der)
        sig = b64u(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))
        path = url.split(str(self.srv.port), 1)[1]
        self.conn.request("POST", path, json.dumps({"protected": p64, "payload": body64, "signature": sig}),
                          {"Content-Type": "application/jose+json"})
        r = self.conn.getresponse()
        body = r.read()
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            doc = body
        return r, doc

    def register(self):
        r, _ = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True})
        assert r.status in (200, 201), r.status
        self.kid = r.getheader("Location")


def step(msg):
    print(f"==> {msg}", flush=True)


def redirect_chain(srv, acme):
    """http-01 answered by a redirect chain that ends at the cloud metadata
    address: the challenge must fail with the address policy's refusal."""
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            # One hop on the same (allowed) host, then cloud metadata.
            if self.path.startswith("/.well-known/"):
                loc = f"http://redirect.abuse.test:{srv.h01_port}/hop1"
            else:
                # The test port: with --test-http01-port ironseal follows
                # redirects only to that port, so the address policy is
                # what must refuse this hop.
                loc = f"http://169.254.169.254:{srv.h01_port}/latest/meta-data/"
            self.send_response(302)
            self.send_header("Location", loc)
            self.end_headers()

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", srv.h01_port), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        r, order = acme.post(acme.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "redirect.abuse.test"}]})
        assert r.status == 201, (r.status, order)
        _, authz = acme.post(order["authorizations"][0], None)
        ch = next(c for c in authz["challenges"] if c["type"] == "http-01")
        acme.post(ch["url"], {})
        deadline = time.time() + 30
        while time.time() < deadline:
            _, authz = acme.post(order["authorizations"][0], None)
            if authz["status"] != "pending":
                break
            time.sleep(0.5)
        ch = next(c for c in authz["challenges"] if c["type"] == "http-01")
        detail = (ch.get("error") or {}).get("detail", "")
        ok = authz["status"] == "invalid" and "not allowed" in detail
        print(f"    authorization {authz['status']}: {detail}")
        return ok
    finally:
        httpd.shutdown()
        httpd.server_close()


def max_identifiers(acme):
    names = [{"type": "dns", "value": f"n{i}.max.abuse.test"} for i in range(101)]
    r100, _ = acme.post(acme.dir["newOrder"], {"identifiers": names[:100]})
    r101, doc = acme.post(acme.dir["newOrder"], {"identifiers": names})
    print(f"    100 identifiers: {r100.status}; 101: {r101.status} {doc.get('type') if isinstance(doc, dict) else doc}")
    return r100.status == 201 and r101.status == 400


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = 0
        self.status = {}

    def add(self, status):
        with self.lock:
            self.n += 1
            self.status[status] = self.status.get(status, 0) + 1


def flood(name, total, deadline, make_conn, one):
    """Runs `one(conn)` `total` times over WORKERS keep-alive connections."""
    c = Counter()
    left = [total]
    lock = threading.Lock()

    def worker():
        conn = None
        while time.time() < deadline:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            try:
                if conn is None:
                    conn = make_conn()
                c.add(one(conn))
            except (OSError, http.client.HTTPException) as e:
                c.add(type(e).__name__)
                conn = None
    started = time.time()
    ts = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in ts:
        t.start()
    return c, ts, started, name


def ocsp_template(srv, work, cert, issuer, nonce):
    req = os.path.join(work, "nonce.req" if nonce else "plain.req")
    args = ["openssl", "ocsp", "-issuer", issuer, "-cert", cert, "-reqout", req, "-no_nonce"]
    if nonce:
        args[-1] = "-nonce"
    subprocess.run(args + ["-url", f"http://127.0.0.1:{srv.http_port}/ocsp"],
                   capture_output=True, check=False, timeout=30)
    return open(req, "rb").read()


def certbot(srv, work, name):
    d = os.path.join(work, "certbot-" + name)
    env = dict(os.environ, REQUESTS_CA_BUNDLE=srv.root)
    t = time.time()
    r = subprocess.run(
        [shutil.which("certbot") or "certbot", "certonly", "--standalone", "--http-01-port", str(srv.h01_port),
         "--server", f"https://127.0.0.1:{srv.port}/directory", "--non-interactive", "--agree-tos",
         "--register-unsafely-without-email", "--config-dir", d, "--work-dir", d, "--logs-dir", d,
         "-d", name], env=env, capture_output=True, text=True, timeout=120)
    took = time.time() - t
    live = os.path.join(d, "live", name)
    return r.returncode == 0, took, live, r.stdout + r.stderr


def ocsp_probe(srv, live):
    t = time.time()
    r = subprocess.run(["openssl", "ocsp", "-url", f"http://127.0.0.1:{srv.http_port}/ocsp",
                        "-CAfile", srv.root, "-issuer", os.path.join(live, "chain.pem"),
                        "-verify_other", os.path.join(live, "chain.pem"),
                        "-cert", os.path.join(live, "cert.pem"), "-timeout", "20"],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    return "Response verify OK" in out and ": good" in out, time.time() - t


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + 4096
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    work = tempfile.mkdtemp(prefix="ironseal-abuse-")
    srv = Server(work)
    results = {}
    try:
        step(f"ironseal {srv.proc.pid} on 127.0.0.1:{srv.port} / :{srv.http_port}; work dir {work}")
        acme = Acme(srv)
        acme.register()

        step("redirect chain to an internal address (169.254.169.254)")
        results["redirect chain refused"] = redirect_chain(srv, acme)

        step("order with the most identifiers")
        results["100 identifiers accepted, 101 refused"] = max_identifiers(acme)

        step("baseline certbot issuance (for OCSP templates)")
        ok, took, live, out = certbot(srv, work, "probe1.abuse.test")
        if not ok:
            print(out)
            sys.exit("baseline certbot issuance failed")
        print(f"    {took:.2f} s")
        cert, chain = os.path.join(live, "cert.pem"), os.path.join(live, "chain.pem")
        plain_req = ocsp_template(srv, work, cert, chain, False)
        nonce_req = ocsp_template(srv, work, cert, chain, True)
        # The serial is the last INTEGER of the CertID: its bytes follow the
        # key hash. Replace them with random bytes of the same length.
        serial = int(subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", cert],
                                    capture_output=True, text=True).stdout.strip().split("=")[1], 16)
        sbytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
        spos = plain_req.rfind(sbytes)
        npos = nonce_req.rfind(b"\x04\x10") + 2  # the nonce OCTET STRING (16 bytes)
        assert spos > 0, "serial not found in the OCSP request"

        step(f"floods for at most {FLOOD_SECS:.0f} s: {IDLE} idle connections, {NONCES} newNonce, "
             f"{ADMIN} unauthenticated admin, {OCSP} random-serial OCSP, {OCSP_NONCE} nonce OCSP")
        deadline = time.time() + FLOOD_SECS
        idle = []
        idle_refused = 0
        for i in range(IDLE):
            src = f"127.0.0.{2 + i % 40}"
            s = socket.socket()
            s.settimeout(2)
            try:
                s.bind((src, 0))
                s.connect(("127.0.0.1", srv.http_port))
                idle.append(s)
            except OSError:
                idle_refused += 1
                s.close()
        tls = srv.tls()
        https = lambda: http.client.HTTPSConnection("127.0.0.1", srv.port, context=tls, timeout=10)
        plain = lambda: http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10)

        def nonce_one(c):
            c.request("HEAD", "/acme/new-nonce")
            r = c.getresponse()
            r.read()
            return r.status

        def admin_one(c):
            c.request("GET", "/admin/v1/whoami", headers={"Authorization": "Bearer isk_" + os.urandom(8).hex()})
            r = c.getresponse()
            r.read()
            return r.status

        def ocsp_one(template, pos, length):
            def one(c):
                body = template[:pos] + os.urandom(length) + template[pos + length:]
                c.request("POST", "/ocsp", body, {"Content-Type": "application/ocsp-request"})
                r = c.getresponse()
                data = r.read()
                # OCSPResponseStatus is the first ENUMERATED (0a 01 xx):
                # 0 successful, 3 tryLater.
                i = data.find(b"\x0a\x01", 0, 8)
                return f"http {r.status} ocsp {data[i + 2] if i >= 0 else '-'}"
            return one

        floods = [
            flood("newNonce", NONCES, deadline, https, nonce_one),
            flood("admin (bad key)", ADMIN, deadline, https, admin_one),
            flood("OCSP random serial", OCSP, deadline, plain, ocsp_one(plain_req, spos, len(sbytes))),
            flood("OCSP with nonce", OCSP_NONCE, deadline, plain, ocsp_one(nonce_req, npos, 16)),
        ]
        step(f"    {len(idle)} idle connections open from the client side ({idle_refused} refused at connect)")

        step("probes while flooding: certbot issuance, openssl ocsp")
        ok2, took2, live2, out2 = certbot(srv, work, "probe2.abuse.test")
        if not ok2:
            print(out2[-2000:])
        results["certbot issuance during the floods"] = ok2
        probes = []
        while any(t.is_alive() for _, ts, _, _ in floods for t in ts) and len(probes) < 20:
            probes.append(ocsp_probe(srv, live))
            time.sleep(1)
        if not probes:
            probes.append(ocsp_probe(srv, live))
        results["openssl ocsp during the floods"] = all(p[0] for p in probes)
        for _, ts, _, _ in floods:
            for t in ts:
                t.join(max(0.0, deadline - time.time()) + 15)
        # How many idle sockets the server closed (a read returns EOF).
        closed = 0
        for s in idle:
            try:
                s.setblocking(False)
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            s.close()
        results["server alive after the run"] = srv.alive()

        step("figures")
        print(f"    server peak RSS: {srv.peak_rss_kb / 1024:.1f} MiB; peak open descriptors: {srv.peak_fds}")
        print(f"    idle connections: {len(idle)} opened, {closed} closed by the server by the end, "
              f"{idle_refused} refused at connect")
        for c, _, started, name in floods:
            secs = max(time.time() - started, 0.001)
            print(f"    {name}: {c.n} requests, {c.n / secs:.0f}/s; answers {dict(sorted(c.status.items()))}")
        print(f"    certbot during floods: {'ok' if ok2 else 'FAILED'} in {took2:.2f} s (baseline {took:.2f} s)")
        lat = sorted(p[1] for p in probes)
        print(f"    openssl ocsp during floods: {sum(p[0] for p in probes)}/{len(probes)} ok, "
              f"latency min {lat[0]*1000:.0f} ms, median {lat[len(lat)//2]*1000:.0f} ms, max {lat[-1]*1000:.0f} ms")
        for k, v in results.items():
            print(f"    {'PASS' if v else 'FAIL'}: {k}")
    finally:
        srv.stop()
    if not all(results.values()):
        print(f"work dir kept: {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
