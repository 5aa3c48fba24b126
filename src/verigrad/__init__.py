"""verigrad: a NumPy neural-network library whose every backward pass is verified,
and a gradient checker that verifies any backward pass and says what is wrong.

The main names are re-exported here; each lives in its own place:

- :mod:`verigrad.nn` — layers, activations, losses, the network container, optimizers, save/load;
- :mod:`verigrad.data` — mini-batches and synthetic data sets;
- :mod:`verigrad.train` — ``fit``, ``evaluate``, ``predict``, ``accuracy`` and ``History``;
- :mod:`verigrad.check` — the gradient checker (depends on NumPy only, never on ``verigrad.nn``);
- :mod:`verigrad.testing` — pytest helpers; :mod:`verigrad.plots` and :mod:`verigrad.torch` are optional extras.
"""

from verigrad.check import (
    GradientCheckError,
    GradientReport,
    LayersReport,
    ModelReport,
    check_gradients,
    check_layers,
    check_params,
    gradient_check,
)
from verigrad.data import DataLoader, make_blobs, make_moons, make_quadratic, make_spirals
from verigrad.nn import (
    SGD,
    Adam,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    FullyConnected,
    Identity,
    LeakyReLU,
    MSELoss,
    NeuralNetwork,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SoftMax,
    Tanh,
    TanH,
)
from verigrad.testing import assert_gradients, assert_model_gradients
from verigrad.train import History, accuracy, evaluate, fit, predict

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # network
    "Dense",
    "FullyConnected",
    "Identity",
    "Sigmoid",
    "Tanh",
    "TanH",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "SoftMax",
    "MSELoss",
    "CrossEntropyLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "NeuralNetwork",
    "Sequential",
    "SGD",
    "Adam",
    # data and training
    "DataLoader",
    "make_blobs",
    "make_moons",
    "make_quadratic",
    "make_spirals",
    "fit",
    "evaluate",
    "predict",
    "accuracy",
    "History",
    # the checker
    "check_gradients",
    "check_params",
    "gradient_check",
    "check_layers",
    "GradientReport",
    "ModelReport",
    "LayersReport",
    "GradientCheckError",
    "assert_gradients",
    "assert_model_gradients",
]
