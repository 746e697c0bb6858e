"""Discrete latents: a VAE with N categorical latents of K classes and its gradient estimators.

Modules: ``categorical`` (softmax, Gumbel noise, Gumbel-max, Gumbel-softmax and its backward, the score,
the KL to the uniform prior), ``posterior`` (the posterior and prior objects of the seam), ``estimators``
(score_ma, score_loo, gumbel_softmax, straight_through, exact), ``model`` (CategoricalVAE), ``pixels``
(a categorical likelihood over grey levels, bits per dimension), ``vq`` and ``vqvae`` (vector quantization,
the VQ-VAE).

derivations/15-discrete-latents.md derives every formula; lecture 10
(notebooks/10-discrete-latents.ipynb) compares the estimators with the exact
gradient.
"""
from .estimators import ESTIMATORS, MovingAverageBaseline
from .model import CategoricalVAE
from .posterior import Categorical, UniformCategorical
from .vqvae import VQVAE

__all__ = ["CategoricalVAE", "Categorical", "UniformCategorical", "MovingAverageBaseline", "ESTIMATORS", "VQVAE"]
