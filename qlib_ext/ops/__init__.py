"""Minute-factor operators registered with Qlib through ``qlib_ext.init`` (``custom_ops``)."""

CUSTOM_OPS: list = []
