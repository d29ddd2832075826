"""Builds a simulated tenant and its Graph API for the simulator's tests, and sends requests to it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from smartsync.simulator.api import GraphApi
from smartsync.simulator.clock import Clock
from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.tenant import TenantState

BASE_URL = "https://graph.simulator.invalid"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
ALL_ROLES = frozenset(
    {
        "User.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
        "AdministrativeUnit.ReadWrite.All",
        "EduRoster.ReadWrite.All",
        "Team.Create",
        "TeamSettings.ReadWrite.All",
        "TeamMember.ReadWrite.All",
        "Application.Read.All",
    }
)


def seed(users: int = 5) -> dict[str, Any]:
    return {
        "tenant_id": "7d3a5f0e-0000-4000-8000-000000000001",
        "app": {"client_id": CLIENT_ID, "client_secret": "not-a-real-secret", "roles": sorted(ALL_ROLES)},
        "users": [
            {
                "userPrincipalName": f"user{i}@school.example",
                "mail": f"user{i}@school.example",
                "displayName": f"User {i}",
                "employeeId": f"E{i:04d}",
            }
            for i in range(users)
        ],
    }


@dataclass
class Tenant:
    """One simulated tenant with a caller holding `roles`."""

    api: GraphApi
    state: TenantState
    clock: Clock
    roles: frozenset[str] = ALL_ROLES

    @property
    def user_ids(self) -> list[str]:
        return list(self.state.users)

    def call(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        roles: frozenset[str] | None = None,
    ) -> SimResponse:
        """Send `method url` (a path like "/v1.0/groups?$top=2" or an absolute nextLink)."""
        if url.startswith(BASE_URL):
            url = url[len(BASE_URL) :]
        parts = urlsplit(url)
        request = SimRequest(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=b"" if body is None else json.dumps(body).encode("utf-8"),
            raw_query=parts.query,
        )
        principal = Principal(app_id=CLIENT_ID, roles=self.roles if roles is None else roles)
        return self.api.handle(request, principal)

    def ok(self, method: str, url: str, body: Any = None, **kwargs: Any) -> Any:
        """Call and require a 2xx answer; returns the JSON body (None when empty)."""
        response = self.call(method, url, body, **kwargs)
        assert 200 <= response.status < 300, (response.status, response.body)
        return response.json()

    def create_group(self, nickname: str, *, unified: bool = True, owners: int = 1, members: int = 0) -> str:
        users = self.user_ids
        body: dict[str, Any] = {
            "displayName": nickname,
            "mailNickname": nickname,
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [],
        }
        if owners:
            body["owners@odata.bind"] = [ref(u) for u in users[:owners]]
        if members:
            body["members@odata.bind"] = [ref(u) for u in users[:members]]
        created = self.ok("POST", "/v1.0/groups", body)
        group_id: str = created["id"]
        return group_id


def ref(object_id: str) -> str:
    return f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"


def make_tenant(
    users: int = 5,
    *,
    replication_delay: float = 0.0,
    team_provisioning_time: float = 5.0,
    seed_data: dict[str, Any] | None = None,
) -> Tenant:
    state = TenantState.from_seed(seed(users) if seed_data is None else seed_data)
    clock = Clock(start=1_750_000_000.0, real_time=lambda: 0.0)  # frozen unless a test advances it
    api = GraphApi(
        state,
        clock,
        base_url=BASE_URL,
        replication_delay=replication_delay,
        team_provisioning_time=team_provisioning_time,
    )
    return Tenant(api, state, clock)


def error_of(response: SimResponse) -> tuple[int, str, str]:
    """(status, code, message) of a Graph error response, checking the envelope on the way."""
    body = response.json()
    error = body["error"]
    assert set(error["innerError"]) >= {"request-id", "date", "client-request-id"}
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    return response.status, error["code"], error["message"]
