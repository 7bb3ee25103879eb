"""environment.yml, pyproject.toml and constraints.txt pin the same versions."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip().lstrip("- ").strip())
        if match:
            found[_norm(match.group(1))] = match.group(2)
    return found


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    unpinned = [d for d in lines if "==" not in d]
    assert not unpinned, f"dependencies without an exact pin in pyproject.toml: {unpinned}"
    return _pins(lines)


def environment_pins() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    return _pins(line for line in lines if "==" in line)


def test_environment_yml_pins_what_pyproject_pins():
    assert environment_pins() == pyproject_pins()


def test_constraints_agree_with_pyproject():
    lock = _pins((ROOT / "constraints.txt").read_text().splitlines())
    mismatched = {n: (v, lock.get(n)) for n, v in pyproject_pins().items() if lock.get(n) != v}
    assert not mismatched, f"pyproject pin vs constraints.txt: {mismatched}; run `make lock`"


def test_no_tensorflow_cpu_beside_tensorflow():
    pins = pyproject_pins()
    assert "tensorflow" in pins and "tensorflow-cpu" not in pins


def test_environment_yml_python_is_the_supported_one():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
