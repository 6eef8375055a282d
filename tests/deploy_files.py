"""Readers of the deployment files in deploy/, for tests/test_deploy.py.

The Dockerfiles (instructions, final stage, exec-form ENTRYPOINT/CMD, COPY sources, HEALTHCHECK),
the compose file and the Kubernetes manifest (with compose's ${VAR:-default} and Kubernetes'
$(VAR) expansion), the fenced command lines of deploy/README.md, and ``command_lines()``, which
gathers every ``trainsentry ...`` argument vector they contain.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
MANIFEST = DEPLOY / "kubernetes" / "training-with-sidecar.yaml"
SIDECAR_DOCKERFILE = DEPLOY / "Dockerfile"
TRAINING_DOCKERFILE = DEPLOY / "training.Dockerfile"
RULES = DEPLOY / "rules.toml"
README = DEPLOY / "README.md"


# --- reading the files ---------------------------------------------------------------------------

@dataclass
class Dockerfile:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""

    path: Path
    instructions: list[tuple[str, str]]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        instructions, pending = [], ""
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue  # comments may sit between continuation lines, and are dropped there too
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            keyword, _, rest = (pending + stripped).partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
        assert not pending, f"{path.name}: the last instruction ends with a line continuation"
        return cls(path, instructions)

    @property
    def final_stage(self) -> list[tuple[str, str]]:
        starts = [i for i, (keyword, _) in enumerate(self.instructions) if keyword == "FROM"]
        assert starts, f"{self.path.name}: no FROM"
        return self.instructions[starts[-1]:]

    def last(self, keyword: str) -> str | None:
        values = [value for kw, value in self.final_stage if kw == keyword]
        return values[-1] if values else None

    def exec_form(self, keyword: str) -> list[str]:
        """ENTRYPOINT or CMD in exec (JSON) form: the shell form would wrap it in `sh -c`."""
        value = self.last(keyword)
        assert value is not None, f"{self.path.name}: no {keyword} in the final stage"
        assert value.startswith("["), f"{self.path.name}: {keyword} must be in exec form: {value}"
        return json.loads(value)

    def copies(self, stage: str = "all") -> list[tuple[list[str], str]]:
        """(sources, destination) of every COPY/ADD from the build context (not --from a stage)."""
        instructions = self.final_stage if stage == "final" else self.instructions
        found = []
        for keyword, value in instructions:
            if keyword not in ("COPY", "ADD"):
                continue
            words = shlex.split(value)
            flags = [w for w in words if w.startswith("--")]
            if any(f.startswith("--from=") for f in flags):
                continue
            paths = [w for w in words if not w.startswith("--")]
            found.append((paths[:-1], paths[-1]))
        return found

    def healthcheck(self) -> list[str] | None:
        value = self.last("HEALTHCHECK")
        if value is None or value.upper() == "NONE":
            return None
        words = value.split(" ")
        start = words.index("CMD")
        return json.loads(" ".join(words[start + 1:]))


@dataclass
class CommandLine:
    """One `trainsentry ...` argument vector and where it was found."""

    where: str
    argv: list[str]
    service: dict[str, Any] = field(default_factory=dict)  # compose service or Kubernetes container
    problem: str | None = None  # the file could not be read into command lines

    def option(self, name: str) -> str | None:
        """The value given to `name` (before any `--`), or None."""
        words = self.argv[:self.argv.index("--")] if "--" in self.argv else self.argv
        for i, word in enumerate(words):
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
        return None


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def load_manifest() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if doc]


def compose_interpolate(word: str) -> str:
    """What compose makes of ${VAR:-default} with VAR unset; a variable without default fails."""
    def substitute(match: re.Match) -> str:
        assert match.group(2) is not None, (
            f"compose.yaml: ${{{match.group(1)}}} has no default, so it is empty unless set: {word!r}")
        return match.group(2)
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", substitute, word.replace("$$", "\0")).replace("\0", "$")


def compose_dockerfile(service: dict[str, Any]) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE.parent / build.get("context", ".")).resolve()
    return context / build.get("dockerfile", "Dockerfile")


def compose_argv(service: dict[str, Any]) -> list[str] | None:
    """entrypoint + command as the container runs them, the image's own filling what is unset."""
    dockerfile_path = compose_dockerfile(service)
    dockerfile = Dockerfile.read(dockerfile_path) if dockerfile_path and dockerfile_path.is_file() else None
    entrypoint, command = service.get("entrypoint"), service.get("command")
    if entrypoint is None:
        if dockerfile is None:
            return None  # a third-party image (Kafka): its entrypoint is not ours to check
        entrypoint = dockerfile.exec_form("ENTRYPOINT")
        if command is None:
            command = dockerfile.exec_form("CMD")
    words = [*_words(entrypoint), *_words(command)]
    return [compose_interpolate(w) for w in words]


def _words(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        spec = doc.get("spec") or {}
        if doc["kind"] == "Pod":
            yield doc["metadata"]["name"], spec
        elif "template" in spec:
            yield doc["metadata"]["name"], spec["template"]["spec"]
        elif "jobTemplate" in spec:
            yield doc["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]


def k8s_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def k8s_expand(word: str, container: dict[str, Any]) -> str:
    """Kubernetes' $(VAR) expansion in command and args; an undefined VAR stays literal, a bug."""
    env = {e["name"]: e.get("value", f"<{e['name']} from valueFrom>") for e in container.get("env", [])}

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        assert name in env, (f"container {container['name']!r}: $({name}) is not in its env, "
                             "so Kubernetes passes it literally")
        return env[name]
    return re.sub(r"(?<!\$)\$\((\w+)\)", substitute, word).replace("$$(", "$(")


def readme_commands() -> list[list[str]]:
    """`trainsentry ...` lines inside the fenced code blocks of deploy/README.md."""
    if not README.is_file():
        return []
    found, fenced, pending = [], False, ""
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            continue
        text = (pending + line.strip()).removeprefix("$ ")
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        if text.startswith("trainsentry "):
            found.append(shlex.split(text, comments=True))
    return found


def command_lines() -> list[CommandLine]:
    """Every trainsentry command line of the deployment files. A file that cannot be read becomes
    an entry with a ``problem``, so that its test fails instead of the whole module's collection."""
    found: list[CommandLine] = []

    def collect(source: str, read) -> None:
        try:
            found.extend(read())
        except Exception as exc:  # reported by test_command_line_is_accepted_by_the_cli
            found.append(CommandLine(source, [], problem=f"{type(exc).__name__}: {exc}"))

    def dockerfile(path: Path) -> list[CommandLine]:
        image = Dockerfile.read(path)
        return [CommandLine(f"{path.name} ENTRYPOINT+CMD",
                            image.exec_form("ENTRYPOINT") + image.exec_form("CMD"))]

    def compose() -> list[CommandLine]:
        lines = []
        for name, service in load_compose()["services"].items():
            argv = compose_argv(service)
            if argv and argv[0] == "trainsentry":
                lines.append(CommandLine(f"compose.yaml service {name}", argv, service))
        return lines

    def manifest() -> list[CommandLine]:
        lines = []
        for owner, spec in pod_specs(load_manifest()):
            for container in k8s_containers(spec):
                words = [*container.get("command", []), *container.get("args", [])]
                argv = [k8s_expand(str(w), container) for w in words]
                if argv and argv[0] == "trainsentry":
                    lines.append(CommandLine(f"{MANIFEST.name} {owner}/{container['name']}", argv, container))
        return lines

    def readme() -> list[CommandLine]:
        return [CommandLine(f"README.md command {i + 1}", argv) for i, argv in enumerate(readme_commands())]

    collect(SIDECAR_DOCKERFILE.name, lambda: dockerfile(SIDECAR_DOCKERFILE))
    collect(TRAINING_DOCKERFILE.name, lambda: dockerfile(TRAINING_DOCKERFILE))
    collect(COMPOSE.name, compose)
    collect(MANIFEST.name, manifest)
    collect(README.name, readme)
    return found
