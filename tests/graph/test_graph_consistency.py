"""What the live service's "does not exist" and refusal answers mean (graph/consistency.py)."""

from __future__ import annotations

from smartsync.graph.consistency import ReplicationWait, refusal, replicating, team_not_ready
from smartsync.graph.errors import GraphError

NEW, USER = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def missing(object_id: str, status: int = 404) -> GraphError:
    message = f"Resource '{object_id}' does not exist or one of its queried reference-property objects"
    return GraphError(status, "Request_ResourceNotFound", message)


def test_not_there_about_a_new_object_is_replication_about_a_user_is_not() -> None:
    created = {NEW}
    assert replicating(missing(NEW), NEW, created)
    source = GraphError(
        400,
        "Request_BadRequest",
        "The source resource object or one of the objects being referenced do not exist.",
    )
    assert replicating(source, NEW, created)
    assert not replicating(missing(USER), NEW, created)  # a user that is gone: waiting will not help
    assert not replicating(missing(NEW), NEW, set())  # not made by this run: it really is not there


def test_team_creation_refusals_that_pass_once_the_class_replicated() -> None:
    assert team_not_ready(
        GraphError(
            400, "BadRequest", "... can not be provisioned using a group which does not belong to a class"
        )
    )
    assert team_not_ready(
        GraphError(400, "BadRequest", "Group must have one or more owners in order to create a Team.")
    )
    assert not team_not_ready(GraphError(400, "BadRequest", "Template 'x' is not supported."))


def test_refusals_name_why_graph_will_never_take_the_write() -> None:
    owners = "adding these owners would exceed the maximum quota count for forward-link 'owners'."
    assert (
        refusal(GraphError(403, "Directory_QuotaExceeded", owners))
        == "already has the most owners Graph allows (100)"
    )
    assert (
        refusal(
            GraphError(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        )
        is None
    )


def test_the_wait_grows_and_stops_at_its_budget() -> None:
    wait = ReplicationWait(20.0, first_seconds=2.0, max_seconds=8.0)
    pauses = []
    while (pause := wait.next_pause()) is not None:
        pauses.append(pause)
    assert pauses == [2.0, 4.0, 8.0, 6.0] and wait.exhausted
    wait.restart()
    assert wait.next_pause() is None


def test_groups_read_as_ones_an_app_may_not_write() -> None:
    from smartsync.graph.consistency import unwritable_reason

    assert (
        unwritable_reason({"mailEnabled": True, "groupTypes": []}) == "is mail-enabled (Exchange manages it)"
    )
    assert (
        unwritable_reason({"mailEnabled": True, "groupTypes": ["Unified"]}) is None
    )  # a Microsoft 365 group
    assert "on-premises" in (unwritable_reason({"onPremisesSyncEnabled": True}) or "")
    assert "dynamic" in (unwritable_reason({"groupTypes": ["Unified", "DynamicMembership"]}) or "")
