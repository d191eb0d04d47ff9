"""The deployment files in ``deploy/`` run commands that exist, with variables that are real.

No container engine runs here, so the files are checked statically: the compose file parsed as
YAML, the Dockerfile, the systemd units, the Procfile and the environment file read line by line.

- every ``tasuki …`` command line they run resolves in the CLI (``tasuki.cli.main``): each
  subcommand exists and click accepts its options and values;
- every ``TASUKI_*`` variable they mention is in README.md's configuration table and is read
  somewhere in tasuki's source;
- the image is multi-stage (a wheel built in one stage, installed in a slim runtime), runs as a
  user who is not root, has ``tasuki`` as its entry point and a health check on ``/healthz``;
- compose runs PostgreSQL, Redis with an append-only file on a volume, serve, N workers and
  one scheduler, with health checks, restart policies, and secrets only from the environment;
- the worker units let a job in flight finish (SIGTERM to the worker alone, a stop timeout).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from tasuki.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SOURCES = [ROOT / "worker.py"] + [
    p for pkg in ("tasuki", "connectors", "webhooks", "rules") for p in (ROOT / pkg).rglob("*.py")
]
VARIABLE = re.compile(r"\bTASUKI_[A-Z0-9_]*[A-Z0-9]\b")
FROM_STAGE = re.compile(r"--(?:mount=\S*)?from=(\w+)")
"""``COPY --from=STAGE`` or ``RUN --mount=type=bind,from=STAGE,…``."""
SAMPLE_ENV = {"PORT": "8080"}
"""Values for the platform's own variables a command line may use (the Procfile's ``$PORT``)."""


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _units() -> dict[str, dict[str, list[str]]]:
    """Each unit's ``[Service]`` keys (a key may repeat, as systemd allows)."""
    units = {}
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        section, keys = "", dict[str, list[str]]()
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]")
            elif "=" in line and not line.startswith("#") and section == "Service":
                key, _, value = line.partition("=")
                keys.setdefault(key.strip(), []).append(value.strip())
        units[path.name] = keys
    return units


def _procfile() -> dict[str, str]:
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    return {
        m.group(1): m.group(2)
        for line in lines
        if (m := re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line))
    }


def _entrypoint() -> list[str]:
    [args] = [a for word, a in _dockerfile() if word == "ENTRYPOINT"]
    found: list[str] = json.loads(args)
    return found


def command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after ``tasuki``) of every tasuki command the deployment files run."""
    found: list[tuple[str, list[str]]] = []
    entry = _entrypoint()
    [cmd] = [json.loads(a) for word, a in _dockerfile() if word == "CMD"]
    found.append(("Dockerfile CMD", [*entry, *cmd][1:]))
    for name, service in _compose()["services"].items():
        if service.get("image", "").startswith("tasuki"):
            found.append((f"compose {name}", service["command"]))
    for unit, keys in _units().items():
        for key in ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload"):
            for line in keys.get(key, []):
                argv = shlex.split(line.lstrip("-+!@:"))
                assert Path(argv[0]).name == "tasuki", f"{unit}: {line}"
                found.append((f"{unit} {key}", argv[1:]))
    for name, line in _procfile().items():
        argv = shlex.split(line)
        assert argv[0] == "tasuki", f"Procfile {name}: {line}"
        found.append((f"Procfile {name}", argv[1:]))
    return found


def _resolve(args: list[str]) -> str:
    """The command path ``args`` names in the CLI; raises click's error when it does not parse."""
    group: click.Group = main
    path: list[str] = []
    rest = [re.sub(r"\$\{?(\w+)\}?", lambda m: SAMPLE_ENV[m.group(1)], a) for a in args]
    while True:
        name = rest.pop(0)
        command = group.commands.get(name)
        if command is None:
            raise click.UsageError(f"no command {' '.join([*path, name])!r}")
        path.append(name)
        if isinstance(command, click.Group):
            group = command
            continue
        with command.make_context(" ".join(path), rest):
            return " ".join(path)


def test_the_deployment_runs_the_commands_tests_run() -> None:
    ran = {_resolve(args) for _, args in command_lines()}
    assert {"serve", "worker", "scheduler", "db upgrade", "up"} <= ran


@pytest.mark.parametrize(("where", "args"), command_lines(), ids=lambda v: str(v))
def test_every_command_line_resolves_in_the_cli(where: str, args: list[str]) -> None:
    try:
        _resolve(args)
    except click.ClickException as exc:
        pytest.fail(f"{where}: tasuki {' '.join(args)}: {exc.format_message()}")


def test_a_misspelt_command_or_option_would_be_caught() -> None:
    with pytest.raises(click.UsageError):
        _resolve(["wroker"])
    with pytest.raises(click.NoSuchOption):
        _resolve(["serve", "--prot", "8080"])
    with pytest.raises(click.BadParameter):
        _resolve(["up", "--workers", "none"])


def _mentioned() -> dict[str, set[str]]:
    """Each TASUKI_* variable named in a deployment file, and the files naming it."""
    found: dict[str, set[str]] = {}
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        for name in VARIABLE.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _configuration_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Configuration")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def test_every_variable_is_documented_and_read_by_the_code() -> None:
    mentioned = _mentioned()
    assert {"TASUKI_WEBHOOK_SECRET", "TASUKI_DATABASE_URL", "TASUKI_REDIS_URL"} <= set(mentioned)
    table = _configuration_section()
    source = "\n".join(p.read_text() for p in SOURCES)
    undocumented = {n: f for n, f in mentioned.items() if f"`{n}`" not in table}
    unread = {n: f for n, f in mentioned.items() if not re.search(rf"\b{n}\b", source)}
    assert undocumented == {}, "not in README.md's configuration table"
    assert unread == {}, "read nowhere in tasuki's source"


def test_the_image_is_multi_stage_non_root_with_tasuki_as_entry_point() -> None:
    steps = _dockerfile()
    stages = [a.split() for w, a in steps if w == "FROM"]
    assert len(stages) >= 2 and all(len(s) == 3 and s[1].upper() == "AS" for s in stages)
    names = [s[2] for s in stages]
    final = max(i for i, (w, _) in enumerate(steps) if w == "FROM")
    last = steps[final:]
    assert "slim" in stages[-1][0]
    assert any("wheel" in a for w, a in steps[:final] if w == "RUN"), "no wheel built"
    taken = [m.group(1) for w, a in last if w in ("COPY", "RUN") for m in FROM_STAGE.finditer(a)]
    assert taken and set(taken) <= set(names[:-1]), "the runtime takes nothing from the build"
    users = [a for w, a in last if w == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the runtime runs as root"
    assert _entrypoint() == ["tasuki"]
    [check] = [a for w, a in last if w == "HEALTHCHECK"]
    assert "/healthz" in check


def test_compose_runs_the_whole_deployment() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "serve", "worker", "scheduler"} <= set(services)
    redis = services["redis"]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"]), "Redis keeps its AOF nowhere"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["scheduler"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("postgres", "redis", "serve"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    for name in ("postgres", "redis", "serve", "worker", "scheduler"):
        assert services[name]["restart"] in ("always", "unless-stopped", "on-failure")
    for name in ("serve", "worker", "scheduler"):
        assert services[name]["init"] is True  # PID 1 reaps work horses, forwards SIGTERM
    assert services["worker"]["stop_grace_period"] not in ("0s", "1s")


def test_secrets_come_from_the_environment_only() -> None:
    for name, service in _compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"SECRET|TOKEN|PASSWORD|KEY", key):
                assert re.fullmatch(r"\$\{\w+(:[?-][^}]*)?\}", str(value)), f"{name}: {key}"
    serve = _compose()["services"]["serve"]["environment"]
    assert serve["TASUKI_WEBHOOK_SECRET"].startswith("${TASUKI_WEBHOOK_SECRET:?")
    assert ":${POSTGRES_PASSWORD:?" in serve["TASUKI_DATABASE_URL"]


def test_units_read_the_environment_file_and_let_jobs_finish() -> None:
    units = _units()
    assert {"tasuki-serve.service", "tasuki-worker@.service", "tasuki-scheduler.service"} <= set(
        units
    )
    for unit, keys in units.items():
        assert keys["EnvironmentFile"] == ["/etc/tasuki/tasuki.env"], unit
        assert keys["Restart"][0] in ("always", "on-failure"), unit
        assert keys.get("User") not in (None, ["root"]), unit
    for unit in ("tasuki-worker@.service", "tasuki-up.service"):
        assert units[unit]["KillMode"] == ["mixed"]  # SIGTERM to tasuki, not to the work horse
        assert int(units[unit]["TimeoutStopSec"][0]) >= 60
