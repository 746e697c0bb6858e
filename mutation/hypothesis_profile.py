"""pytest plugin for mutation runs: a hypothesis profile "mutation" with few examples.

Loaded with ``-p mutation.hypothesis_profile`` (or imported by the fork server
before it forks), so that tests/conftest.py can select it through
NUMPYVAE_HYPOTHESIS=mutation.  Same derandomized examples every run; fewer of
them, because every mutant reruns the tests.
"""
from hypothesis import HealthCheck, settings

settings.register_profile("mutation", deadline=None, max_examples=5, derandomize=True,
                          suppress_health_check=list(HealthCheck))
