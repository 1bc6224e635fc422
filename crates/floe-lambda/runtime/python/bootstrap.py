"""Starts floe's Python runtime; the code is in _floe_lambda_runtime.py, so
that its bytecode is cached instead of compiled on every cold start."""
import _floe_lambda_runtime

_floe_lambda_runtime.run()
