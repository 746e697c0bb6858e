import os

from hypothesis import HealthCheck, settings

# Gradient checks are slow per example: no deadline, modest example counts.
# derandomized: a newcomer's `pytest` runs the same examples every time (green ten times in a row);
# NUMPYVAE_HYPOTHESIS=stress explores new ones.
settings.register_profile("default", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
# many more examples, for hunting rare failures: NUMPYVAE_HYPOTHESIS=stress pytest
settings.register_profile("stress", deadline=None, max_examples=400,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("NUMPYVAE_HYPOTHESIS") or ("ci" if os.environ.get("CI") else "default"))
