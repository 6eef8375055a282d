"""The deployment files in deploy/: they parse, they agree with each other and with the code.

No Docker engine and no broker: every ``trainsentry ...`` command line found in the Dockerfiles,
the compose file, the Kubernetes manifest and deploy/README.md is parsed by the real CLI parser,
every ``--config`` path must be one the deployment mounts, and the rules file they mount is loaded
by the real configuration loader.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.deploy_files import (
    COMPOSE,
    DEPLOY,
    MANIFEST,
    ROOT,
    RULES,
    SIDECAR_DOCKERFILE,
    TRAINING_DOCKERFILE,
    CommandLine,
    Dockerfile,
    command_lines,
    compose_dockerfile,
    k8s_containers,
    load_compose,
    load_manifest,
    pod_specs,
)
from trainsentry.consumers import cli
from trainsentry.consumers.engine import Engine
from trainsentry.producers import tap
from trainsentry.rules.config import load_config, parse_config

COMMANDS = command_lines()


# --- every file parses ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    assert docs and all(isinstance(doc, dict) for doc in docs)


def test_rules_config_loads_with_the_real_loader() -> None:
    config = load_config(RULES)
    assert config.rules, "the shipped configuration runs no rule"
    Engine(config)  # what `trainsentry run` does with it at start-up


# --- every trainsentry command line is one the CLI accepts ----------------------------------------

def test_command_lines_are_found() -> None:
    """The collection below is not vacuous: every deployment contributes its command lines."""
    where = " | ".join(c.where for c in COMMANDS)
    for expected in ("Dockerfile ENTRYPOINT+CMD", "training.Dockerfile ENTRYPOINT+CMD",
                     "compose.yaml service sidecar", "compose.yaml service training",
                     "training-with-sidecar.yaml digits-training/trainsentry",
                     "training-with-sidecar.yaml digits-training/training"):
        assert expected in where, f"no trainsentry command line from {expected}; found: {where}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.where)
def test_command_line_is_accepted_by_the_cli(command: CommandLine) -> None:
    assert command.problem is None, f"{command.where}: {command.problem}"
    argv = command.argv[1:]
    if argv and argv[0] == "tap":  # cli.main hands `tap ...` to the tap's own parser
        check_tap(argv[1:], command.where)
        return
    namespace = parse(cli.build_parser(), argv, command.where)
    assert namespace.command != "tap", f"{command.where}: `tap` must come first to reach the log tap"


def parse(parser: argparse.ArgumentParser, argv: list[str], where: str) -> argparse.Namespace:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: the CLI rejects {shlex.join(argv)}:\n{stderr.getvalue()}")


def check_tap(argv: list[str], where: str) -> None:
    assert "--" in argv, f"{where}: tap needs `-- COMMAND ...` to know where its options end"
    options, command = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    assert command, f"{where}: nothing to run after `--`"
    assert "--trial" in options and options.index("--trial") + 1 < len(options), (
        f"{where}: tap needs --trial ID")
    parse(tap._parser(), argv, where)


# --- --config points at a file the deployment mounts ---------------------------------------------

def test_dockerfile_default_config_is_copied_into_the_image() -> None:
    dockerfile = Dockerfile.read(SIDECAR_DOCKERFILE)
    config = CommandLine("Dockerfile", dockerfile.exec_form("CMD")).option("--config")
    assert config, "the sidecar's default CMD names no --config"
    sources = [srcs for srcs, dest in dockerfile.copies("final") if dest == config]
    assert sources, f"the image's default --config {config} is not COPYed to that path"
    assert all((ROOT / src).is_file() for src in sources[-1])


def test_compose_config_paths_are_mounted() -> None:
    checked = 0
    for command in COMMANDS:
        if not command.where.startswith("compose.yaml") or not command.option("--config"):
            continue
        path = command.option("--config")
        mounts = {}
        for volume in command.service.get("volumes", []):
            if isinstance(volume, str):
                source, target = volume.split(":")[:2]
            else:
                source, target = volume.get("source"), volume["target"]
            mounts[target] = source
        assert path in mounts, f"{command.where}: --config {path} is not a mounted file"
        source = (COMPOSE.parent / mounts[path]).resolve()
        assert source.is_file(), f"{command.where}: mounts {mounts[path]}, which does not exist"
        assert source == RULES.resolve(), f"{command.where}: mounts {source}, not {RULES}"
        checked += 1
    assert checked, "no compose service runs with --config"


def test_manifest_config_paths_are_mounted_from_the_configmap() -> None:
    docs = load_manifest()
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    checked = 0
    for _, spec in pod_specs(docs):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in k8s_containers(spec):
            path = CommandLine(container["name"], [*container.get("command", []),
                                                   *container.get("args", [])]).option("--config")
            if not path:
                continue
            name, key = configmap_source(PurePosixPath(path), container, volumes, configmaps)
            assert configmaps[name]["data"][key] == RULES.read_text(encoding="utf-8"), (
                f"ConfigMap {name!r} key {key!r} differs from deploy/rules.toml: keep them equal")
            checked += 1
    assert checked, "no container in the manifest runs with --config"


def configmap_source(path: PurePosixPath, container: dict[str, Any], volumes: dict[str, Any],
                     configmaps: dict[str, Any]) -> tuple[str, str]:
    """(ConfigMap name, key) of the file a container sees at ``path``."""
    for mount in container.get("volumeMounts", []):
        target = PurePosixPath(mount["mountPath"])
        if path != target and target not in path.parents:
            continue
        volume = volumes.get(mount["name"])
        assert volume is not None, f"volumeMount {mount['name']!r} names no volume of the pod"
        assert "configMap" in volume, f"--config {path} is mounted from {volume}, not a ConfigMap"
        name = volume["configMap"]["name"]
        assert name in configmaps, f"ConfigMap {name!r} is not defined in {MANIFEST.name}"
        relative = mount.get("subPath") if path == target else str(path.relative_to(target))
        assert relative, f"--config {path} is the mount point itself, without a subPath"
        items = volume["configMap"].get("items")
        if items:  # then only the listed keys appear, each under its `path`
            by_path = {item["path"]: item["key"] for item in items}
            assert relative in by_path, f"--config {path}: {relative} is not among the ConfigMap items"
            key = by_path[relative]
        else:
            key = relative
        assert key in configmaps[name].get("data", {}), f"ConfigMap {name!r} has no key {key!r}"
        return name, key
    pytest.fail(f"container {container['name']!r}: --config {path} is under no volumeMount")


def test_configmap_rules_load_with_the_real_loader() -> None:
    for doc in load_manifest():
        if doc["kind"] == "ConfigMap":
            for key, text in doc["data"].items():
                if key.endswith((".toml", ".json")):
                    assert parse_config(text, key.rsplit(".", 1)[1]).rules


# --- the compose file -----------------------------------------------------------------------------

def test_compose_has_kafka_sidecar_and_training() -> None:
    services = load_compose()["services"]
    assert {"kafka", "sidecar", "training"} <= set(services)
    for name in ("sidecar", "training"):
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy", (
            f"{name} must wait for a healthy Kafka")
    assert services["kafka"].get("healthcheck", {}).get("test"), "service_healthy needs a healthcheck"


def test_compose_kafka_is_apache_kafka_in_kraft_mode() -> None:
    kafka = load_compose()["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert tag and tag != "latest", "pin the Kafka version"
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env), "KRaft mode has no ZooKeeper"
    node_id = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert any(v.startswith(f"{node_id}@") for v in voters), "the node must be a controller voter"
    listeners = _listeners(env["KAFKA_LISTENERS"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for name in env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(","):
        assert name in listeners and name in protocols
    for name in _listeners(env["KAFKA_ADVERTISED_LISTENERS"]):
        assert name in listeners and name in protocols, f"advertised listener {name} is not a listener"
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1, "one node: one replica"


def _listeners(value: str) -> dict[str, str]:
    """{NAME: host:port} of a listeners setting such as INTERNAL://kafka:9092,CONTROLLER://:9093."""
    return dict(part.split("://", 1) for part in value.split(","))


def test_compose_clients_use_an_advertised_kafka_listener() -> None:
    """The containers reach Kafka at an address it advertises (else the client is sent elsewhere)."""
    services = load_compose()["services"]
    env = services["kafka"]["environment"]
    advertised = set(_listeners(env["KAFKA_ADVERTISED_LISTENERS"]).values())
    checked = 0
    for command in COMMANDS:
        if command.where.startswith("compose.yaml"):
            servers = command.option("--bootstrap-servers") or command.service.get(
                "environment", {}).get("KAFKA_BOOTSTRAP_SERVERS")
            assert servers, f"{command.where}: no --bootstrap-servers and no $KAFKA_BOOTSTRAP_SERVERS"
            for server in servers.split(","):
                assert server in advertised, f"{command.where}: {server} is not advertised by kafka"
            checked += 1
    assert checked >= 2


def test_compose_builds_from_the_deploy_dockerfiles() -> None:
    for name, service in load_compose()["services"].items():
        dockerfile = compose_dockerfile(service)
        if dockerfile is not None:
            assert dockerfile.is_file(), f"service {name}: {dockerfile} does not exist"
            assert dockerfile.parent.parent == ROOT and dockerfile.parent == DEPLOY
    assert compose_dockerfile(load_compose()["services"]["sidecar"]) == SIDECAR_DOCKERFILE
    assert compose_dockerfile(load_compose()["services"]["training"]) == TRAINING_DOCKERFILE


def test_compose_sidecar_metrics_match_the_image() -> None:
    services = load_compose()["services"]
    sidecar = next(c for c in COMMANDS if c.where == "compose.yaml service sidecar")
    port = sidecar.option("--metrics-port")
    assert port == _image_metrics_port(), "the image's health check probes another port"
    published = [str(p).rsplit(":", 1)[-1] for p in services["sidecar"].get("ports", [])]
    assert port in published


def test_compose_services_not_serving_metrics_disable_the_image_healthcheck() -> None:
    """The sidecar image's HEALTHCHECK probes the metrics port: other commands would be 'unhealthy'."""
    for command in COMMANDS:
        if (command.where.startswith("compose.yaml")
                and compose_dockerfile(command.service) == SIDECAR_DOCKERFILE):
            if command.argv[1] == "run" and command.option("--metrics-port") == _image_metrics_port():
                continue
            assert command.service.get("healthcheck", {}).get("disable") is True, (
                f"{command.where}: runs {command.argv[1]!r} without serving metrics; disable the healthcheck")


def test_compose_config_with_docker_compose() -> None:
    """Where the compose plugin is installed, it validates the file against the compose spec."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin")
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- the Dockerfiles -------------------------------------------------------------------------------

def _image_metrics_port() -> str:
    dockerfile = Dockerfile.read(SIDECAR_DOCKERFILE)
    ports = re.findall(r"127\.0\.0\.1:(\d+)/healthz", " ".join(dockerfile.healthcheck() or []))
    assert len(ports) == 1, "the HEALTHCHECK should probe the liveness endpoint, http://127.0.0.1:PORT/healthz"
    return ports[0]


def test_sidecar_dockerfile_runs_the_sidecar() -> None:
    dockerfile = Dockerfile.read(SIDECAR_DOCKERFILE)
    assert dockerfile.final_stage[0][1].split()[0] == "python:3.11-slim"
    assert dockerfile.exec_form("ENTRYPOINT") == ["trainsentry"]
    command = CommandLine("Dockerfile", ["trainsentry", *dockerfile.exec_form("CMD")])
    assert command.argv[1] == "run"
    port = command.option("--metrics-port")
    assert port and port == _image_metrics_port()
    assert port in (dockerfile.last("EXPOSE") or "").split()


@pytest.mark.parametrize("path", [SIDECAR_DOCKERFILE, TRAINING_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfile_runs_as_a_numeric_non_root_user(path: Path) -> None:
    user = Dockerfile.read(path).last("USER")
    assert user, f"{path.name}: no USER, the container would run as root"
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric and not 0: Kubernetes' runAsNonRoot checks it"


@pytest.mark.parametrize("path", [SIDECAR_DOCKERFILE, TRAINING_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfile_copies_the_whole_package(path: Path) -> None:
    """Every package directory of pyproject.toml, and what the build needs, reaches the image."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", project["project"]["readme"],
              *project["tool"]["setuptools"]["package-dir"].values()}
    copied = {src.rstrip("/") for sources, _ in Dockerfile.read(path).copies() for src in sources}
    assert {n.rstrip("/") for n in needed} <= copied, f"{path.name} misses {needed - copied}"


@pytest.mark.parametrize("path", [SIDECAR_DOCKERFILE, TRAINING_DOCKERFILE], ids=lambda p: p.name)
def test_dockerignore_keeps_what_the_dockerfile_copies(path: Path) -> None:
    """The Dockerfile-specific ignore file (BuildKit reads <Dockerfile>.dockerignore) must not
    exclude a file a COPY needs, and must keep the virtualenv and git history out."""
    ignore = path.with_name(path.name + ".dockerignore")
    assert ignore.is_file(), f"{ignore.name} is missing: the whole repository would be the context"
    patterns = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.strip().startswith("#")]
    for sources, _ in Dockerfile.read(path).copies():
        for source in sources:
            where = ROOT / source
            assert where.exists(), f"{path.name}: COPY {source}: no such file in the repository"
            files = [where] if where.is_file() else [
                f for f in where.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                assert not dockerignore_excludes(patterns, relative), f"{ignore.name} excludes {relative}"
    for unwanted in (".venv/bin/python", ".git/HEAD", "consumers/__pycache__/cli.cpython-311.pyc"):
        assert dockerignore_excludes(patterns, unwanted), f"{ignore.name} lets {unwanted} in"


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    excluded = False
    parents = [path.split("/")[:i] for i in range(1, path.count("/") + 2)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch("/".join(parts)) for parts in parents):
            excluded = not negate
    return excluded


def _glob(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def test_sidecar_image_has_no_broker_extra_and_training_image_has_examples() -> None:
    sidecar_runs = " ".join(v for k, v in Dockerfile.read(SIDECAR_DOCKERFILE).instructions if k == "RUN")
    assert "broker" not in sidecar_runs, "the sidecar uses an existing cluster: no embedded broker"
    training = Dockerfile.read(TRAINING_DOCKERFILE)
    training_runs = " ".join(v for k, v in training.instructions if k == "RUN")
    assert "[examples]" in training_runs
    assert any("examples/" in sources or "examples" in sources for sources, _ in training.copies("final"))


def tapped_scripts() -> list[tuple[CommandLine, str, list[str]]]:
    """(command line, script, its arguments) of every `tap ... -- python SCRIPT.py ARGS`."""
    found = []
    for command in COMMANDS:
        if command.argv[1:2] == ["tap"] and "--" in command.argv:
            after = command.argv[command.argv.index("--") + 1:]
            if after and PurePosixPath(after[0]).name.startswith("python") and len(after) > 1:
                found.append((command, after[1], after[2:]))
    return found


def test_training_script_exists_in_the_training_image() -> None:
    """The script every tap runs is in the repository and copied into the training image."""
    scripts = tapped_scripts()
    assert scripts, "no tap command runs a Python script"
    copied = {src.rstrip("/") for sources, _ in Dockerfile.read(TRAINING_DOCKERFILE).copies("final")
              for src in sources}
    for command, script, _ in scripts:
        assert (ROOT / script).is_file(), f"{command.where}: {script} does not exist in the repository"
        assert any(script == c or script.startswith(c + "/") for c in copied), (
            f"{command.where}: {script} is not copied into the training image")


def test_training_script_accepts_its_arguments() -> None:
    """Its options and choices as the script declares them (read from its source, not run)."""
    for command, script, args in tapped_scripts():
        parse(script_parser(ROOT / script), args, f"{command.where}: {script}")


def test_tapped_script_publishes_under_the_tap_trial() -> None:
    """A script given its own --trial must get the tap's, or its tensors and its log lines would
    be two trials (the tap passes $TRAINSENTRY_TRIAL, which an explicit --trial overrides)."""
    for command, script, args in tapped_scripts():
        if "--trial" in args:
            script_trial, tap_trial = args[args.index("--trial") + 1], command.option("--trial")
            assert script_trial == tap_trial, (
                f"{command.where}: tap --trial {tap_trial} but {script} --trial {script_trial}")


def script_parser(path: Path) -> argparse.ArgumentParser:
    """A parser with the options of the script's add_argument calls: names, flags and choices."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)}
    parser = argparse.ArgumentParser(prog=path.name)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"):
            continue
        options = {}
        for keyword in node.keywords:
            value = keyword.value
            if isinstance(value, ast.Name) and value.id in constants:
                value = constants[value.id]
            if keyword.arg in ("action", "nargs", "choices", "required"):
                with contextlib.suppress(ValueError):
                    options[keyword.arg] = ast.literal_eval(value)
        parser.add_argument(*[ast.literal_eval(arg) for arg in node.args], **options)
    return parser


# --- the Kubernetes manifest -----------------------------------------------------------------------

def _job() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = load_manifest()
    assert {d["kind"] for d in docs} >= {"ConfigMap", "Job"}
    job = next(d for d in docs if d["kind"] == "Job")
    return job, job["spec"]["template"]


def test_manifest_runs_the_sidecar_as_a_native_sidecar() -> None:
    _, template = _job()
    spec = template["spec"]
    sidecars = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    assert len(sidecars) == 1
    sidecar = sidecars[0]
    assert sidecar["command"][:2] == ["trainsentry", "run"] or (
        sidecar["command"] == ["trainsentry"] and sidecar["args"][0] == "run")
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    training = spec["containers"]
    assert [c["command"][:2] for c in training] == [["trainsentry", "tap"]]


def test_manifest_containers_point_at_kafka_and_have_resources() -> None:
    _, template = _job()
    for container in k8s_containers(template["spec"]):
        env = {e["name"]: e for e in container.get("env", [])}
        assert env.get("KAFKA_BOOTSTRAP_SERVERS", {}).get("value"), (
            f"{container['name']}: set KAFKA_BOOTSTRAP_SERVERS to the cluster's bootstrap service")
        resources = container.get("resources", {})
        assert resources.get("requests") and resources.get("limits"), f"{container['name']}: resources"
        assert resources["limits"].get("memory"), f"{container['name']}: a memory limit"


def test_manifest_metrics_port_probes_and_scrape_annotations_agree() -> None:
    _, template = _job()
    sidecar = next(c for c in template["spec"]["initContainers"] if c.get("restartPolicy") == "Always")
    command = CommandLine("sidecar", [*sidecar["command"], *sidecar.get("args", [])])
    port = command.option("--metrics-port")
    named = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert str(named["metrics"]) == port
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == port
    assert annotations.get("prometheus.io/path", "/metrics") == "/metrics"
    # Live while the loop turns (a stuck sidecar is restarted), ready once the group is joined.
    for probe_name, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                             ("readinessProbe", "/readyz")):
        probe = sidecar[probe_name]["httpGet"]
        assert probe["path"] == path and str(named.get(probe["port"], probe["port"])) == port, probe_name


def test_manifest_sidecar_image_matches_the_dockerfile_user() -> None:
    """runAsNonRoot with the image's numeric USER: the pod starts (a named USER would be refused)."""
    _, template = _job()
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    assert Dockerfile.read(SIDECAR_DOCKERFILE).last("USER").split(":")[0].isdigit()
