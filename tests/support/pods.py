"""The one restricted-pod check: Pod Security "restricted" plus the project's own rules
(read-only root filesystem, no API token, no service links, sized containers)."""

from __future__ import annotations

from typing import Any

# The volume types the restricted profile allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _container_problems(
    container: dict[str, Any], pod_ctx: dict[str, Any], at: str, host_ports: tuple[int, ...]
) -> list[str]:
    problems = []
    ctx = container.get("securityContext", {})

    def setting(key: str) -> Any:  # a container setting, else the pod's
        return ctx.get(key, pod_ctx.get(key))

    if setting("runAsNonRoot") is not True:
        problems.append(f"{at}: runAsNonRoot not true")
    if not isinstance(setting("runAsUser"), int) or setting("runAsUser") <= 0:
        problems.append(f"{at}: runAsUser {setting('runAsUser')!r}, not a user above 0")
    if (setting("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{at}: seccompProfile {setting('seccompProfile')}")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{at}: allowPrivilegeEscalation not false")
    if ctx.get("privileged"):
        problems.append(f"{at}: privileged")
    caps = ctx.get("capabilities", {})
    if "ALL" not in caps.get("drop", []):
        problems.append(f"{at}: capabilities.drop lacks ALL")
    if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
        problems.append(f"{at}: capabilities.add {caps['add']}")
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{at}: root filesystem writable")
    resources = container.get("resources", {})
    if not resources.get("requests") or not resources.get("limits", {}).get("memory"):
        problems.append(f"{at}: no resource requests or memory limit")
    bound = tuple(p["hostPort"] for p in container.get("ports", []) if p.get("hostPort"))
    if bound != host_ports:
        problems.append(f"{at}: hostPorts {list(bound)}, expected {list(host_ports)}")
    return problems


def restricted_problems(
    spec: dict[str, Any], where: str = "pod", host_ports: tuple[int, ...] = ()
) -> list[str]:
    """Everything in a pod spec that breaks the rules; `host_ports`: the host ports each
    container binds (only the registry's node proxy has one)."""
    problems = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{where}: {flag}")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken not false")
    if spec.get("enableServiceLinks") is not False:
        problems.append(f"{where}: enableServiceLinks not false")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"{where}: volume {volume['name']} is {kinds}")
    pod_ctx = spec.get("securityContext", {})
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        at = f"{where} container {container['name']}"
        problems += _container_problems(container, pod_ctx, at, host_ports)
    return problems


def assert_restricted(
    spec: dict[str, Any], host_ports: tuple[int, ...] = (), where: str = "pod"
) -> None:
    problems = restricted_problems(spec, where, host_ports)
    assert not problems, "\n".join(problems)
