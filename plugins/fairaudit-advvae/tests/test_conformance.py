"""fairaudit's conformance kit, and registration through the installed entry point."""

from fairaudit_advvae import AdversarialVAEDebiaser

from fairaudit.plugins import load_plugins
from fairaudit.testing import parametrize_with_checks


@parametrize_with_checks([AdversarialVAEDebiaser])
def test_conformance(plugin_class, check):
    check(plugin_class)


def test_registered_through_entry_point():
    plugins = load_plugins()
    assert plugins.debiasers.get("advvae") is AdversarialVAEDebiaser
    assert plugins.debiasers.source("advvae").distribution == "fairaudit-advvae"
