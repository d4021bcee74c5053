"""The public operators, one module each: the operator, its value variant and its
preparation. What they compute and how each derives from pushforward and pullback is in
``diffinterface._derived``; the prepared call in ``diffinterface._preparation``."""
