"""Measurements kept apart from the product (the wheel) and the simulator: run with ``python -m bench.<name>``."""
