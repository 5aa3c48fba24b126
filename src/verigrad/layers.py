"""``verigrad.layers``: the same objects as :mod:`verigrad.nn.layers`.

For code written against a project layout ``src/layers.py`` (seed notebook 000:
``from src.layers import Dense, ReLU, Tanh``), translated as ``from verigrad.layers import ...``.
"""

from verigrad.nn.layers import (
    ACTIVATIONS,
    Dense,
    FullyConnected,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    SoftMax,
    Tanh,
    TanH,
)

__all__ = ["Layer", "Dense", "FullyConnected", "Identity", "Sigmoid", "Tanh", "TanH", "ReLU", "LeakyReLU",
           "Softmax", "SoftMax", "ACTIVATIONS"]
