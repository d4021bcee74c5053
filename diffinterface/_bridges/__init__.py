"""Boundaries of :class:`~diffinterface.DifferentiateWith`, one module per outer framework.

Each module has ``call(inner, arguments)``: f's value at g's positional arguments as the
outer framework's array, with the outer framework's differentiation with respect to any of
them routed to ``inner`` (an ``InnerCalls``). A module is imported only when g is first
called with that framework's arrays.
"""
