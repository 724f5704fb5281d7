"""The core package's front door: its public names load lazily, and the two classifiers the
app can use (in process and served) meet the interface the pages are written against."""

import inspect
import subprocess
import sys

import pytest

import core
from core.classifier import Classifier, Explainer, FractureClassifier
from core.config import PROJECT_DIR
from core.heatmaps import HeatmapExplainer
from core.remote import RemoteClassifier, RemoteExplainer


def test_importing_a_light_module_of_core_loads_neither_the_classifier_nor_numpy():
    code = "import sys, core.config; print(sorted(m for m in ('numpy', 'core.classifier', 'tensorflow') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("name", core.__all__)
def test_every_public_name_of_core_resolves(name):
    assert getattr(core, name) is not None


def test_an_unknown_name_of_core_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Classifer'"):
        core.Classifer  # noqa: B018


def _parameters(function) -> list[tuple[str, object, object]]:
    return [(parameter.name, parameter.kind, parameter.default)
            for parameter in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("implementation", [FractureClassifier, RemoteClassifier])
@pytest.mark.parametrize("method", ["classify", "warm_up"])
def test_both_classifiers_take_what_the_interface_declares(implementation, method):
    declared = [(name, kind) for name, kind, _ in _parameters(getattr(Classifier, method))]
    assert [(name, kind) for name, kind, _ in _parameters(getattr(implementation, method))] == declared


@pytest.mark.parametrize("implementation", [HeatmapExplainer, RemoteExplainer])
def test_both_explainers_take_method_and_class_index_with_the_same_defaults(implementation):
    assert _parameters(implementation.explain) == _parameters(Explainer.explain)


def test_both_classifiers_offer_every_member_of_the_interface():
    members = {name for name in dir(Classifier) if not name.startswith("_")} | set(Classifier.__annotations__)
    for implementation in (FractureClassifier, RemoteClassifier):
        source = inspect.getsource(implementation)
        missing = [name for name in members if not hasattr(implementation, name) and f"self.{name} =" not in source]
        assert not missing, (implementation.__name__, missing)
