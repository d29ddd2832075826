"""`smartsync preflight`: throwaway objects that prove, in the school's own tenant, each call a sync makes.

`checks` runs the checks and cleans up after them; `results` keeps what they (or a run that met the
same refusal) learned in `preflight.json`, which `plan` and `run` follow.
"""
