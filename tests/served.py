"""The config section that points smartsync at a simulated tenant served over HTTPS (shared by tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smartsync.demo import DEMO_CLIENT, DEMO_TENANT


def served_tenant_section(base_url: str, ca_cert: Path) -> dict[str, Any]:
    """`tenant:` for the demo app of a served simulator; the secret comes from the environment."""
    return {
        "tenant_id": DEMO_TENANT,
        "client_id": DEMO_CLIENT,
        "client_secret": "${SMARTSYNC_CLIENT_SECRET}",
        "authority_host": base_url,
        "graph_endpoint": base_url,
        "ca_bundle": str(ca_cert),
    }
