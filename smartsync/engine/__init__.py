"""The sync engine: roster and config → desired state; Entra → actual state; diff → plan; safety; apply.

Pure values in the middle (`desired`, `state`, `plan`, `safety`), Graph through the client at the edges
(`actual` reads, `apply/` writes), and `run` wiring one run together. No click, no rich.
"""
