"""Templates copied by ``fairaudit new-plugin`` (shipped as package data)."""

from __future__ import annotations

from pathlib import Path

from fairaudit.errors import FairAuditError

HERE = Path(__file__).parent
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "plugin.py.tmpl": "{package}/plugin.py",
    "debiaser.py.tmpl": "{package}/debiaser.py",
    "test_conformance.py.tmpl": "tests/test_conformance.py",
}


def render_scaffold(name: str, kind: str, directory: Path) -> Path:
    """Write the package for plugin ``name`` under ``directory``; refuses to overwrite."""
    dist = f"fairaudit-{name.replace('_', '-')}"
    package = f"fairaudit_{name}"
    values = {
        "name": name, "dist": dist, "package": package,
        "class_name": "".join(part.capitalize() for part in name.split("_")) + "Debiaser",
        "title": name.replace("_", " ").capitalize() + " debiaser",
    }
    target = Path(directory) / dist
    if target.exists():
        raise FairAuditError(f"{target} already exists; choose another name or folder")
    for template, dest in LAYOUT.items():
        text = (HERE / kind / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        out = target / dest.format(package=package)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    (target / package / "__init__.py").write_text(f'"""{values["title"]} for fairaudit."""\n')
    return target
