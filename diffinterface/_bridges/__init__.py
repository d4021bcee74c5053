"""Boundaries of :class:`~diffinterface.DifferentiateWith`, one module per outer framework.

Each module has ``call(inner, x, args)``: f's value as the outer framework's array, with
the outer framework's differentiation routed to ``inner`` (an ``InnerCalls``). A module is
imported only when g is first called with that framework's arrays.
"""
