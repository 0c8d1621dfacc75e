"""A shell session that runs a page's documented commands against the sandbox.

Each command runs in ``bash`` with the session's variables (``set -a``: an assignment
is exported to the next command, as it would be in the reader's terminal) and working
directory. Addresses the docs print (the sandbox on port 8787, ``calflow serve`` on 8000,
``https://calflow.example.com``, ``https://hooks.example.com``) are rewritten to the
free ports this session uses (and ``/var/lib/calflow`` to the session's home); a
``calflow sandbox`` or ``calflow serve`` without ``--port`` gets one, and the sandbox an
SMTP port of its own, so nothing uses the machine-wide defaults. ``calflow sandbox`` and
``calflow serve`` run in the background until the session closes; a second one of
either replaces the first. ``curl`` runs with ``--fail-with-body``, so an HTTP error
answer fails the command as the reader would see it fail. No command may print a
traceback.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import httpx

from cli.conftest import calflow_command
from e2e.sandbox_process import child_env, free_port

from .doc_blocks import Command

_BACKGROUND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*calflow\s+(sandbox|serve)\b")
_CURL = re.compile(r"(^|[|(;&]\s*|\$\()curl ", re.M)


class _Sink(BaseHTTPRequestHandler):
    """A webhook receiver that takes every POST (the replay examples' target)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format: str, *args: object) -> None:
        """Silent."""


@dataclass
class Background:
    """A long-running command the session started."""

    kind: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


@dataclass
class DocShell:
    """The session of one page: a ``CALFLOW_HOME``, a working directory, variables."""

    workdir: Path
    sandbox_port: int = field(default_factory=free_port)
    serve_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    background: dict[str, Background] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        bin_dir = str(Path(calflow_command()[0]).parent)
        self.env = child_env(
            CALFLOW_HOME=str(self.workdir / "home"),
            PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            COLUMNS="120",
            NO_COLOR="1",
        )
        self.cwd = self.workdir
        self._sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        threading.Thread(target=self._sink.serve_forever, daemon=True).start()

    @property
    def sink_url(self) -> str:
        """The URL of the receiver standing in for ``https://hooks.example.com``."""
        return f"http://127.0.0.1:{self._sink.server_address[1]}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def serve_url(self) -> str:
        return f"http://127.0.0.1:{self.serve_port}"

    def write_files(self, files: Mapping[str, str]) -> None:
        """Write the files a page shows (``Saved as `path` ``) into the working directory."""
        for rel, content in files.items():
            target = self.cwd / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content + "\n", encoding="utf-8")

    def rewrite(self, text: str) -> str:
        """``text`` with the documented addresses pointed at this session's processes."""
        for old, new in (
            ("https://calflow.example.com", self.serve_url),
            ("https://hooks.example.com", self.sink_url),
            ("http://127.0.0.1:9000", self.sink_url),
            ("/var/lib/calflow", str(self.workdir / "home")),
        ):
            text = text.replace(old, new)
        for port, mine in (("8787", self.sandbox_port), ("8000", self.serve_port)):
            text = re.sub(rf"(127\.0\.0\.1:|localhost:|--port ){port}\b", rf"\g<1>{mine}", text)
        text = re.sub(
            r"(port=|--smtp-port |127\.0\.0\.1:)2525\b", rf"\g<1>{self.smtp_port}", text, flags=re.I
        )
        bg = _BACKGROUND.match(text)
        if bg:  # the defaults (8787, 8000, SMTP 2525) are machine-wide: never use them
            head, comment = [*text.split("  #", 1), ""][:2]
            head = head.rstrip()
            own = self.sandbox_port if bg[1] == "sandbox" else self.serve_port
            if "--port" not in head:
                head += f" --port {own}"
            if bg[1] == "sandbox" and "--smtp-port" not in head:
                head += f" --smtp-port {self.smtp_port}"
            text = f"{head}  #{comment}" if comment else head
        return text

    def run(self, command: Command, timeout: float = 120) -> str:
        """Run ``command``; its output, or an ``AssertionError`` naming the place in the
        docs when it does not exit with the code the docs give it."""
        text = self.rewrite(command.text)
        self.transcript.append(f"$ {text}")
        # an HTTP error answer fails the command, as a reader would see it fail
        script_text = _CURL.sub(r"\g<1>curl --fail-with-body ", text)
        bg = _BACKGROUND.match(text)
        if bg:
            self._start(bg[1], text, command)
            return ""
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp)
            script = (
                "set -a -o pipefail\n"
                f"{script_text}\n"
                "__rc=$?\n"
                f'env -0 > "{state}/env"; pwd > "{state}/cwd"\n'
                "exit $__rc\n"
            )
            proc = subprocess.run(
                ["bash", "-c", script],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            output = proc.stdout + proc.stderr
            self.transcript.append(output)
            detail = f"{command.where}: `{text}` exited {proc.returncode}\n{output}"
            assert "Traceback" not in output, detail
            assert proc.returncode == command.expected_exit, (
                f"{detail}\n(the docs say it exits {command.expected_exit})"
            )
            if command.expected_port is not None:
                port = re.escape(command.expected_port)
                assert re.search(rf'(\A\s*|"port": "){port}\b', output), (
                    f"{detail}\n(the docs say it answers on port {command.expected_port})"
                )
            if (state / "env").exists():
                pairs = (kv.split("=", 1) for kv in (state / "env").read_text().split("\0") if kv)
                self.env = {k: v for k, v in pairs if k not in {"_", "SHLVL", "OLDPWD", "__rc"}}
                self.cwd = Path((state / "cwd").read_text().strip())
        return output

    def _start(self, kind: str, text: str, command: Command) -> None:
        """Start ``calflow sandbox`` or ``calflow serve`` in the background and wait until
        it answers (a previous one of the same kind is stopped first)."""
        if kind in self.background:
            self.background.pop(kind).stop()
        log = tempfile.TemporaryFile()  # noqa: SIM115 (kept open while it runs; Background.stop)
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {text}"],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        job = Background(kind, proc, log)
        self.background[kind] = job
        url = (
            f"{self.sandbox_url}/_sandbox/state"
            if kind == "sandbox"
            else f"{self.serve_url}/healthz"
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{command.where}: `{text}` did not start\n{job.output()}")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop what the session started."""
        for job in reversed(list(self.background.values())):
            job.stop()
        self.background.clear()
        self._sink.shutdown()
        self._sink.server_close()
