"""The seams between the packages: the runs-table schema, count and FLOP conventions, JSON files.

Every layer may import this package (`scaling`, `sweeps`, `analysis` and the face above them); it
imports nothing but the standard library, so importing it never drags torch, Ray or pandas along.
A convention that two layers share is defined here once:

    runs_table    the columns of the trials / curves / points tables and the statuses
    conventions   which N (total, non-embedding), which FLOP count, D <-> C under C = 6 N D
    counts        the one count formatter (2.79B, 124M, 300k) and the one parser ("20M", "1.5B", "3e18")
    jsonio        JSON-able values, atomic writes, reading a JSON object with a one-line error
    errors        `UserError`, the base of every error a user can cause and fix
"""
