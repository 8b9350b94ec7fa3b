"""Durable functions: the launch gate and the ordered drain."""
