"""verigrad.nn: a small neural-network library written from scratch in NumPy.

Every layer follows one contract: ``forward(x, training=True) -> y`` caches what backward needs;
``backward(dy) -> dx`` fills ``grads`` under the keys of ``params`` (overwriting, never
accumulating). Losses follow ``forward(pred, y) -> float`` and ``backward(pred, y) -> dL/dpred``.
See docs/architecture.md for the contracts the rest of verigrad builds on.
"""

from .activations import (
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
from .base import Layer
from .init import INITIALIZERS, get_initializer, initialize
from .layers import Dense, FullyConnected
from .losses import LOSSES, BCELoss, BCEWithLogitsLoss, CrossEntropy, CrossEntropyLoss, Loss, MSELoss, log_softmax
from .network import NeuralNetwork, Sequential
from .optim import SGD, Adam, Optimizer
from .serialization import load_model, save_model

__all__ = [
    "Layer",
    "Dense",
    "FullyConnected",
    "Activation",
    "Identity",
    "Sigmoid",
    "Tanh",
    "TanH",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "SoftMax",
    "ACTIVATIONS",
    "get_activation",
    "sigmoid",
    "softmax",
    "log_softmax",
    "INITIALIZERS",
    "get_initializer",
    "initialize",
    "Loss",
    "MSELoss",
    "CrossEntropyLoss",
    "CrossEntropy",
    "BCELoss",
    "BCEWithLogitsLoss",
    "LOSSES",
    "NeuralNetwork",
    "Sequential",
    "Optimizer",
    "SGD",
    "Adam",
    "save_model",
    "load_model",
]
