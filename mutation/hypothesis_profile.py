"""pytest plugin for mutation runs: a hypothesis profile "mutation" with few examples.

Loaded with ``-p mutation.hypothesis_profile`` (or imported by the fork server
before it forks), so that tests/conftest.py can select it through
NUMPYVAE_HYPOTHESIS=mutation.  Same derandomized examples every run; fewer of
them, because every mutant reruns the tests.
"""
from hypothesis import HealthCheck, Phase, settings

# No shrinking: a mutant is killed by the first failing example; shrinking it to the
# simplest one (hundreds of reruns) would only cost time.  No example database either.
settings.register_profile("mutation", deadline=None, max_examples=5, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate],
                          suppress_health_check=list(HealthCheck))
