"""Real servers for the pulling tests: nginx from Debian's packages serving a folder on 127.0.0.1 (plain or TLS,
optionally rate-limited, with an access log of every Range header), and a TCP proxy that cuts responses."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.waiting import wait_until

NGINX = "/usr/sbin/nginx"


def _ensure_nginx() -> None:
    """Install nginx-light when it is missing and this is root (as the SocketCAN guest installs its tools)."""
    if Path(NGINX).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("nginx is missing and cannot be installed here (apt-get install nginx-light as root)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "nginx-light"],
    ):
        result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
    # the package starts the system's service; these tests run their own
    subprocess.run(["service", "nginx", "stop"], capture_output=True, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format ranges '$request_method $uri $status "$http_range" $body_bytes_sent';
    access_log {work}/access.log ranges;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ application/json json; application/octet-stream sdvota; }}
    server {{
        listen 127.0.0.1:{port}{ssl};
        {tls}
        root {root};
        location / {{ {rate} }}
    }}
}}
"""


@dataclass
class Nginx:
    """One nginx serving ``root``."""

    root: Path
    work: Path
    port: int
    scheme: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"

    def requests(self, name: str) -> list[tuple[int, str, int]]:
        """(status, Range header, body bytes sent) of each GET of ``name``, in order."""
        log = self.work / "access.log"
        entries = []
        for line in log.read_text().splitlines() if log.exists() else []:
            method, uri, status, rest = line.split(" ", 3)
            range_header, sent = rest.rsplit(" ", 1)
            if method == "GET" and uri == f"/{name}":
                entries.append((int(status), range_header.strip('"'), int(sent)))
        return entries

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_nginx(
    root: Path,
    work: Path,
    *,
    rate: str | None = None,
    tls: tuple[Path, Path] | None = None,
    client_ca: Path | None = None,
) -> Nginx:
    """Start nginx on a free loopback port (chosen again if another process took it in between)."""
    _ensure_nginx()
    work.mkdir(parents=True, exist_ok=True)

    def attempt() -> Nginx | None:
        port = _free_port()
        server = Nginx(root, work, port, "https" if tls else "http")
        tls_lines = f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};" if tls else ""
        if client_ca is not None:
            tls_lines += f" ssl_client_certificate {client_ca}; ssl_verify_client on;"
        (work / "nginx.conf").write_text(
            _CONFIG.format(
                work=work,
                port=port,
                root=root,
                ssl=" ssl" if tls else "",
                tls=tls_lines,
                rate=f"limit_rate {rate};" if rate else "",
            )
        )
        server.process = subprocess.Popen(
            [NGINX, "-c", str(work / "nginx.conf"), "-p", str(work), "-e", str(work / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            if server.process is not None and server.process.poll() is not None:
                return True
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, what="nginx to listen")
        if server.process.poll() is not None:
            return None  # the port was taken after it was probed
        return server

    return wait_until(attempt, what="nginx to start on a free port")


class CuttingProxy:
    """A TCP proxy to ``upstream`` that closes the n-th connection after ``cuts[n]`` bytes of response."""

    def __init__(self, upstream: int, cuts: Sequence[int]) -> None:
        self._upstream = upstream
        self._cuts = list(cuts)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self.cut = 0
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            budget = self._cuts[self.connections] if self.connections < len(self._cuts) else None
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, budget), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, budget: int | None) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if budget is not None and sent + len(data) >= budget:
                    target.sendall(data[: budget - sent])
                    self.cut += 1
                    break
                target.sendall(data)
                sent += len(data)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    """nginx serving ``tmp_path/www``."""
    (tmp_path / "www").mkdir(exist_ok=True)
    server = start_nginx(tmp_path / "www", tmp_path / "nginx")
    yield server
    server.stop()
