"""Delta queries in the simulator: a first round with everything, then only what changed; id filters,
`$deltatoken=latest`, paging, removals, and expiry after seven days (410 syncStateNotFound)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_sim_support import graph_client, make_seed

from smartsync.simulator import Simulator

GROUP0 = "00000000-0000-0000-0002-000000000000"
GROUP1 = "00000000-0000-0000-0002-000000000001"
USER = [f"00000000-0000-0000-0001-{i:012d}" for i in range(5)]


def _round(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> tuple[list[Any], str]:
    """Every page of one delta round, and its delta link (relative to /v1.0)."""
    items: list[Any] = []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"].split("/v1.0", 1)[1]
        response = client.get(body["@odata.nextLink"].split("/v1.0", 1)[1])


def test_group_delta_returns_the_filtered_groups_then_only_their_changes() -> None:
    sim = Simulator(make_seed(users=5, groups=2))
    with graph_client(sim) as client:
        first, link = _round(
            client,
            "/groups/delta",
            {"$filter": f"id eq '{GROUP0}'", "$select": "displayName,mailNickname,members,owners"},
        )
        assert [g["id"] for g in first] == [GROUP0]  # Group 1 is not asked for
        assert {m["id"] for m in first[0]["members@delta"]} == set(USER[:2])
        assert first[0]["owners@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": USER[0]}]
        assert set(first[0]) == {"id", "displayName", "mailNickname", "members@delta", "owners@delta"}

        quiet, link = _round(client, link)
        assert quiet == []

        assert client.post(
            f"/groups/{GROUP0}/members/$ref",
            json={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{USER[3]}"},
        ).is_success
        assert client.delete(f"/groups/{GROUP0}/members/{USER[1]}/$ref").is_success
        assert client.patch(f"/groups/{GROUP1}", json={"displayName": "Not tracked"}).is_success
        changed, link = _round(client, link)
        assert len(changed) == 1 and changed[0]["id"] == GROUP0
        assert "owners@delta" not in changed[0]  # owners did not change
        assert changed[0]["members@delta"] == [
            {"@odata.type": "#microsoft.graph.user", "id": USER[3]},
            {"@odata.type": "#microsoft.graph.user", "id": USER[1], "@removed": {"reason": "deleted"}},
        ]

        assert client.delete(f"/groups/{GROUP0}").is_success
        gone, _ = _round(client, link)
        assert gone == [{"id": GROUP0, "@removed": {"reason": "changed"}}]


def test_latest_token_starts_tracking_from_now() -> None:
    sim = Simulator(make_seed(users=5, groups=1))
    with graph_client(sim) as client:
        nothing, link = _round(
            client, "/users/delta", {"$deltatoken": "latest", "$select": "userPrincipalName,mail"}
        )
        assert nothing == []
        assert client.post(
            f"/groups/{GROUP0}/owners/$ref",
            json={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{USER[4]}"},
        ).is_success
        still, _ = _round(client, link)
        assert still == []  # users did not change; a group's owners are not a user property
        sim.state.users[USER[2]].mail = "new@school.example"
        changed, _ = _round(client, link)
        assert changed == [
            {"id": USER[2], "userPrincipalName": "user2@school.example", "mail": "new@school.example"}
        ]


def test_a_first_round_of_many_objects_is_paged() -> None:
    sim = Simulator(make_seed(users=1500, groups=0))
    with graph_client(sim) as client:
        first = client.get("/users/delta", params={"$select": "userPrincipalName"}).json()
        assert "@odata.nextLink" in first and "@odata.deltaLink" not in first
        everyone, _ = _round(client, "/users/delta", {"$select": "userPrincipalName"})
    assert len(everyone) == 1500


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"$top": "5"}, 400),
        ({"$filter": "startswith(displayName,'x')"}, 400),
        ({"$filter": " or ".join(f"id eq '{i}'" for i in range(51))}, 400),
        ({"$select": "nonsense"}, 400),
    ],
)
def test_unsupported_delta_options_are_refused(params: dict[str, str], status: int) -> None:
    sim = Simulator(make_seed(users=1, groups=1))
    with graph_client(sim) as client:
        assert client.get("/groups/delta", params=params).status_code == status


def test_a_token_expires_after_seven_days_and_an_unknown_one_is_not_found() -> None:
    sim = Simulator(make_seed(users=1, groups=1))
    with graph_client(sim) as client:
        _, link = _round(client, "/groups/delta", {"$select": "displayName,members"})
    sim.clock.advance(6 * 24 * 3600)
    with graph_client(sim) as client:  # a new access token on the new day
        _, link = _round(client, link)  # six days: still good, and the new link starts afresh
    sim.clock.advance(7 * 24 * 3600 + 1)
    with graph_client(sim) as client:
        expired = client.get(link)
        assert expired.status_code == 410
        assert expired.json()["error"]["code"] == "syncStateNotFound"
        assert client.get("/groups/delta?$deltatoken=madeup").status_code == 410


def test_hundreds_of_links_stay_valid_as_a_trust_tracks_them() -> None:
    sim = Simulator(make_seed(users=1, groups=1))
    with graph_client(sim) as client:
        _, first = _round(client, "/groups/delta", {"$deltatoken": "latest", "$select": "members"})
        for _ in range(600):  # a large trust: one link per 50 managed groups, and more each run
            _round(client, "/groups/delta", {"$deltatoken": "latest", "$select": "members"})
        assert client.get(first).status_code == 200
