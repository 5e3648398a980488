"""The cluster configs in cluster/ and the commands in cluster/README_SECTION.md.

Offline and fast: the launcher YAMLs go through the installed Ray's own config preparation
(`prepare_config`: defaults filled in from the provider's defaults.yaml, setup commands
merged, Docker config checked, per-type worker limits set) and schema validation
(`validate_config`: ray-schema.json plus Ray's own cross-field checks). What `ray up` does after
that (autodetecting instance resources, creating IAM roles and security groups) needs the
cloud and is not run here. Every `ray ...` command in the README section is parsed by the
installed `ray` CLI's click parser without being executed.
"""

from __future__ import annotations

import copy
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.scripts.scripts import cli

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
LAUNCHER_YAMLS = ["gpu.yaml", "gcp.yaml"]  # cloud: autoscaled node types, Docker image
LOCAL_YAML = "local.yaml"  # on-premises machines by address, no Docker
KUBERAY_YAML = CLUSTER / "kuberay.yaml"
README_SECTION = CLUSTER / "README_SECTION.md"
ENTRY_SCRIPT = "sweeps/locomotion.py"
IMAGE = f"rayproject/ray:{ray.__version__}-py311-gpu"

# The sweep scripts' command line as agreed for the README (sweeps/ is written elsewhere).
SWEEP_FLAGS = {
    "--tasks", "--num-samples", "--seeds", "--max-concurrent", "--cpus-per-trial",
    "--gpus-per-trial", "--epochs", "--steps-per-epoch", "--eval-every", "--eval-episodes",
    "--storage", "--name", "--resume", "--download", "--confirm", "--eta-range", "--T-range",
    "--lr-range", "--address", "--smoke",
}  # fmt: skip


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _prepared(name: str) -> dict:
    config = prepare_config(copy.deepcopy(_load(name)))
    validate_config(config)
    return config


# --------------------------------------------------------------------------------------------
# Cluster-launcher YAMLs


@pytest.mark.parametrize("name", [*LAUNCHER_YAMLS, LOCAL_YAML])
def test_launcher_yaml_passes_rays_own_preparation_and_schema(name):
    config = _prepared(name)
    assert config["provider"]["type"] in {"aws", "gcp", "local"}
    assert config["head_node_type"] in config["available_node_types"]


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_head_takes_no_trials_and_workers_declare_gpus(name):
    config = _prepared(name)
    types = config["available_node_types"]
    head = config["head_node_type"]
    for node_type in types.values():
        for key, value in node_type.get("resources", {}).items():
            assert isinstance(value, int) and not isinstance(value, bool), (name, key, value)
    # The node type's `resources` override what Ray detects: nothing schedules on the head.
    assert types[head]["resources"].get("CPU") == 0
    assert types[head]["resources"].get("GPU") == 0
    assert types[head]["max_workers"] == 0
    workers = {k: v for k, v in types.items() if k != head}
    assert workers, "no worker node types"
    gpus = []
    for worker_name, worker in workers.items():
        assert worker["resources"].get("CPU", 0) >= 1, worker_name
        assert worker["resources"].get("GPU", 0) >= 1, worker_name
        assert worker["min_workers"] == 0, f"{worker_name}: idle GPUs cost money"
        assert worker["max_workers"] >= 1, worker_name
        gpus.append(worker["resources"]["GPU"])
    assert 1 in gpus, "a single-GPU worker type"
    assert max(gpus) > 1, "a multi-GPU worker type"


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_image_matches_installed_ray(name):
    config = _prepared(name)
    docker = config["docker"]
    assert docker["image"] == IMAGE
    for key in ("head_image", "worker_image"):
        assert docker.get(key, IMAGE) == IMAGE
    for node_type in config["available_node_types"].values():
        assert node_type.get("docker", {}).get("worker_image", IMAGE) == IMAGE
    # ...and the project pins that same Ray.
    deps = _pyproject()["project"]["dependencies"]
    assert f"ray[tune]=={ray.__version__}" in deps


def _project_mount(config: dict) -> str:
    """The remote path that file_mounts fills with this repository."""
    mounts = [
        remote
        for remote, local in config["file_mounts"].items()
        if (REPO / Path(local).expanduser()).resolve() == REPO
    ]
    assert len(mounts) == 1, f"file_mounts must sync the repository once: {config['file_mounts']}"
    return mounts[0]


@pytest.mark.parametrize("name", [*LAUNCHER_YAMLS, LOCAL_YAML])
def test_setup_commands_install_this_project_on_every_node(name):
    config = _prepared(name)
    mount = _project_mount(config)
    assert mount.startswith("~/"), mount
    project = _pyproject()["project"]
    extras = set(project["optional-dependencies"])
    # In shell, `~` is not expanded inside quotes: the command must use $HOME (or no quotes).
    path = re.escape(mount.removeprefix("~/"))
    install = re.compile(
        r"pip install (?:-U )?-e [\"']?(?P<home>\$HOME|~)/"
        + path
        + r"(?:\[(?P<extras>[\w,-]+)\])?[\"']?"
    )
    # prepare_config merged setup_commands into both lists: check what each node really runs.
    for key in ("head_setup_commands", "worker_setup_commands"):
        matches = [m for cmd in config[key] if (m := install.search(cmd))]
        assert len(matches) == 1, f"{key} must pip install -e the project once: {config[key]}"
        m = matches[0]
        quoted = m.group(0).split("-e ", 1)[1][:1] in "\"'"
        assert not (quoted and m.group("home") == "~"), "~ inside quotes is not expanded"
        chosen = set((m.group("extras") or "").split(",")) - {""}
        assert "aws" in chosen, "the aws extra (s3fs, boto3) is needed for s3:// results"
        assert "train" in chosen, "the train extra (torch, MuJoCo, h5py) runs the trials"
        assert chosen <= extras, f"unknown extras {chosen - extras}"
    # The repository that is mounted is this package.
    assert project["name"] == "diffusion-ql-sweeps"
    assert mount == "~/diffusion-ql-sweeps"


@pytest.mark.parametrize("name", LAUNCHER_YAMLS)
def test_only_placeholders_to_edit_are_marked(name):
    text = (CLUSTER / name).read_text()
    assert "EDIT" in text
    region_line = next(line for line in text.splitlines() if line.strip().startswith("region:"))
    assert "EDIT" in region_line


# --------------------------------------------------------------------------------------------
# On-premises cluster (provider: local)


def _commands(config: dict, key: str) -> list[str]:
    return [" ".join(cmd.split()) for cmd in config[key]]


def _ray_start(config: dict, key: str) -> str:
    (start,) = [cmd for cmd in _commands(config, key) if " ray start " in f" {cmd}"]
    return start


def test_local_cluster_lists_machines_by_address_without_docker():
    raw = _load(LOCAL_YAML)
    config = _prepared(LOCAL_YAML)
    provider = config["provider"]
    assert provider["type"] == "local"
    assert isinstance(provider["head_ip"], str)
    assert isinstance(provider["worker_ips"], list) and provider["worker_ips"]
    assert {"ssh_user", "ssh_private_key"} <= set(config["auth"])
    assert not raw.get("docker"), "on-premises machines need no Docker"
    # Every machine listed is started: one node type, min = max = the number of worker_ips.
    (node_type,) = config["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(provider["worker_ips"])


def test_local_cluster_marks_every_line_to_edit():
    lines = (CLUSTER / LOCAL_YAML).read_text().splitlines()
    for key in ("head_ip:", "worker_ips:", "ssh_user:", "ssh_private_key:"):
        (line,) = [line for line in lines if line.strip().startswith(key)]
        assert "# EDIT" in line, line
    marked = [line for line in lines if "# EDIT" in line and not line.lstrip().startswith("#")]
    assert len(marked) == 4, marked


def test_local_cluster_installs_the_full_ray_on_every_machine():
    config = _prepared(LOCAL_YAML)
    for key in ("head_setup_commands", "worker_setup_commands"):
        installs = [cmd for cmd in config[key] if "pip install" in cmd]
        pinned = f"ray[default]=={ray.__version__}"
        assert any(pinned in cmd for cmd in installs), f"{key}: {pinned} (dashboard, job API)"


def test_local_head_runs_autoscaler_v1_with_the_dashboard_on_localhost():
    start = _ray_start(_prepared(LOCAL_YAML), "head_start_ray_commands")
    # Ray 2.60's launcher turns on autoscaler v2, which never starts the worker_ips.
    assert re.search(r"\bRAY_enable_autoscaler_v2=0 ray start --head\b", start), start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in start
    assert "--dashboard-host=127.0.0.1" in start


def test_local_worker_never_stops_a_head_on_its_machine():
    """`ray stop` ends every Ray process on the machine; a worker may share the head's."""
    for cmd in _commands(_prepared(LOCAL_YAML), "worker_start_ray_commands"):
        if "ray stop" in cmd:
            guard, stop = cmd.split("||")
            assert stop.strip() == "ray stop", cmd
            assert re.fullmatch(r"pgrep -x gcs_server( >/dev/null)?", guard.strip()), cmd


def _ports(command: str) -> dict[str, int]:
    return {flag: int(port) for flag, port in re.findall(r"(--[\w-]*port)=(\d+)", command)}


def test_local_ports_are_all_in_the_ports_block_and_head_and_workers_differ():
    config = _prepared(LOCAL_YAML)
    head = _ports(_ray_start(config, "head_start_ray_commands"))
    worker = _ports(_ray_start(config, "worker_start_ray_commands"))
    assert head["--port"] == 6379 and head["--dashboard-port"] == 8265
    assert f"$RAY_HEAD_IP:{head['--port']}" in _ray_start(config, "worker_start_ray_commands")
    text = (CLUSTER / LOCAL_YAML).read_text()
    block = text[text.index("# Ports, all in this block") :].split("\n\n", 1)[0]
    listed = set(re.findall(r"\b\d{2,5}\b", block))
    for flag, port in [*head.items(), *worker.items()]:
        assert str(port) in listed, f"{flag}={port} is not in the ports block"
    # A worker on the head's machine must not want the head's ports.
    shared = {f: p for f, p in worker.items() if head.get(f) == p}
    assert not shared, f"head and workers use the same {shared}"
    head_range = range(head["--min-worker-port"], head["--max-worker-port"] + 1)
    assert worker["--min-worker-port"] not in head_range
    assert worker["--max-worker-port"] not in head_range


# --------------------------------------------------------------------------------------------
# KubeRay RayJob


def _script_of(command: list[str]) -> str:
    return next(arg for arg in command if arg.endswith(".py"))


def test_kuberay_rayjob_runs_the_same_sweep_with_the_same_image():
    job = yaml.safe_load(KUBERAY_YAML.read_text())
    assert job["apiVersion"] == "ray.io/v1"
    assert job["kind"] == "RayJob"
    spec = job["spec"]
    entrypoint = shlex.split(spec["entrypoint"])
    assert entrypoint[0] == "python"
    assert _script_of(entrypoint) == ENTRY_SCRIPT
    storage = entrypoint[entrypoint.index("--storage") + 1]
    assert storage.startswith("s3://")
    assert entrypoint[entrypoint.index("--address") + 1] == "auto"
    flags = {a for a in entrypoint if a.startswith("--")}
    assert flags <= SWEEP_FLAGS, flags - SWEEP_FLAGS

    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert any(req.startswith("diffusion-ql-sweeps[train,aws]") for req in runtime_env["pip"])

    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["enableInTreeAutoscaling"] is True
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert head["rayStartParams"]["num-gpus"] == "0"
    pods = [head["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:
        for container in pod["spec"]["containers"]:
            assert container["image"] == IMAGE
    gpus = []
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] == 0 < group["maxReplicas"]
        (container,) = group["template"]["spec"]["containers"]
        gpus.append(int(container["resources"]["limits"]["nvidia.com/gpu"]))
    assert 1 in gpus and max(gpus) > 1


# --------------------------------------------------------------------------------------------
# The README section's commands


def _shell_commands() -> list[list[str]]:
    text = README_SECTION.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                commands.append(shlex.split(line))
    return commands


def _ray_commands() -> list[list[str]]:
    return [c[1:] for c in _shell_commands() if c[0] == "ray"]


def _parse_with_ray_cli(args: list[str]) -> click.Context:
    """Walk the real `ray` click group down to the leaf command and parse its options and
    arguments (unknown subcommands or flags, missing arguments and bad values raise);
    nothing is invoked."""
    command: click.Command = cli
    name, parent, rest = "ray", None, list(args)
    while isinstance(command, click.Group):
        ctx = command.make_context(name, rest, parent=parent)
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else []
        rest = [*protected, *ctx.args]
        sub_name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None, f"no such ray command: {args}"
        name, parent, command = sub_name, ctx, sub
    return command.make_context(name, rest, parent=parent)


def test_readme_has_the_commands_the_issue_asks_for():
    found = {" ".join(c[:2]) if c[0] == "job" else c[0] for c in _ray_commands()}
    for needed in ("up", "submit", "dashboard", "attach", "down", "job submit"):
        assert needed in found, needed
    text = README_SECTION.read_text()
    assert text.startswith("## Run on a cluster\n")
    assert "--start" in text and "--no-restart" in text
    assert "python -m analysis table" in text and "tensorboard --logdir" in text


@pytest.mark.parametrize("args", _ray_commands(), ids=lambda a: " ".join(a[:2]))
def test_readme_ray_command_parses(args):
    ctx = _parse_with_ray_cli(args)
    for param in ("cluster_config_file",):
        if param in ctx.params:
            assert (REPO / ctx.params[param]).is_file(), ctx.params[param]


def _sweep_invocations(with_config: bool = False) -> list:
    """Each sweep script with its arguments, from `ray submit` and `ray job submit` lines
    (with the cluster YAML it is submitted to, None for `ray job submit`)."""
    runs = []
    for args in _ray_commands():
        ctx = _parse_with_ray_cli(args)
        if ctx.command.name == "submit" and "script" in ctx.params:
            run = [ctx.params["script"], *ctx.params["script_args"]]
            runs.append((ctx.params["cluster_config_file"], run))
        elif ctx.command.name == "submit":
            entrypoint = list(ctx.params["entrypoint"])
            runs.append((None, entrypoint[entrypoint.index("python") + 1 :]))
    return runs if with_config else [run for _, run in runs]


def test_readme_sweeps_use_the_agreed_flags_and_shared_storage():
    runs = _sweep_invocations(with_config=True)
    assert any(run[0] == ENTRY_SCRIPT for _, run in runs)
    assert any(config == f"cluster/{LOCAL_YAML}" for config, _ in runs)
    for config, run in runs:
        assert re.fullmatch(r"sweeps/\w+\.py", run[0]), run[0]
        flags = {a for a in run[1:] if a.startswith("--")}
        assert flags <= SWEEP_FLAGS, flags - SWEEP_FLAGS
        storage = run[run.index("--storage") + 1]
        # Tune needs storage every node reaches: a bucket, or on your own machines a shared
        # folder (NFS), which has to be an absolute path (the same on every machine).
        shared = ("s3://", "/") if config == f"cluster/{LOCAL_YAML}" else ("s3://",)
        assert storage.startswith(shared), f"{config}: {storage} is not shared storage"
        # Without it the script starts a Ray of its own instead of joining the cluster.
        assert run[run.index("--address") + 1] == "auto"


def test_readme_holds_the_cluster_section_as_written():
    """README.md carries cluster/README_SECTION.md (what these tests check) word for word."""
    assert README_SECTION.read_text().strip() in (REPO / "README.md").read_text()


def test_readme_sweep_flags_exist_in_the_script():
    """Once the entry scripts exist, their own --help must know every flag the README uses."""
    runs = [run for run in _sweep_invocations() if (REPO / run[0]).is_file()]
    if not runs:
        pytest.skip("the sweep entry scripts are not written yet")
    for script in sorted({run[0] for run in runs}):
        help_text = subprocess.run(
            [sys.executable, script, "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        for run in runs:
            if run[0] == script:
                for flag in (a for a in run[1:] if a.startswith("--")):
                    assert flag in help_text, f"{script} has no {flag}"
