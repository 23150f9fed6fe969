#!/usr/bin/env python3
"""A stand-in for kubectl and helm where no cluster exists, for ci/etcd-restore.sh's loopback
test: the kubectl and helm commands the script sends (through ETCD_RESTORE_KUBE) act on the
loopback StatefulSet of etcd_cluster.py, so every etcd step runs upstream etcd 3.5 and the
chart's rendered scripts, as the pods would. What stands in for Kubernetes (deployments, pods,
claims, ConfigMaps) is this file's, and only for the commands the script uses; the chart's
objects are rendered by real helm. Run as a program, this file is the client: it sends its
argv (and standard input where kubectl would read it) to the test's server over a Unix socket.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__:  # imported by the tests; run as a program, this file is only the client
    from tests.support.pods import assert_restricted

    from .k8s import named, selector_matches
    from .labels import parse_label_selector, statefulset_claims

SOCKET = "KUBE_DOUBLE_SOCKET"


def main() -> int:
    argv = sys.argv[1:]
    reads_stdin = "-i" in argv or "-" in argv
    request = {
        "argv": argv,
        "stdin": base64.b64encode(sys.stdin.buffer.read() if reads_stdin else b"").decode(),
    }
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(os.environ[SOCKET])
        conn.sendall(json.dumps(request).encode())
        conn.shutdown(socket.SHUT_WR)
        reply = json.loads(b"".join(iter(lambda: conn.recv(65536), b"")))
    sys.stdout.buffer.write(base64.b64decode(reply["stdout"]))
    sys.stderr.write(reply["stderr"])
    return int(reply["rc"])


def jsonpath(obj: Any, expression: str) -> str:
    """kubectl's -o jsonpath for the paths the script reads: .key, [N], [?(@.key=="value")]."""
    path = expression.removeprefix("jsonpath=").strip("{}")
    tokens = re.findall(r'\.([\w-]+)|\[(\d+)\]|\[\?\(@\.(\w+)=="([^"]*)"\)\]', path)
    for key, index, field_name, value in tokens:
        if key:
            obj = obj.get(key) if isinstance(obj, dict) else None
        elif index:
            obj = obj[int(index)] if isinstance(obj, list) and len(obj) > int(index) else None
        else:
            obj = next((o for o in obj or [] if o.get(field_name) == value), None)
        if obj is None:
            return ""
    return obj if isinstance(obj, str) else json.dumps(obj)


Reply = tuple[int, bytes, str]


@dataclass
class KubeDouble:
    """kubectl and helm over one loopback StatefulSet (`sts`) of release `release`."""

    sts: Any  # etcd_cluster.StatefulSet
    backups: Path
    scratch: Path
    render: Callable[..., list[dict[str, Any]]]  # (replicas, upgrade, *sets) -> objects
    set_persistence: Callable[[int], None]
    release: str
    shell: str
    etcd_bin: Path
    restore_port: int
    persistence: int = 2
    etcd_values: dict[str, str] = field(default_factory=dict)
    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    restore_logs: list[str] = field(default_factory=list)
    fail_once: list[str] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    backups_suspended: bool = False

    def __post_init__(self) -> None:
        self.fullname = f"{self.release}-etcd"
        self.objects = self.render(self.sts.desired or 1, True)
        self._lock = threading.Lock()

    # --- the server ---------------------------------------------------------------------

    def serve(self, path: Path) -> socketserver.UnixStreamServer:
        double = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = json.loads(self.rfile.read())
                rc, out, err = double.handle(request["argv"], base64.b64decode(request["stdin"]))
                reply = {"rc": rc, "stdout": base64.b64encode(out).decode(), "stderr": err}
                self.wfile.write(json.dumps(reply).encode())

        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def handle(self, argv: list[str], stdin: bytes) -> Reply:
        with self._lock:
            self.calls.append(argv)
            line = " ".join(argv)
            for marker in self.fail_once:
                if marker in line:
                    self.fail_once.remove(marker)
                    return 1, b"", f"injected failure: {line}\n"
            args = list(argv[1:])
            if "--namespace" in args:
                i = args.index("--namespace")
                del args[i : i + 2]
            try:
                if argv[0] == "helm":
                    return self.helm(args)
                return self.kubectl(args, stdin)
            except KeyError as missing:
                return 1, b"", f"Error from server (NotFound): {missing}\n"

    # --- helm -----------------------------------------------------------------------------

    def helm(self, args: list[str]) -> Reply:
        if args[0] == "status":
            return 0, b"STATUS: deployed\n", ""
        assert args[0] == "upgrade", args
        assert "--reuse-values" in args, args
        sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
        for item in sets:
            key, _, value = item.partition("=")
            if key == "persistence.replicaCount":
                self.persistence = int(value)
                self.set_persistence(self.persistence)
            elif key.startswith("etcd."):
                self.etcd_values[key.removeprefix("etcd.")] = value
        replicas = int(self.etcd_values.get("replicaCount", self.sts.desired))
        others = [f"{k}={v}" for k, v in self.etcd_values.items() if k != "replicaCount"]
        objects = self.render(replicas, True, *others)
        if any(
            o["kind"] == "Job" and o["metadata"]["name"] == f"{self.fullname}-resize"
            for o in objects
        ):
            run = self.sts.run_job(named(objects, "Job", f"{self.fullname}-resize"))
            if run.returncode != 0:
                return 1, b"", f"Error: UPGRADE FAILED: pre-upgrade hooks failed\n{run.stderr}"
        self.objects = objects
        self.sts._objects = objects
        self.sts._scale(replicas)
        if "--wait" in args:
            self.sts.wait_settled()
        restore = [
            o
            for o in objects
            if o["kind"] == "Job" and o["metadata"]["name"] == f"{self.fullname}-restore"
        ]
        if restore:
            (container,) = restore[0]["spec"]["template"]["spec"]["containers"]
            snapshot = next(e["value"] for e in container["env"] if e["name"] == "SNAPSHOT")
            run = self.sts.run_job(
                restore[0], SNAPSHOT=snapshot.replace("/backup", str(self.backups), 1),
                SCRATCH=str(self.scratch), RESTORE_PORT=str(self.restore_port),
            )  # fmt: skip
            self.restore_logs.append(run.stderr)
            if run.returncode != 0:
                return 1, b"", f"Error: UPGRADE FAILED: post-upgrade hooks failed\n{run.stderr}"
        return 0, b"Release has been upgraded.\n", ""

    # --- kubectl --------------------------------------------------------------------------

    def kubectl(self, args: list[str], stdin: bytes) -> Reply:
        verb = args[0]
        if verb == "exec":
            return self.exec(args[1:], stdin)
        if verb == "get":
            return self.get(
                args[1], args[2] if len(args) > 2 and not args[2].startswith("-") else "", args
            )
        if verb == "scale":
            kind, name = args[1], args[2]
            count = int(next(a for a in args if a.startswith("--replicas=")).split("=")[1])
            if kind == "deployment" and name == f"{self.release}-persistence":
                self.persistence = count
                self.set_persistence(count)
            elif kind == "statefulset" and name == self.fullname:
                self.sts._scale(count)
            else:
                raise KeyError(f"{kind}/{name}")
            return 0, b"scaled\n", ""
        if verb == "wait":
            target = next((a for a in args[1:] if a.startswith("pod/")), "")
            if target and target.split("/")[1] not in self.pods:
                raise KeyError(target)
            return 0, b"", ""
        if verb == "apply":
            pod = json.loads(stdin)
            assert pod["kind"] == "Pod"
            assert_restricted(pod["spec"])  # what the script builds passes Pod Security
            self.pods[pod["metadata"]["name"]] = pod
            return 0, b"pod created\n", ""
        if verb == "delete":
            return self.delete(args[1:])
        if verb == "create":
            assert args[1] == "configmap"
            if args[2] in self.configmaps:
                return 1, b"", f'configmaps "{args[2]}" already exists\n'
            literals = [a.split("=", 1)[1] for a in args[3:] if a.startswith("--from-literal=")]
            self.configmaps[args[2]] = dict(item.split("=", 1) for item in literals)
            return 0, b"", ""
        if verb == "patch":
            patch = json.loads(args[args.index("-p") + 1])
            if args[1] == "cronjob":
                named(self._backup_objects(), "CronJob", args[2])
                self.backups_suspended = bool(patch["spec"]["suspend"])
            else:
                assert args[1] == "configmap"
                self.configmaps[args[2]].update(patch["data"])
            return 0, b"", ""
        if verb == "logs":
            return 0, "".join(self.restore_logs).encode(), ""
        raise AssertionError(f"kubectl {args}: not a command the double knows")

    def get(self, kind: str, name: str, args: list[str]) -> Reply:
        output = args[args.index("-o") + 1]
        if "-l" in args:
            selector = parse_label_selector(args[args.index("-l") + 1])
            if kind == "pvc":
                sts = named(self.objects, "StatefulSet", self.fullname)
                on_disk = {p.pvc.name for p in self.sts.pods if p.pvc.exists()}
                claims = [
                    c
                    for c in statefulset_claims(sts, len(self.sts.pods))
                    if c["metadata"]["name"] in on_disk
                ]
                if self.backups.exists():
                    claims += [
                        o for o in self._backup_objects() if o["kind"] == "PersistentVolumeClaim"
                    ]
                names = [
                    c["metadata"]["name"]
                    for c in claims
                    if selector_matches(selector, c["metadata"]["labels"])
                ]
                return 0, "".join(f"persistentvolumeclaim/{n}\n" for n in names).encode(), ""
            assert kind == "pods"
            wanted = selector["matchLabels"].get("app.kubernetes.io/name")
            if wanted == "persistence":
                names = [f"{self.release}-persistence-{i}" for i in range(self.persistence)]
            else:
                names = [
                    f"{self.fullname}-{p.ordinal}" for p in self.sts.pods if p.proc is not None
                ]
            return 0, "".join(f"pod/{n}\n" for n in names).encode(), ""
        if kind == "configmap":
            return 0, jsonpath({"data": self.configmaps[name]}, output).encode(), ""
        if kind == "pod":
            self.pods[name]
            return 0, f"pod/{name}\n".encode(), ""
        if kind == "deployment" and name == f"{self.release}-persistence":
            return 0, jsonpath({"spec": {"replicas": self.persistence}}, output).encode(), ""
        if kind == "statefulset" and name == self.fullname:
            return 0, jsonpath({"spec": {"replicas": self.sts.desired}}, output).encode(), ""
        if kind == "cronjob":
            cronjob = named(self._backup_objects(), "CronJob", name)
            cronjob["spec"]["suspend"] = self.backups_suspended
            return 0, jsonpath(cronjob, output).encode(), ""
        if kind == "job":
            return 0, jsonpath(named(self.objects, "Job", name), output).encode(), ""
        raise KeyError(f"{kind}/{name}")

    def delete(self, args: list[str]) -> Reply:
        kind, name = args[0].split("/") if "/" in args[0] else (args[0], args[1])
        if kind == "pod":
            self.pods.pop(name)
        elif kind == "configmap":
            self.configmaps.pop(name)
        elif kind == "persistentvolumeclaim" and name == f"{self.fullname}-backup":
            shutil.rmtree(self.backups)  # what a selector reaching the snapshots would do
        elif kind == "persistentvolumeclaim":
            (pod,) = [p for p in self.sts.pods if p.pvc.name == name]
            assert pod.proc is None, f"{name} deleted while its pod runs"
            shutil.rmtree(pod.pvc)
        else:
            raise KeyError(f"{kind}/{name}")
        return 0, f"{kind} {name} deleted\n".encode(), ""

    def exec(self, args: list[str], stdin: bytes) -> Reply:
        words = [a for a in args if a != "-i"]
        name, command = words[0], words[words.index("--") + 1 :]
        assert command[:2] == ["/bin/sh", "-c"], command
        env = {"PATH": str(self.etcd_bin), "HOME": str(self.scratch), "LC_ALL": "C"}
        if name in self.pods:
            (mount,) = self.pods[name]["spec"]["containers"][0]["volumeMounts"][:1]
            assert mount["mountPath"] == "/backup"
            env["BACKUP_DIR"] = str(self.backups)
        else:
            ordinal = int(name.rsplit("-", 1)[1])
            if name != f"{self.fullname}-{ordinal}" or self.sts.pods[ordinal].proc is None:
                return (
                    1,
                    b"",
                    f'error: unable to upgrade connection: container not found ("{name}")\n',
                )
            env["CLUSTER_ENDPOINTS"] = self.sts.endpoints
        run = subprocess.run(
            ["sh", *command[1:]], executable=self.shell, env=env, input=stdin,
            capture_output=True, timeout=120,
        )  # fmt: skip
        return run.returncode, run.stdout, run.stderr.decode(errors="replace")

    # --- the rendered chart -----------------------------------------------------------------

    def _backup_objects(self) -> list[dict[str, Any]]:
        return self.render(self.sts.desired or 1, True)


if __name__ == "__main__":
    sys.exit(main())
