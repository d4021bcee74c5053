"""Backend adapters, one module per framework, each imported only when its backend is used.

The name → ``"module:Class"`` table lives in ``diffinterface._backend_types``.
"""
