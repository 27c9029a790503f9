"""The package layout: one classifier factory (by name or config, onto a device) used by every
tool, one method registry, the Scorer protocol, and an import graph without cycles."""

import ast
import inspect
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_cfg
from omegaconf import OmegaConf

import genviz
from genviz.classifiers import Classifier, build_classifier
from genviz.engine import render
from genviz.methods import METHODS, RENDER_KEYS, options_node, with_steps
from genviz.objectives import BatchObjective, Scorer
from genviz.targets import parse_target

PACKAGE = Path(genviz.__file__).resolve().parent


# -- the classifier factory ----------------------------------------------------------------------
def test_one_factory_builds_from_a_name_or_a_config_node():
    by_name = build_classifier("tiny", num_classes=7)
    node = OmegaConf.create(
        {"_target_": "genviz.classifiers.build_classifier", "name": "tiny", "num_classes": 7}
    )
    by_cfg = build_classifier(node, "cpu")
    assert isinstance(by_name, Classifier) and isinstance(by_cfg, Classifier)
    assert by_name.num_classes == by_cfg.num_classes == 7
    for a, b in zip(by_name.state_dict().values(), by_cfg.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same seed, same weights
    with pytest.raises(ValueError, match="Did you mean tiny"):
        build_classifier("tiyn")


def test_a_config_builder_error_surfaces_as_itself():
    node = OmegaConf.create(
        {"_target_": "genviz.classifiers.build_classifier", "name": "tiny", "head": "sigmoid"}
    )
    with pytest.raises(ValueError, match="unknown head 'sigmoid'"):
        build_classifier(node)


class _Stop(Exception):
    pass


@pytest.fixture
def fake_cuda(monkeypatch):
    """device=cuda resolves (one fake GPU) and Classifier.to records where it was sent."""
    moved = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    def to(self, *args, **kwargs):
        moved.append(torch.device(args[0] if args else kwargs["device"]))
        return self

    monkeypatch.setattr(Classifier, "to", to)
    return moved


def test_visualize_moves_the_classifier_to_the_configured_device(fake_cuda, monkeypatch):
    import genviz.app as app

    def stop(*a, **k):
        raise _Stop

    monkeypatch.setattr(app, "parse_targets", stop)
    with pytest.raises(_Stop):
        app.generate(compose_cfg("visualize", [*TINY, "device=cuda", "target=class:1"]))
    assert fake_cuda == [torch.device("cuda")]


def test_atlas_moves_the_classifier_to_the_configured_device(fake_cuda, tmp_path, monkeypatch):
    import genviz.atlas as atlas

    def stop(*a, **k):
        raise _Stop

    monkeypatch.setattr(atlas, "atlas_items", stop)  # the first use of the built classifier
    cfg = compose_cfg("atlas", ["classifier=tiny", "generator=tiny", f"out_dir={tmp_path}", "device=cuda"])
    with pytest.raises(_Stop):
        atlas.run_atlas(cfg)
    assert fake_cuda == [torch.device("cuda")]


def test_audit_moves_the_classifier_to_the_configured_device(fake_cuda, tmp_path, monkeypatch):
    import genviz.audit as audit

    def stop(*a, **k):
        raise _Stop

    monkeypatch.setattr(audit, "class_index", stop)  # the first use of the built classifier
    cfg = compose_cfg(
        "audit", ["classifier=tiny", "generator=tiny", "classes=[1,2]", f"out_dir={tmp_path}", "device=cuda"]
    )
    with pytest.raises(_Stop):
        audit.run_audit(cfg)
    assert fake_cuda == [torch.device("cuda")]


# -- methods -------------------------------------------------------------------------------------
def test_every_method_is_registered_and_the_render_keys_are_the_engines():
    assert {"generator_prior", "pixel", "pixel_regularized", "multiscale", "tv_lp", "fourier"} <= set(METHODS)
    assert {"deepdream", "class_dream", "inversion", "style"} <= set(METHODS)
    params = inspect.signature(render).parameters
    assert set(RENDER_KEYS) <= set(params)
    assert {
        "steps",
        "final",
        "snapshot_every",
        "median_of",
        "patience",
        "min_delta",
        "check_every",
        "clamp",
        "init_candidates",
    } == set(RENDER_KEYS)


def test_options_node_and_with_steps():
    prior = compose_cfg("visualize", TINY)
    pixel = compose_cfg("visualize", [*TINY, "method=fourier"])
    assert options_node(prior) == "generator" and options_node(pixel) == "method"
    assert with_steps(prior, 7).generator.steps == 7 and prior.generator.steps != 7
    assert with_steps(pixel, 9).method.steps == 9
    assert with_steps(prior, None) is prior


def test_the_objectives_are_scorers():
    from genviz.methods.scorers import Inversion, LayerL2

    clf = build_classifier("tiny")
    bo = BatchObjective([parse_target("class:1", clf)], lam=0.0)
    assert isinstance(bo, Scorer)
    assert isinstance(LayerL2("relu2", 2), Scorer)
    assert isinstance(Inversion(torch.ones(1, 4), "relu2", 2), Scorer)
    assert not isinstance(object(), Scorer)


# -- the import graph ----------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported(path: Path, name: str, modules: set[str], nodes) -> set[str]:
    """The genviz modules the import statements among ``nodes`` of ``path`` name (a name
    imported from a package counts as its submodule when there is one)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in modules and m != name}


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The genviz modules ``path`` imports at module level (not inside functions)."""
    return _imported(path, name, modules, ast.parse(path.read_text()).body)


def test_the_package_imports_have_no_cycle():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {m: _imports(p, m, modules) for m, p in files.items()}
    # a package's __init__ runs before its submodules: importing genviz.x.y imports genviz.x
    for m in modules:
        parent = m.rsplit(".", 1)[0]
        if "." in m and parent in modules and parent != "genviz":
            graph[m] = graph[m] - {parent}  # a submodule naming its own package re-exports nothing
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, m, n]))
            if not state.get(n):
                visit(n, [*stack, m])
        state[m] = 2

    for m in sorted(graph):
        if not state.get(m):
            visit(m, [])
    assert "genviz.methods.baselines" in graph and "genviz.classifiers.wrapper" in graph


# -- docs/architecture.md ------------------------------------------------------------------------
def _uses(path: Path, modules: set[str]) -> set[str]:
    """The genviz modules ``path`` imports (anywhere in it), named as docs/architecture.md names
    them: a sibling inside the same package by its short name, another package's module by the
    package (``classifiers``), except an explicit ``atlas.*`` / ``dae.*`` submodule."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    own = name if path.name == "__init__.py" and name != "genviz" else package
    out = set()
    for t in _imported(path, name, modules, ast.walk(ast.parse(path.read_text()))) - {"genviz"}:
        parts = t.split(".")
        if own != "genviz" and t.startswith(own + "."):
            out.add(t[len(own) + 1 :])
        elif len(parts) >= 3 and parts[1] in ("atlas", "dae"):
            out.add(".".join(parts[1:]))
        else:
            out.add(parts[1])
    return out


def test_the_architecture_page_lists_what_each_module_uses():
    import re

    doc = PACKAGE.parent / "docs" / "architecture.md"
    rows = [
        line for line in doc.read_text().splitlines() if line.startswith("| `") and "(repo root)" not in line
    ]
    assert len(rows) > 30
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    listed = set()
    for row in rows:
        cells = row.split(" | ")
        files, last_dir = [], None
        for tok in re.findall(r"`([^`]+\.py)`", cells[0]):
            p = tok if tok.startswith("genviz/") else ("genviz/" + tok if "/" in tok else f"{last_dir}/{tok}")
            last_dir = p.rsplit("/", 1)[0]
            files.append(PACKAGE.parent / p)
        own = {f.stem for f in files}
        expected = set().union(*(_uses(f, modules) for f in files)) - own
        said = {u.strip() for u in cells[-1].rstrip(" |").split(",")} - {"—"}
        assert said == expected, (
            f"{cells[0]}: the page says {sorted(said)}, the code imports {sorted(expected)}"
        )
        listed |= {_module_name(f) for f in files}
    missing = {_module_name(p) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"} - listed
    assert not missing, f"modules without a row on docs/architecture.md: {sorted(missing)}"
