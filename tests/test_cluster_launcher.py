"""End to end, the README's cluster path on cluster/local.yaml: `ray up` -> `ray submit ...
sweeps/locomotion.py -- --smoke --address auto` -> results -> `python -m analysis summary` ->
`ray down`, with a head (127.0.0.1) and one worker (127.0.0.2) reached over real SSH.

`ray stop` and `ray down` end every Ray process they can see, and Ray's fixed ports and
/tmp/ray belong to whoever runs Ray on this machine, so the whole rig runs in namespaces of its
own (`unshare`): a PID namespace (its processes, sshd included, all die with it), a network
namespace (its own loopback: sshd on port 22, Ray on its usual ports, nothing shared with the
machine) and a mount namespace (private /tmp/ray, /tmp/_ray_lockfiles and /run). Each node
gets its own home folder through sshd's `SetEnv HOME`, as separate machines would. Needs root,
sshd, rsync, unshare and ip; `.ci/run` installs what is missing.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import yaml

from analysis.loading import load

REPO = Path(__file__).resolve().parent.parent
LOCAL_YAML = REPO / "cluster" / "local.yaml"
HEAD, WORKER = "127.0.0.1", "127.0.0.2"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
TOOLS = {"sshd": SSHD, "ssh": "ssh", "ssh-keygen": "ssh-keygen", "rsync": "rsync"}
TOOLS |= {"unshare": "unshare", "ip": "ip", "pgrep": "pgrep", "timeout": "timeout"}
RIG_LIMIT_S = 290  # the whole rig, from unshare to the namespace's end
RAY_TMP = ("/tmp/ray", "/tmp/_ray_lockfiles")
UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc", "--mount", "--net")

pytestmark = pytest.mark.launcher


def _unmet() -> str | None:
    """Why this machine cannot run the rig, or None."""
    if os.geteuid() != 0:
        return "needs root (unshare of PID, mount and network namespaces; sshd as root)"
    missing = [name for name, tool in TOOLS.items() if not shutil.which(tool)]
    if missing:
        return f"missing {', '.join(missing)}: apt-get install -y openssh-server rsync iproute2"
    probe = subprocess.run(
        [*UNSHARE, "true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        return f"unshare of PID/mount/network namespaces refused: {probe.stderr.strip()}"
    return None


def _test_copy(rig: Path, cluster_name: str) -> Path:
    """cluster/local.yaml with the rig's addresses, user and key; no installs (the project
    is installed on this machine); one CPU per node, so that two trials at once need both."""
    config = yaml.safe_load(LOCAL_YAML.read_text())
    config["cluster_name"] = cluster_name
    config["provider"].update(head_ip=HEAD, worker_ips=[WORKER])
    config["auth"] = {"ssh_user": getpass.getuser(), "ssh_private_key": str(rig / "ssh/id")}
    config["setup_commands"] = []
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        config[key] = [
            f"{cmd.rstrip()} --num-cpus=1" if " ray start " in f" {cmd}" else cmd
            for cmd in config[key]
        ]
    path = rig / "local-test.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _sshd_config(rig: Path) -> Path:
    """sshd on port 22 of the rig's own loopback; each node address gets its own home."""
    ssh = rig / "ssh"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ssh / "host"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ssh / "id"], check=True)
    (ssh / "authorized_keys").write_text((ssh / "id.pub").read_text())
    bindir = Path(sys.executable).parent
    lines = [
        "Port 22",
        f"ListenAddress {HEAD}",
        f"ListenAddress {WORKER}",
        f"HostKey {ssh / 'host'}",
        f"PidFile {ssh / 'sshd.pid'}",
        f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "MaxStartups 100",
        "MaxSessions 100",
    ]
    for address in (HEAD, WORKER):
        home = rig / "nodes" / address
        home.mkdir(parents=True)
        # What a real node's setup_commands leave in ~/.bashrc (which the launcher sources
        # before every command): Python with the project on PATH. Here the project is the
        # copy that `ray up` synced into this node's home.
        (home / ".bashrc").write_text(
            f'export PATH="{bindir}:$PATH" PYTHONPATH="$HOME/diffusion-ql-sweeps"\ncd "$HOME"\n'
        )
        env = {"HOME": home, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        lines += [
            f"Match LocalAddress {address}",
            "    SetEnv " + " ".join(f"{key}={value}" for key, value in env.items()),
        ]
    path = ssh / "sshd_config"
    path.write_text("\n".join(lines) + "\n")
    me = pwd.getpwuid(os.geteuid())
    users = []
    for line in Path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == me.pw_name:
            fields[5] = str(rig / "nodes" / HEAD)
        users.append(":".join(fields))
    (rig / "passwd").write_text("\n".join(users) + "\n")
    return path


RIG_SCRIPT = r"""
set -u
cd "$REPO"
# Private Ray folders and /run (sshd's /run/sshd) in this mount namespace only.
mount --bind "$RIG/tmp/ray" /tmp/ray || exit 20
mount --bind "$RIG/tmp/_ray_lockfiles" /tmp/_ray_lockfiles || exit 20
mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/sshd || exit 20
# ssh expands `~` in `-i ~/ray_bootstrap_key.pem` (the head's key to the workers) from the
# user database, not from $HOME: here the user's home is the head's.
mount --bind "$RIG/passwd" /etc/passwd || exit 20
ip link set lo up || exit 21
"$SSHD" -f "$RIG/ssh/sshd_config" -E "$RIG/logs/sshd.log" || exit 22

step() {  # step NAME SECONDS COMMAND...: log, exit status and wall time in $RIG/steps/NAME
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  timeout -s KILL "$limit" "$@" >"$RIG/logs/$name.log" 2>&1
  local rc=$?
  echo "$rc $((SECONDS - start))" >"$RIG/steps/$name"
  return $rc
}
two_nodes() {  # the worker has joined the head
  python -c "import ray, sys; ray.init(address='$HEAD:6379', logging_level='ERROR')
sys.exit(sum(n['Alive'] for n in ray.nodes()) < 2)" >/dev/null 2>&1
}
wait_for_worker() {
  until two_nodes; do sleep 3; done
}
export -f two_nodes wait_for_worker

if step up 150 ray up -y "$CFG"; then
  step worker 120 bash -c wait_for_worker &&
    step submit 200 ray submit "$CFG" sweeps/locomotion.py -- \
      --smoke --tasks hopper-random-v2,walker2d-random-v2 --address auto \
      --storage "$RIG/shared/results"
fi
step down 90 ray down -y "$CFG"
# What `ray down` left running (the namespace ends them anyway when this script exits).
pgrep -c -x 'raylet|gcs_server' >"$RIG/steps/left" || true
"""


@pytest.fixture
def rig():
    """The rig's folder; removed afterwards, with Ray's SSH control folder for the cluster."""
    reason = _unmet()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="dql-launcher-"))
    created = [path for path in RAY_TMP if not os.path.exists(path)]
    cluster_name = f"dql-e2e-{uuid.uuid4().hex[:8]}"
    try:
        for path in created:  # mount points for the private copies
            os.makedirs(path, mode=0o777)
        for sub in ("ssh", "logs", "steps", "shared", "laptop", "tmp/ray", "tmp/_ray_lockfiles"):
            (folder / sub).mkdir(parents=True)
        yield folder, cluster_name
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for path in created:
            with contextlib.suppress(OSError):  # unless someone's Ray uses it meanwhile
                os.rmdir(path)
        # Ray's SSH ControlPath (command_runner.py): /tmp/ray_ssh_<user>/<cluster>, hashed.
        user = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
        control = Path(f"/tmp/ray_ssh_{user}")
        shutil.rmtree(control / hashlib.sha256(cluster_name.encode()).hexdigest()[:10], True)
        if control.is_dir() and not any(control.iterdir()):
            control.rmdir()


def _step(rig: Path, name: str) -> tuple[int, int]:
    path = rig / "steps" / name
    if not path.exists():
        return -1, 0
    rc, seconds = path.read_text().split()
    return int(rc), int(seconds)


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name} missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _head_logs(rig: Path) -> str:
    """The head's autoscaler log: why a worker did not start."""
    logs = sorted((rig / "tmp/ray").glob("session_*/logs/monitor.*"))
    return "\n".join(f"--- {p.name}\n{_tail(p, 30)}" for p in logs)


def _nodes_of_trials(results: Path) -> dict[str, set[str]]:
    """Trial folder -> the `node_id`s its rows report (docs/RESULTS.md)."""
    nodes = {}
    for rows in results.rglob("result.json"):
        records = [json.loads(line) for line in rows.read_text().splitlines() if line.strip()]
        nodes[rows.parent.name] = {r["node_id"] for r in records if r.get("node_id")}
    return nodes


def test_ray_up_submit_smoke_sweep_on_two_nodes_then_down(rig):
    rig, cluster_name = rig
    config = _test_copy(rig, cluster_name)
    _sshd_config(rig)
    env = {
        **os.environ,
        "RIG": str(rig),
        "REPO": str(REPO),
        "CFG": str(config),
        "SSHD": SSHD,
        "HEAD": HEAD,
        "HOME": str(rig / "laptop"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    script = rig / "rig.sh"
    script.write_text(textwrap.dedent(RIG_SCRIPT))
    started = time.monotonic()
    # --kill-child: if the rig runs past its limit, killing unshare kills the namespace's
    # first process, and with it every process in the namespace.
    rig_run = subprocess.run(
        [*UNSHARE, "--kill-child", "bash", str(script)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RIG_LIMIT_S,
    )
    wall = time.monotonic() - started
    assert rig_run.returncode == 0, f"rig set-up failed ({rig_run.returncode}): {rig_run.stderr}"

    logs = rig / "logs"
    for name, hint in (("up", ""), ("worker", "worker never joined"), ("submit", "")):
        rc, _ = _step(rig, name)
        detail = _head_logs(rig) if name == "worker" else ""
        assert rc == 0, f"{name} {hint} (exit {rc}):\n{_tail(logs / f'{name}.log')}\n{detail}"
    rc, _ = _step(rig, "down")
    assert rc == 0, f"ray down (exit {rc}):\n{_tail(logs / 'down.log')}"
    assert (rig / "steps/left").read_text().strip() == "0", "ray down left Ray processes"

    results = rig / "shared/results/locomotion"
    trials = load(str(results)).trials
    # Every trial came to an end a working cluster can give (not failed, not cut off).
    ended = {"finished", "stopped_early", "diverged"}
    assert len(trials) >= 2 and set(trials["status"]) <= ended, trials[["trial_id", "status"]]
    nodes = _nodes_of_trials(results)
    per_node: dict[str, int] = {}
    for trial_nodes in nodes.values():
        assert len(trial_nodes) == 1, trial_nodes
        (node,) = trial_nodes
        per_node[node] = per_node.get(node, 0) + 1
    assert len(per_node) == 2, f"trials ran on {len(per_node)} node(s): {per_node}"

    summary = subprocess.run(
        [sys.executable, "-m", "analysis", "summary", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert summary.returncode == 0, summary.stderr
    for task in ("hopper-random-v2", "walker2d-random-v2"):
        assert task in summary.stdout, summary.stdout
    times = {name: _step(rig, name)[1] for name in ("up", "worker", "submit", "down")}
    print(f"launcher rig: {wall:.0f} s in all, steps {times}, trials per node {per_node}")
