"""``verigrad.network``: the same objects as :mod:`verigrad.nn.network`.

For code written against ``src/network.py`` (seed 000: ``from src.network import NeuralNetwork``).
"""

from verigrad.nn.network import NeuralNetwork, Sequential

__all__ = ["NeuralNetwork", "Sequential"]
