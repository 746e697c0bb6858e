"""Discrete latents: a VAE with N categorical latents of K classes and its gradient estimators.

derivations/15-discrete-latents.md derives every formula; lecture 10
(notebooks/10-discrete-latents.ipynb) compares the estimators with the exact
gradient.
"""
from .estimators import ESTIMATORS, MovingAverageBaseline
from .model import CategoricalVAE
from .posterior import Categorical, UniformCategorical

__all__ = ["CategoricalVAE", "Categorical", "UniformCategorical", "MovingAverageBaseline", "ESTIMATORS"]
