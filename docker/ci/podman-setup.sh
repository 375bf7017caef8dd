#!/usr/bin/env bash
# Make this machine able to run the compose stack with podman (as root):
# Debian's podman + runc + netavark/aardvark-dns (service names resolve
# between containers) + iptables (netavark's NAT), debootstrap for the base
# image, and podman-compose from PyPI in a venv of its own (Debian's 1.0.3
# ignores deploy.replicas). Then containers.conf as ../shared/DESIGN.md
# says. Idempotent: does nothing the second time.
set -euo pipefail

CACHE=${CONDUIT_BASE_CACHE:-/var/cache/conduit-base}
COMPOSE_VENV=$CACHE/podman-compose
mkdir -p "$CACHE"

need=()
for cmd in podman runc debootstrap iptables /usr/lib/podman/aardvark-dns; do
    command -v "$cmd" > /dev/null || need+=("$cmd")
done
if ((${#need[@]})); then
    echo "installing podman and friends (missing: ${need[*]})"
    # (DPkg::Lock::Timeout: wait for another apt run rather than fail.)
    apt-get update -q > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
        podman runc netavark aardvark-dns iptables debootstrap > /dev/null
fi

if [ ! -x "$COMPOSE_VENV/bin/podman-compose" ]; then
    python3 -m venv "$COMPOSE_VENV"
    # >= 1.6: what compose-test was written against (deploy.replicas needs
    # `mode: replicated` there; --no-deps skips podman's --requires).
    "$COMPOSE_VENV/bin/pip" install -q "podman-compose>=1.6" > "$CACHE/pip.log" 2>&1 ||
        { cat "$CACHE/pip.log"; exit 1; }
fi

# containers.conf: root here cannot raise rlimits past nofile 20000 / nproc
# 32768 (podman's defaults are higher: every container fails to start), and
# crun refuses the hybrid cgroup layout. Each key is written only when the
# file does not set it already.
python3 - <<'PY'
import pathlib
import re
import tomllib

path = pathlib.Path("/etc/containers/containers.conf")
text = path.read_text() if path.exists() else ""
conf = tomllib.loads(text)
wanted = {
    "containers": {"default_ulimits": '["nofile=20000:20000", "nproc=32768:32768"]'},
    "engine": {"runtime": '"runc"', "cgroup_manager": '"cgroupfs"'},
}
changed = False
for section, values in wanted.items():
    for key, value in values.items():
        if key in conf.get(section, {}):
            continue
        line = f"{key} = {value}\n"
        header = re.search(rf"^\[{section}\][ \t]*\n", text, re.M)
        if header:
            text = text[: header.end()] + line + text[header.end() :]
        else:
            text = text.rstrip("\n") + ("\n\n" if text else "") + f"[{section}]\n{line}"
        changed = True
if changed:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"updated {path}")
PY
