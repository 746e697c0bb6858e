"""Models built from more than one of the seam's extensions (flows, learned priors)."""
import numpy as np
import pytest

from numpyvae.errors import InputError
from numpyvae.vae import VAE


@pytest.mark.parametrize("prior", [{"name": "mixture", "components": 3}, {"name": "vampprior", "components": 2}])
def test_a_flowed_posterior_with_a_learned_prior_is_refused_by_name(prior):
    with pytest.raises(InputError, match="flow_steps, prior"):
        VAE(16, hidden=(8,), z_dim=2, flow_steps=2, prior=prior)


def test_a_flow_refuses_the_closed_form_and_a_learned_prior_refuses_analytic():
    x = np.random.default_rng(0).random((4, 16)).astype(np.float32)
    flow = VAE(16, hidden=(8,), z_dim=2, flow_steps=2)
    with pytest.raises(InputError, match="estimator: 'analytic'"):
        flow.loss_and_grads(x, rng=np.random.default_rng(1), estimator="analytic")
    mix = VAE(16, hidden=(8,), z_dim=2, prior={"name": "mixture", "components": 3})
    with pytest.raises(InputError, match="closed-form KL"):
        mix.loss_and_grads(x, rng=np.random.default_rng(1), estimator="analytic")
    for model in (flow, mix):
        loss, _, est = model.loss_and_grads(x, rng=np.random.default_rng(1), estimator="mc", return_estimate=True)
        assert np.isfinite(loss) and est.elbo.shape == (4,)
