"""Cross-field checks of a spec against its plugins, made by ``validate`` and ``run`` alike before
any data are loaded: the attributes are columns the dataset is told to read, the model and the
debiasers take what the dataset gives (features or images), the split is stratified by group
columns, intersections name audited attributes, each problem at its own line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairaudit.errors import PluginNotFound, SpecIssue

if TYPE_CHECKING:
    from fairaudit.plugins import PluginSet
    from fairaudit.spec.loader import LoadedSpec


def compat_issues(loaded: LoadedSpec, plugins: PluginSet) -> list[SpecIssue]:
    """Every cross-field problem of ``loaded`` (plugin names and params already validate)."""
    spec = loaded.spec
    dataset = _class(plugins, "datasets", spec.dataset.name)
    if dataset is None:
        return []
    issues = _attribute_issues(loaded, dataset)
    modality = getattr(dataset, "modality", None)
    if modality in ("features", "images") and not getattr(dataset, "provides_scores", False):
        issues += _modality_issues(loaded, plugins, modality)
    return issues


def _issue(loaded: LoadedSpec, loc: tuple[Any, ...], msg: str) -> SpecIssue:
    from fairaudit.spec.loader import issue_at

    return issue_at(loaded, loc, msg)


def _attribute_issues(loaded: LoadedSpec, dataset: type) -> list[SpecIssue]:
    """An attribute the dataset does not read as a sensitive column (or an extra): ``run`` would
    stop at it after loading the data; a ``split.stratify`` entry that is no group column (``run``
    would ignore it without a word)."""
    from fairaudit.params import params_model

    fields = params_model(dataset).model_fields
    if "sensitive" not in fields:  # a dataset with attributes of its own (synthetic data)
        return []
    params = loaded.spec.dataset.params
    sensitive = params.get("sensitive", fields["sensitive"].default)
    extras = params.get("extras") or []
    if not isinstance(sensitive, list):
        return []
    known = [*sensitive, *(e for e in extras if isinstance(e, str))]
    name = loaded.spec.dataset.name
    issues = [_issue(loaded, ("attributes", i), f"attribute {attr!r} is not among the sensitive columns of dataset "
                     f"{name!r} ({sensitive}): add it to dataset.params.sensitive")
              for i, attr in enumerate(loaded.spec.attributes) if attr not in known]
    groups = [*sensitive, *loaded.spec.attributes]  # what a split can be stratified by
    issues += [_issue(loaded, ("split", "stratify", i), f"{attr!r} is neither an audited attribute nor a sensitive "
                      f"column of dataset {name!r} ({sorted(set(groups))}); the split would silently ignore it")
               for i, attr in enumerate(loaded.spec.split.stratify) if attr not in groups]
    return issues


def _modality_issues(loaded: LoadedSpec, plugins: PluginSet, modality: str) -> list[SpecIssue]:
    """An images-only model cannot take features (a features model takes images flattened); each
    debiaser must take the dataset's ``modality`` (its output goes to the model through a logistic
    head when the model cannot take it, so that pairing is fine)."""
    spec = loaded.spec
    issues: list[SpecIssue] = []
    model = _class(plugins, "models", spec.model.name)
    takes = set(getattr(model, "modalities", ())) if model is not None else {modality}
    if modality == "features" and modality not in takes:  # a features model flattens images: fine
        fitting = _names_taking(plugins, "models", modality)
        issues.append(_issue(loaded, ("model", "name") if _named(loaded, "model") else ("model",),
                             f"model {spec.model.name!r} takes {' or '.join(sorted(takes))}, but dataset "
                             f"{spec.dataset.name!r} gives {modality}; use a model that takes {modality}"
                             + (f" ({', '.join(fitting)})" if fitting else "")))
    for i, comp in enumerate(spec.debiasers):
        debiaser = _class(plugins, "debiasers", comp.name)
        takes = set(getattr(debiaser, "modalities", ())) if debiaser is not None else {modality}
        if modality not in takes:
            loc = ("debiasers", i, "name") if _named(loaded, "debiasers", i) else ("debiasers", i)
            issues.append(_issue(loaded, loc,
                                 f"debiaser {comp.name!r} takes {' or '.join(sorted(takes))}, but dataset "
                                 f"{spec.dataset.name!r} gives {modality}: it cannot run on this dataset"))
    return issues


def _class(plugins: PluginSet, family: str, name: str) -> type | None:
    """The plugin class, or ``None`` when unknown or a stand-in of a local file ``validate`` read
    without importing (its capabilities are then unknown: ``run`` checks them)."""
    from fairaudit.spec.plugin_scan import is_stand_in

    try:
        cls = plugins.registry(family).get(name)
    except PluginNotFound:
        return None
    return None if is_stand_in(cls) else cls


def _names_taking(plugins: PluginSet, family: str, modality: str) -> list[str]:
    registry = plugins.registry(family)
    names = []
    for name in sorted(registry.names()):
        cls = _class(plugins, family, name)
        if cls is not None and modality in getattr(cls, "modalities", ()):
            names.append(name)
    return names


def _named(loaded: LoadedSpec, *loc: Any) -> bool:
    """Whether the component at ``loc`` is written as a mapping with a ``name`` key."""
    node = loaded.tree
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(node, dict) and "name" in node


def intersection_issues(plain: Any, file: str, tree: Any) -> list[SpecIssue]:
    """Each ``intersections`` entry with fewer than two attributes, or an attribute not listed in
    ``attributes``, at the entry's (or the attribute's) own line."""
    from fairaudit.spec.loader import field_path, position

    combos, attributes = plain.get("intersections"), plain.get("attributes")
    if not isinstance(combos, list) or not isinstance(attributes, list):
        return []
    issues = []
    for i, combo in enumerate(combos):
        if not isinstance(combo, list):
            continue
        if len(combo) < 2:
            line, col = position(tree, ("intersections", i))
            issues.append(SpecIssue(file, line, col, field_path(("intersections", i)),
                                    f"an intersection lists at least two attributes (got {combo})"))
        for j, attr in enumerate(combo):
            if attr not in attributes:
                line, col = position(tree, ("intersections", i, j))
                issues.append(SpecIssue(file, line, col, field_path(("intersections", i, j)),
                                        f"{attr!r} is not listed in 'attributes' {attributes}: an intersection "
                                        "combines audited attributes"))
    return issues
