"""``verigrad.activations``: the same objects as :mod:`verigrad.nn.activations`.

For code written against ``neural_networks/activations.py`` (seed 002:
``from neural_networks.activations import Identity, Sigmoid, TanH, ReLU, SoftMax``).
"""

from verigrad.nn.activations import (
    ACTIVATIONS,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    SoftMax,
    Tanh,
    TanH,
    get_activation,
    sigmoid,
    softmax,
)

__all__ = ["Activation", "Identity", "Sigmoid", "Tanh", "TanH", "ReLU", "LeakyReLU", "Softmax", "SoftMax",
           "ACTIVATIONS", "get_activation", "sigmoid", "softmax"]
