"""``verigrad.losses``: the same objects as :mod:`verigrad.nn.losses`.

For code written against ``src/losses.py`` (seed 000) or ``neural_networks/losses.py`` (seed 002:
``from neural_networks.losses import CrossEntropy``), translated as ``from verigrad.losses import ...``.
"""

from verigrad.nn.losses import (
    LOSSES,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropy,
    CrossEntropyLoss,
    Loss,
    MSELoss,
    log_softmax,
)

__all__ = ["Loss", "MSELoss", "CrossEntropyLoss", "CrossEntropy", "BCELoss", "BCEWithLogitsLoss", "log_softmax",
           "LOSSES"]
