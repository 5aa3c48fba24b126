"""verigrad: a NumPy neural-network library whose every backward pass is verified,
and a gradient checker that verifies any backward pass and says what is wrong."""

__version__ = "0.1.0"
