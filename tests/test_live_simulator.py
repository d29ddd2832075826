"""The simulator's live behaviours, over the HTTPS path `smartsync simulator serve` uses.

Each test talks Graph to a served tenant (a subprocess, as an admin would run it) and checks that it
answers as the field notes say the live service does: replication delay, the app as owner, bind
lists, soft deletion, groups an app may not write, restricted units, Teams, `$batch` order. The
served clock runs in real time here (`--time-scale 1`) and is moved on with `/_simulator/clock`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_reliability_support import ServedTenant, mini_roster, served_tenant

from smartsync.demo import DEMO_CLIENT, DEMO_SECRET, DEMO_TENANT, demo_seed

SOURCE_MISSING = "The source resource object or one of the objects being referenced do not exist."


class Graph:
    """A bare Graph client for one served tenant: a token, then requests as JSON."""

    def __init__(self, served: ServedTenant) -> None:
        self.served = served
        self.http = httpx.Client(
            base_url=served.base_url,
            verify=ssl.create_default_context(cafile=str(served.ca_cert)),
            timeout=30,
        )
        token = self.http.post(
            f"/{DEMO_TENANT}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT,
                "client_secret": DEMO_SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.users = [u["id"] for u in served.state()["users"]]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.http.request(method, f"/v1.0{path}", json=body)
        return response.status_code, response.json() if response.content else None

    def message(self, method: str, path: str, body: Any = None) -> tuple[int, str]:
        status, payload = self.call(method, path, body)
        return status, (payload or {}).get("error", {}).get("message", "")

    def advance(self, seconds: float) -> None:
        self.http.post("/_simulator/clock/advance", params={"seconds": str(seconds)}).raise_for_status()

    def control(self, action: str, body: dict[str, Any]) -> None:
        self.http.post(f"/_simulator/live/{action}", json=body).raise_for_status()

    def ref(self, object_id: str) -> str:
        return f"{self.served.base_url}/v1.0/directoryObjects/{object_id}"

    def new_group(self, nickname: str, *, unified: bool = False, owner: int = 0) -> str:
        body = {
            "displayName": nickname,
            "mailNickname": nickname,
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [],
            "owners@odata.bind": [self.ref(self.users[owner])],
        }
        status, created = self.call("POST", "/groups", body)
        assert status == 201, created
        return str(created["id"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    folder = tmp_path_factory.mktemp("live-sim")
    with served_tenant(
        folder, demo_seed(mini_roster(), missing_every=None), extra=("--time-scale", "1")
    ) as s:
        graph = Graph(s)
        yield graph
        graph.http.close()


def test_a_new_group_is_not_there_for_a_few_seconds_then_it_is(live: Graph) -> None:
    group = live.new_group("lag-one")
    member = {"@odata.id": live.ref(live.users[1])}
    assert live.message("POST", f"/groups/{group}/members/$ref", member) == (400, SOURCE_MISSING)
    status, text = live.message("GET", f"/groups/{group}/members")
    assert status == 404 and f"Resource '{group}' does not exist" in text
    # A reference to the new group from elsewhere fails the same way.
    other = live.new_group("lag-two")
    live.advance(6)
    bind = {"members@odata.bind": [live.ref(other)]}
    assert live.call("PATCH", f"/groups/{group}", bind)[0] == 204
    assert live.call("POST", f"/groups/{group}/members/$ref", member)[0] == 204


def test_the_app_becomes_an_owner_of_the_groups_it_creates(live: Graph) -> None:
    group = live.new_group("app-owner")
    live.advance(6)
    status, owners = live.call("GET", f"/groups/{group}/owners?$select=id,userPrincipalName")
    assert status == 200
    types = sorted(o["@odata.type"] for o in owners["value"])
    assert types == ["#microsoft.graph.servicePrincipal", "#microsoft.graph.user"]


def test_bind_lists_refuse_an_object_twice_and_removing_a_non_member_answers_404_or_400(live: Graph) -> None:
    group = live.new_group("binds")
    live.advance(6)
    twice = {"members@odata.bind": [live.ref(live.users[2]), live.ref(live.users[2])]}
    status, text = live.message("PATCH", f"/groups/{group}", twice)
    assert status == 400 and "can only be present once" in text
    answers = {live.message("DELETE", f"/groups/{group}/members/{live.users[3]}/$ref") for _ in range(2)}
    assert {status for status, _ in answers} == {400, 404}
    assert any("removed object references do not exist" in text for _, text in answers)


def test_deleted_groups_are_listed_restored_with_members_and_purged(live: Graph) -> None:
    kept = live.new_group("restore-me", unified=True)
    gone = live.new_group("purge-me", unified=True)
    live.advance(6)
    assert live.call("POST", f"/groups/{kept}/members/$ref", {"@odata.id": live.ref(live.users[4])})[0] == 204
    for group in (kept, gone):
        assert live.call("DELETE", f"/groups/{group}")[0] == 204
    status, deleted = live.call("GET", "/directory/deletedItems/microsoft.graph.group")
    assert status == 200 and {kept, gone} <= {g["id"] for g in deleted["value"]}
    # The deleted Microsoft 365 group keeps its nickname until it is purged.
    body = {"displayName": "x", "mailNickname": "purge-me", "mailEnabled": True, "securityEnabled": False}
    status, text = live.message("POST", "/groups", {**body, "groupTypes": ["Unified"]})
    assert status == 400 and "mailNickname already exists" in text
    assert live.call("POST", f"/directory/deletedItems/{kept}/restore")[0] == 200
    members = live.call("GET", f"/groups/{kept}/members")[1]["value"]
    assert [m["id"] for m in members] == [live.users[4]]
    assert live.call("DELETE", f"/directory/deletedItems/{gone}")[0] == 204
    assert live.call("POST", "/groups", {**body, "groupTypes": ["Unified"]})[0] == 201


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("mail_enabled", 400, "mail-enabled security groups"),
        ("on_premises", 400, "on-premises mastered"),
        ("dynamic", 403, "dynamic membership"),
    ],
)
def test_groups_an_app_may_not_write_refuse_as_graph_does(
    live: Graph, kind: str, status: int, words: str
) -> None:
    group = live.new_group(f"locked-{kind}".replace("_", "-"))
    live.advance(6)
    live.control("lock-group", {"group": group, "kind": kind})
    got, text = live.message("POST", f"/groups/{group}/members/$ref", {"@odata.id": live.ref(live.users[1])})
    assert got == status and words in text
    # And the group says so when read, as Entra's groups do.
    props = live.call("GET", f"/groups/{group}?$select=mailEnabled,onPremisesSyncEnabled,groupTypes")[1]
    shown = {
        "mail_enabled": props["mailEnabled"],
        "on_premises": props["onPremisesSyncEnabled"],
        "dynamic": "DynamicMembership" in props["groupTypes"],
    }
    assert shown[kind] is True


def test_guests_are_refused_by_policy(live: Graph) -> None:
    group = live.new_group("guests", unified=True)
    live.advance(6)
    live.control("refuse-guest", {"user": live.users[5]})
    status, text = live.message(
        "POST", f"/groups/{group}/members/$ref", {"@odata.id": live.ref(live.users[5])}
    )
    assert status == 403 and "Guests users are not allowed" in text


def test_restricted_units_take_no_microsoft_365_groups_and_lock_their_groups(live: Graph) -> None:
    status, unit = live.call(
        "POST", "/directory/administrativeUnits", {"displayName": "R", "isMemberManagementRestricted": True}
    )
    assert status == 201
    m365, security = live.new_group("r-m365", unified=True), live.new_group("r-sec")
    live.advance(6)
    path = f"/directory/administrativeUnits/{unit['id']}/members/$ref"
    status, text = live.message("POST", path, {"@odata.id": live.ref(m365)})
    assert status == 400 and "Microsoft 365 groups cannot be added" in text
    assert live.call("POST", path, {"@odata.id": live.ref(security)})[0] == 204
    status, text = live.message(
        "POST", f"/groups/{security}/members/$ref", {"@odata.id": live.ref(live.users[1])}
    )
    assert status == 403 and "restricted management administrative unit" in text
    live.control("unit-role", {"granted": True})
    assert (
        live.call("POST", f"/groups/{security}/members/$ref", {"@odata.id": live.ref(live.users[1])})[0]
        == 204
    )
    live.control("unit-role", {"granted": False})


def test_team_creation_waits_longer_then_409_already_provisioned(live: Graph) -> None:
    group = live.new_group("team-lag", unified=True)
    body = {
        "template@odata.bind": "https://graph.microsoft.com/v1.0/teamsTemplates('standard')",
        "group@odata.bind": f"https://graph.microsoft.com/v1.0/groups('{group}')",
    }
    live.advance(6)  # the group itself has replicated; Teams has not heard of it yet
    assert live.call("POST", "/teams", body)[0] == 404
    live.advance(30)
    assert live.call("POST", "/teams", body)[0] == 202
    status, text = live.message("POST", "/teams", body)
    assert status == 409 and "already provisioned" in text
    live.advance(10)
    status, text = live.message(
        "POST", f"/teams/{group}/archive", {"shouldSetSpoSiteReadOnlyForMembers": True}
    )
    assert status == 400 and "application permissions" in text
    response = live.http.post(f"/v1.0/teams/{group}/archive")
    assert response.status_code == 202
    operation = live.http.get(f"/v1.0{response.headers['location']}").json()
    assert operation["status"] == "inProgress"  # the archive takes a while; the team says it is archived
    assert live.call("GET", f"/teams/{group}")[1]["isArchived"] is True


def test_batch_answers_come_in_another_order(live: Graph) -> None:
    requests = [
        {"id": str(n), "method": "GET", "url": f"/users/{u}"} for n, u in enumerate(live.users[:20], 1)
    ]
    status, body = live.call("POST", "/$batch", {"requests": requests})
    assert status == 200
    ids = [r["id"] for r in body["responses"]]
    assert sorted(ids, key=int) == [r["id"] for r in requests] and ids != [r["id"] for r in requests]


def test_without_live_the_reference_pages_hold(tmp_path: Path) -> None:
    seed = demo_seed(mini_roster(), missing_every=None)
    with served_tenant(tmp_path, seed, extra=("--time-scale", "1", "--no-live")) as served:
        graph = Graph(served)
        group = graph.new_group("no-lag")
        assert (
            graph.call("POST", f"/groups/{group}/members/$ref", {"@odata.id": graph.ref(graph.users[1])})[0]
            == 204
        )
        owners = graph.call("GET", f"/groups/{group}/owners")[1]["value"]
        assert [o["id"] for o in owners] == [graph.users[0]]
        graph.http.close()


def test_owners_stop_at_the_cap() -> None:
    from smartsync.simulator import Simulator
    from smartsync.simulator.live import LiveSettings

    sim = Simulator(
        demo_seed(mini_roster(), missing_every=None), live=LiveSettings(max_owners=3), time_scale=1000
    )
    users = [u["id"] for u in sim.dump_state()["users"]]
    with httpx.Client(transport=sim.transport(), base_url=sim.base_url) as http:
        token = http.post(
            f"/{DEMO_TENANT}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT,
                "client_secret": DEMO_SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        ref = f"{sim.base_url}/v1.0/directoryObjects/"
        body = {"displayName": "cap", "mailNickname": "cap", "mailEnabled": False, "securityEnabled": True}
        group = http.post("/v1.0/groups", json={**body, "owners@odata.bind": [ref + users[0]]}).json()["id"]
        sim.clock.advance(10)
        # The app itself is the second owner; a third fits, a fourth is past the cap.
        assert (
            http.post(f"/v1.0/groups/{group}/owners/$ref", json={"@odata.id": ref + users[1]}).status_code
            == 204
        )
        refused = http.post(f"/v1.0/groups/{group}/owners/$ref", json={"@odata.id": ref + users[2]})
        assert refused.status_code == 403 and "forward-link 'owners'" in refused.json()["error"]["message"]
