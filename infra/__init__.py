"""The Pulumi program of the cruddur project: declarations only.

``__main__.py`` is the composition root Pulumi runs (``main: infra/`` in Pulumi.yaml); the
other modules each declare one resource group and take typed arguments, so they can also be
evaluated under ``pulumi.runtime.set_mocks`` by ``ops.plan`` and the tests.
"""
