"""Named architectures: each builds the encoder's and the decoder's specification (numpyvae/network.py).

The VAE looks the name up here and builds both networks from what comes back;
it never branches on the name.  Every builder gets the same arguments:

    x_dim        pixels per image D (the data arrive as rows of D numbers)
    hidden       sizes of the fully connected hidden layers
    n_latent_out numbers per example the encoder produces (2Z: mu and logvar)
    z_dim        Z, the decoder's input
    out_dim      numbers per example the decoder produces (D logits, or 2D for a Gaussian)
    activation   the nonlinearity between layers
    image_shape  (C, H, W) of one image, or None
"""
from .errors import InputError
from .network import mlp_spec

# the convolutional stack: (channels, kernel, stride, padding) of each stride-2 convolution
CONV_LAYERS = ((32, 4, 2, 1), (64, 4, 2, 1))


def mlp(x_dim, hidden, n_latent_out, z_dim, out_dim, activation, image_shape):
    """x -> hidden -> [mu | logvar];  z -> reversed hidden -> output (Kingma & Welling's MLP)."""
    return mlp_spec([x_dim, *hidden, n_latent_out], activation), mlp_spec([z_dim, *hidden[::-1], out_dim], activation)


def conv_image_shape(x_dim, image_shape):
    """(C, H, W) for the conv architecture: given, or (1, s, s) when x_dim = s^2; H and W divisible by 4."""
    if image_shape is None:
        side = int(round(x_dim ** 0.5))
        if side * side != x_dim:
            raise InputError(f"image_shape: x_dim = {x_dim} is not a square image; give image_shape (C, H, W)")
        image_shape = (1, side, side)
    C, H, W = image_shape
    if C * H * W != x_dim:
        raise InputError(f"image_shape: {tuple(image_shape)} holds {C * H * W} numbers, expected x_dim = {x_dim}")
    step = 2 ** len(CONV_LAYERS)
    if H % step or W % step:
        raise InputError(f"image_shape: the conv architecture halves the image {len(CONV_LAYERS)} times, so "
                         f"height and width must be multiples of {step}; got {H}x{W}")
    return C, H, W


def conv(x_dim, hidden, n_latent_out, z_dim, out_dim, activation, image_shape):
    """A small DCGAN-style convolutional VAE for images such as 28x28 MNIST.

    The layout of the Keras VAE example (two stride-2 convolutions with 32 and
    64 filters, mirrored by stride-2 transposed convolutions in the decoder),
    with 4x4 kernels and padding 1 as in the common PyTorch ports, so that every
    stride-2 layer halves or doubles the image exactly (28 -> 14 -> 7 -> 14 -> 28):

        encoder: image (C,H,W) -> conv 32 -> conv 64 -> flatten -> hidden -> [mu | logvar]
        decoder: z -> hidden -> (64, H/4, W/4) -> conv^T 32 -> conv^T C_out -> flatten
    The decoder's last layer has C channels of logits (Bernoulli) or 2C
    (Gaussian: C of means, then C of log-variances), flattened to out_dim.
    """
    C, H, W = conv_image_shape(x_dim, image_shape)
    c_out = out_dim // (H * W)
    encoder = [{"layer": "reshape", "shape": [C, H, W]}]
    for channels, kernel, stride, padding in CONV_LAYERS:
        encoder += [{"layer": "conv2d", "out_channels": channels, "kernel_size": kernel, "stride": stride,
                     "padding": padding}, {"layer": activation}]
    encoder += [{"layer": "flatten"}]
    for units in hidden:
        encoder += [{"layer": "linear", "units": units}, {"layer": activation}]
    encoder += [{"layer": "linear", "units": n_latent_out}]

    step = 2 ** len(CONV_LAYERS)
    top = CONV_LAYERS[-1][0]
    decoder = []
    for units in hidden[::-1]:
        decoder += [{"layer": "linear", "units": units}, {"layer": activation}]
    decoder += [{"layer": "linear", "units": top * (H // step) * (W // step)}, {"layer": activation},
                {"layer": "reshape", "shape": [top, H // step, W // step]}]
    channels_out = [c for c, *_ in CONV_LAYERS[::-1][1:]] + [c_out]
    for i, ((_, kernel, stride, padding), channels) in enumerate(zip(CONV_LAYERS[::-1], channels_out)):
        decoder += [{"layer": "conv_transpose2d", "out_channels": channels, "kernel_size": kernel,
                     "stride": stride, "padding": padding}]
        if i < len(CONV_LAYERS) - 1:
            decoder += [{"layer": activation}]
    decoder += [{"layer": "flatten"}]
    return encoder, decoder


ARCHITECTURES = {"mlp": mlp, "conv": conv}
