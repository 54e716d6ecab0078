"""The S3 servers a benchmark runs against, and the shaping proxy that makes them look remote.

Two server profiles:
  real  radosgw over an in-memory OSD (tests/tools/rgw-server): the server the integration tests
        use. Checks signatures, behaves like S3; on 2 cores it is often the bottleneck.
  fast  nginx serving plain and ranged GETs straight from files with sendfile, everything else
        (LIST, HEAD, PUT) proxied to s3rver over the same directory: client-side limits show.

Each server reports "bytes served" (GET body bytes) so the harness can compute over-fetch.
"""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RGW_SERVER = os.path.join(REPO, "tests", "tools", "rgw-server")
S3RVER_VERSION = "3.7.1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url, seconds=30, process=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with status {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {seconds} s")


class Server:
    """An S3 endpoint: env (endpoint + credentials), a bucket's data, and a bytes-served meter."""

    name = ""
    env = {}

    def bytes_served(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError


class RgwServer(Server):
    name = "real"

    def __init__(self, work_dir, mem_bytes):
        self.dir = os.path.join(work_dir, "rgw")
        env = dict(os.environ, RGW_MEM_BYTES=str(mem_bytes))
        out = subprocess.run([RGW_SERVER, "start", self.dir], env=env, check=True,
                             capture_output=True, text=True).stdout
        self.env = {}
        for line in out.splitlines():
            if line.startswith("export "):
                k, _, v = line[len("export "):].partition("=")
                self.env[k] = v.strip("'\"")
        socks = glob.glob(os.path.join(self.dir, "run", "*rgw*.asok"))
        if not socks:
            raise RuntimeError("radosgw admin socket not found; cannot meter bytes served")
        self.admin_socket = socks[0]

    def _perf_dump(self):
        """radosgw's perf counters, straight from its admin socket (a JSON command, then a
        4-byte big-endian length and the JSON answer): the ceph CLI costs ~0.5 s per call, twice
        per run. Falls back to the CLI if the socket answers anything else."""
        if not getattr(self, "_cli_only", False):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(10)
                    s.connect(self.admin_socket)
                    s.sendall(b'{"prefix": "perf dump"}\0')
                    data = b""
                    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
                        chunk = s.recv(1 << 16)
                        if not chunk:
                            break
                        data += chunk
                return json.loads(data[4:4 + int.from_bytes(data[:4], "big")])
            except (OSError, ValueError):
                self._cli_only = True
        out = subprocess.run(["ceph", "--admin-daemon", self.admin_socket, "perf", "dump"],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def bytes_served(self):
        rgw = self._perf_dump().get("rgw", {})
        if "get" not in rgw or "get_b" not in rgw:
            raise RuntimeError("radosgw perf dump has no get/get_b counters")
        # get_b counts each GET's range as end - begin with an inclusive end: one byte short per
        # GET (seen on Ceph 16). Add the GET count back.
        return int(rgw["get_b"]) + int(rgw["get"])

    def stop(self):
        subprocess.run([RGW_SERVER, "stop", self.dir], capture_output=True)


NGINX_CONF = """\
# Plain and ranged GETs (no query string) are served from s3rver's files with sendfile; LIST,
# HEAD, PUT and misses go to s3rver. Objects' ETags are nginx's own validator (written into
# s3rver's .md5 files by the dataset generator), so conditional GETs (If-Match) work here too.
worker_processes 2;
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 4096; }}
http {{
  log_format body_bytes '$body_bytes_sent';
  access_log {run}/access.log body_bytes;  # unbuffered: read right after each run
  sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path {run}/tmp; proxy_temp_path {run}/tmp;
  fastcgi_temp_path {run}/tmp; uwsgi_temp_path {run}/tmp; scgi_temp_path {run}/tmp;
  map "$request_method$is_args" $route {{ GET static; default proxy; }}
  upstream s3rver {{ server 127.0.0.1:{s3rver_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096; client_max_body_size 0;
    location / {{
      if ($route = static) {{ rewrite ^/(.+)$ /__static/$1 last; }}
      proxy_pass http://s3rver; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $http_host; proxy_buffering off; proxy_request_buffering off;
    }}
    location ~ ^/__static/(.+)$ {{
      internal;
      alias {data}/$1._S3rver_object;
      error_page 404 = @s3rver;
    }}
    location @s3rver {{
      rewrite ^/__static(/.*)$ $1 break;
      proxy_pass http://s3rver; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }}
  }}
}}
"""


def s3rver_install_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "trainfeed-bench", "s3rver")


def ensure_s3rver():
    """s3rver lives only in the npm registry: install it once into a cache folder."""
    prefix = s3rver_install_dir()
    script = os.path.join(prefix, "node_modules", "s3rver", "bin", "s3rver.js")
    if not os.path.exists(script):
        os.makedirs(prefix, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund",
                        "--silent", f"s3rver@{S3RVER_VERSION}"], check=True)
    return script


class FastServer(Server):
    name = "fast"

    def __init__(self, work_dir, data_dir):
        self.data = data_dir  # s3rver layout: DATA/BUCKET/KEY._S3rver_object
        self.run_dir = os.path.join(work_dir, "nginx")
        os.makedirs(os.path.join(self.run_dir, "tmp"), exist_ok=True)
        s3rver_port, self.port = free_port(), free_port()
        # --openssl-legacy-provider: s3rver makes continuation tokens with DES, which Node >= 17
        # refuses otherwise (every truncated listing would fail).
        self.s3rver = subprocess.Popen(
            ["node", "--openssl-legacy-provider", ensure_s3rver(), "-a", "127.0.0.1",
             "-p", str(s3rver_port), "-d", data_dir, "--silent"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.run_dir, "s3rver.log"), "w"),
            start_new_session=True)
        self.nginx = None
        try:
            wait_until_answers(f"http://127.0.0.1:{s3rver_port}/", process=self.s3rver)
            conf = os.path.join(self.run_dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(run=self.run_dir, s3rver_port=s3rver_port,
                                          port=self.port, data=data_dir))
            subprocess.run(["nginx", "-q", "-c", conf, "-p", self.run_dir,
                            "-g", "daemon on;"], check=True)
            self.nginx = True
            wait_until_answers(f"http://127.0.0.1:{self.port}/")
        except Exception:
            self.stop()
            raise
        self.env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
            "AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        }

    def bytes_served(self):
        total = 0
        with open(os.path.join(self.run_dir, "access.log"), "rb") as f:
            for line in f:
                total += int(line) if line.strip().isdigit() else 0
        return total

    def stop(self):
        pid_file = os.path.join(self.run_dir, "nginx.pid")
        if self.nginx and os.path.exists(pid_file):
            pid = int(open(pid_file).read())
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not os.path.exists(pid_file):
                    break
                time.sleep(0.1)
        self.nginx = None
        if self.s3rver.poll() is None:
            os.killpg(self.s3rver.pid, signal.SIGTERM)
            self.s3rver.wait(10)


class ShapingProxy:
    """tf-shaping-proxy in front of a server: a first-byte delay per request and a per-connection
    bandwidth cap, so loopback behaves like a remote object store."""

    def __init__(self, binary, server, work_dir, delay_ms, bandwidth):
        self.dir = tempfile.mkdtemp(prefix="proxy-", dir=work_dir)  # a fresh port file each time
        port_file = os.path.join(self.dir, "port")
        upstream = server.env["AWS_ENDPOINT_URL"].split("//", 1)[1]
        self.process = subprocess.Popen(
            [binary, "--upstream", upstream, "--first-byte-delay-ms", str(delay_ms),
             "--bandwidth", str(bandwidth), "--port-file", port_file],
            stderr=open(os.path.join(self.dir, "proxy.log"), "w"), start_new_session=True)
        for _ in range(100):
            if os.path.exists(port_file) or self.process.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(port_file):
            self.stop()
            raise RuntimeError("shaping proxy did not start; see " + self.dir + "/proxy.log")
        port = int(open(port_file).read())
        self.env = dict(server.env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
