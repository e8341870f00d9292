"""Run the sandbox: in a background thread (tests, notebooks) or as ``airflow-sms-sandbox``."""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
import weakref
from typing import Any

import httpx
import uvicorn

from airflow_sms_provider.sandbox.app import create_app
from airflow_sms_provider.sandbox.mobizon import SANDBOX_MOBIZON_API_KEY
from airflow_sms_provider.sandbox.state import SandboxState, redact_url

_START_TIMEOUT = 10.0


def _bind(host: str, port: int) -> socket.socket:
    # Bound here rather than by uvicorn so the port (even a free one, port 0) is known before start.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _shutdown(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    if thread.is_alive() and thread is not threading.current_thread():
        thread.join(timeout=5)


class SandboxServer:
    """The sandbox on a real loopback port, served by uvicorn in a daemon thread.

    ``with SandboxServer(taskqueue_min_interval=0) as sandbox: httpx.get(sandbox.url + ...)``.
    Keyword arguments other than ``host``/``port`` are ``create_app`` config.
    """

    def __init__(
        self, state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int = 0, **config: Any
    ) -> None:
        self.app = create_app(state, **config)
        self.state: SandboxState = self.app.state.sandbox
        self.host = host
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_config=None,  # leave the host application's logging alone
                log_level="warning",
                access_log=False,  # its lines would carry API keys from query strings
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"sandbox-{self.port}", daemon=True
        )
        self._finalizer = weakref.finalize(self, _shutdown, self._server, self._thread)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        """Start serving and wait until ``/_sandbox/health`` answers."""
        if not self._thread.is_alive():
            self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._server.started:
                try:
                    if httpx.get(f"{self.url}/_sandbox/health", timeout=1).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            if not self._thread.is_alive():
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the sandbox did not start on {self.url}")

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._finalizer()
        self._sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _RedactAccessLog(logging.Filter):
    """Masks API keys in uvicorn's access lines (args: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = redact_url(str(args[2]))
            record.args = tuple(args)
        return True


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="airflow-sms-sandbox",
        description="A local stand-in for the Mobizon (and later BSG, Ogangi) APIs. No SMS is ever sent.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--speed", type=float, default=60.0,
        help="simulated seconds per real second (60: a campaign's minute passes in a second); "
        "deferred times are checked against the simulated clock",
    )  # fmt: skip
    parser.add_argument("--access-log", action="store_true", help="log requests, API keys masked")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """``airflow-sms-sandbox``: serve until Ctrl-C."""
    args = _parse_args(argv)
    app = create_app(clock_speed=args.speed)
    sock = _bind(args.host, args.port)
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    print(f"SMS sandbox on {url} (clock speed x{args.speed:g}); admin API under {url}/_sandbox/")
    print(f"  Mobizon: host {url}  API key {SANDBOX_MOBIZON_API_KEY}")
    if args.access_log:
        logging.getLogger("uvicorn.access").addFilter(_RedactAccessLog())
    config = uvicorn.Config(app, log_level="info", access_log=args.access_log, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":  # pragma: no cover
    main()
