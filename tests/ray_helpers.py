"""Ray clusters of our own for tests: two nodes on this machine, on loopback only, whose processes
are ours to kill by process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process under ``pid`` (from /proc)."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append((int(stat.parent.name), name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill a process we started and everything under it, by process id."""
    for pid, _ in [*_children(proc.pid), (proc.pid, "")]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _wait_for_raylet(proc: subprocess.Popen, timeout: float = 120) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = [pid for pid, name in _children(proc.pid) if name == "raylet"]
        if pids:
            return pids
        time.sleep(0.5)
    raise AssertionError("a Ray node did not start its raylet")


@dataclass
class TwoNodes:
    """A head (1 CPU) and a second node (1 CPU); ``kill_second()`` kills the second node's raylet."""

    address: str
    env: dict[str, str]
    head: subprocess.Popen
    node: subprocess.Popen
    node_raylets: list[int]
    family: list[int] = field(default_factory=list)

    def kill_second(self) -> None:
        self.family = [pid for pid, _ in _children(self.node.pid) + _children(self.head.pid)]  # orphans-to-be
        for pid in self.node_raylets:  # the second node's raylet, by its process id
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def two_nodes() -> Iterator[TwoNodes]:
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled"}
    common = ["--num-cpus=1", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    head = subprocess.Popen(
        [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", *common], **quiet
    )
    node = None
    cluster = None
    try:
        _wait_for_raylet(head)
        time.sleep(3)
        node = subprocess.Popen([ray_bin, "start", f"--address={address}", *common], **quiet)
        raylets = _wait_for_raylet(node)
        time.sleep(3)
        cluster = TwoNodes(address, env, head, node, raylets)
        yield cluster
    finally:
        if node is not None:
            _kill_tree(node)
        _kill_tree(head)
        for pid in cluster.family if cluster else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
