"""Templates copied by ``fairaudit new-plugin`` (shipped as package data).

``common/`` holds the files every kind shares (pyproject with the entry point, the hook
module, the conformance test); ``<kind>/`` holds the class template and the README, and may
override a common file by using the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fairaudit.errors import FairAuditError

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Kind:
    """One scaffoldable plugin family."""

    family: str
    module: str
    suffix: str


#: ``--kind`` values: the registry family, the module the class lives in, the class-name suffix.
KINDS: dict[str, Kind] = {
    "debiaser": Kind("debiasers", "debiaser", "Debiaser"),
    "metric": Kind("metrics", "metric", "Metric"),
    "generator": Kind("generators", "generator", "Generator"),
    "model": Kind("models", "model", "Model"),
    "dataset": Kind("datasets", "dataset", "Dataset"),
}

#: template file -> path in the generated package (``{package}``/``{module}`` filled in).
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "plugin.py.tmpl": "{package}/plugin.py",
    "{module}.py.tmpl": "{package}/{module}.py",
    "test_conformance.py.tmpl": "tests/test_conformance.py",
}


def _template(kind: str, name: str) -> str:
    for folder in (HERE / kind, HERE / "common"):
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8")
    raise FairAuditError(f"scaffold template {name!r} for kind {kind!r} is missing (broken install?)")


def render_scaffold(name: str, kind: str, directory: Path) -> Path:
    """Write the package for plugin ``name`` of ``kind`` under ``directory``; refuses to overwrite."""
    if kind not in KINDS:
        raise FairAuditError(f"--kind {kind!r} is not supported; choose one of {', '.join(KINDS)}")
    spec = KINDS[kind]
    dist = f"fairaudit-{name.replace('_', '-')}"
    package = f"fairaudit_{name}"
    values = {
        "name": name, "dist": dist, "package": package, "kind": kind,
        "family": spec.family, "module": spec.module,
        "class_name": "".join(part.capitalize() for part in name.split("_")) + spec.suffix,
        "title": f"{name.replace('_', ' ').capitalize()} {kind}",
    }
    target = Path(directory) / dist
    if target.exists():
        raise FairAuditError(f"{target} already exists; choose another name or folder")
    for template, dest in LAYOUT.items():
        text = _template(kind, template.format(module=spec.module))
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        out = target / dest.format(package=package, module=spec.module)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    (target / package / "__init__.py").write_text(f'"""{values["title"]} for fairaudit."""\n', encoding="utf-8")
    return target
