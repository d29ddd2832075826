"""smartsync: keep a school's Microsoft Entra ID in step with its Realsmart roster."""

__version__ = "0.1.0"
