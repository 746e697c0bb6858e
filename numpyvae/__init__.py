"""numpyvae: a Variational Autoencoder in NumPy with hand-derived, numerically checked gradients."""
from .errors import CheckpointError, DataError, FileError, InputError, NumpyVAEError, RunExistsError, TrainingError
from .vae import VAE

__version__ = "0.3.0"
__all__ = ["VAE", "NumpyVAEError", "InputError", "DataError", "CheckpointError", "TrainingError", "FileError",
           "RunExistsError", "__version__"]
