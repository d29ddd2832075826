"""The Graph request each change of a plan sends: paths, bodies and `@odata.bind` references.

Everything that decides a body's content comes from the change itself (the group's spec carries its
type, nickname and behaviour options), so the plan document shows what will be sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smartsync.engine.apply.accounts import AccountWrites
from smartsync.engine.apply.outcome import Call, Outcome
from smartsync.engine.naming import au_description, group_description
from smartsync.engine.plan import Change
from smartsync.engine.state import UserRef
from smartsync.graph import GraphRequest

# Owner and member additions go through `memberships.bulk_additions`: they share PATCHes.
ADDITIONS = {"group.owners.add": "owners", "group.members.add": "members"}

PLACEHOLDER = "new:"  # a user id the plan gave an account this run creates (`engine.accounts`)


def unique(refs: list[str]) -> list[str]:
    """A bind list with each object once: Graph refuses a list naming one object twice."""
    return list(dict.fromkeys(refs))


class Requests:
    """Builds requests against one Graph endpoint.

    `ids` are the object ids known so far in this run, by key: an account created earlier in the run
    is named in the plan by a placeholder (`new:{key}`) that resolves to the id Graph gave it.
    """

    def __init__(
        self, graph_url: str, ids: Mapping[str, str] | None = None, accounts: AccountWrites | None = None
    ) -> None:
        self.graph_v1 = f"{graph_url.rstrip('/')}/v1.0"
        self.directory_objects = f"{self.graph_v1}/directoryObjects"
        self.ids: Mapping[str, str] = ids if ids is not None else {}
        self.accounts = accounts or AccountWrites(None)

    def user_id(self, user_id: str) -> str:
        """A user's object id; an account created earlier in this run gets the id Graph gave it."""
        if user_id.startswith(PLACEHOLDER):
            return self.ids.get(user_id[len(PLACEHOLDER) :], user_id)
        return user_id

    def known(self, users: Iterable[UserRef], outcome: Outcome | None = None) -> list[UserRef]:
        """`users` without accounts this run failed to create (skipped: the next run adds them)."""
        known = []
        for user in users:
            if self.user_id(user.id).startswith(PLACEHOLDER):
                if outcome is not None:
                    outcome.users[user.id] = (
                        "skipped",
                        "skipped: the account was not created; the next run adds it",
                    )
                continue
            known.append(user)
        return known

    def ref(self, user: UserRef) -> str:
        return f"{self.directory_objects}/{self.user_id(user.id)}"

    def calls(self, change: Change, outcome: Outcome, oid: str | None) -> list[Call]:
        """The requests of one change other than owner and member additions (see `memberships`)."""
        op = change.op
        if op.startswith("user."):
            purpose = {"user.create": "create", "user.delete": "delete"}.get(op, "")
            return [Call(outcome, self.accounts.request(change, oid), purpose=purpose)]
        if op == "group.create" and change.group is not None and change.group.education_class:
            req = GraphRequest("POST", "/education/classes", self.class_body(change))
            return [Call(outcome, req, purpose="create")]
        if op == "group.create":
            created = GraphRequest("POST", "/groups", self.group_body(change, outcome))
            return [Call(outcome, created, purpose="create")]
        if op == "team.create":
            if change.template == "educationClass":
                team_body = {
                    "template@odata.bind": f"{self.graph_v1}/teamsTemplates('educationClass')",
                    "group@odata.bind": f"{self.graph_v1}/groups('{oid}')",
                }
                req = GraphRequest("POST", "/teams", team_body, idempotent=True)
            else:
                req = GraphRequest("PUT", f"/groups/{oid}/team", {})
            return [Call(outcome, req, purpose="team")]
        if op == "team.archive":
            req = GraphRequest("POST", f"/teams/{oid}/archive", None, idempotent=True)
            return [Call(outcome, req, purpose="archive")]
        if op == "admin_unit.create":
            assert change.unit is not None
            body: dict[str, Any] = {
                "displayName": change.unit.display_name,
                "description": change.unit.description or au_description(change.key),
            }
            if change.unit.restricted:
                body["isMemberManagementRestricted"] = True
            req = GraphRequest("POST", "/directory/administrativeUnits", body)
            return [Call(outcome, req, purpose="create")]
        if op in ("group.update", "admin_unit.update"):
            base = "/groups" if op == "group.update" else "/directory/administrativeUnits"
            return [Call(outcome, GraphRequest("PATCH", f"{base}/{oid}", dict(change.set_fields)))]
        if op == "admin_unit.members.add":
            path = f"/directory/administrativeUnits/{oid}/members/$ref"
            return [
                Call(outcome, GraphRequest("POST", path, {"@odata.id": self.ref(u)}, idempotent=True), u)
                for u in self.known(change.users, outcome)
            ]
        if op in ("group.members.remove", "group.owners.remove", "admin_unit.members.remove"):
            if op == "admin_unit.members.remove":
                base = f"/directory/administrativeUnits/{oid}/members"
            else:
                base = f"/groups/{oid}/{'members' if op == 'group.members.remove' else 'owners'}"
            return [Call(outcome, GraphRequest("DELETE", f"{base}/{u.id}/$ref"), u) for u in change.users]
        if op == "group.delete":
            return [Call(outcome, GraphRequest("DELETE", f"/groups/{oid}"), purpose="delete")]
        if op == "group.restore":
            req = GraphRequest("POST", f"/directory/deletedItems/{oid}/restore", None, idempotent=True)
            return [Call(outcome, req, purpose="restore")]
        if op == "group.purge":
            return [Call(outcome, GraphRequest("DELETE", f"/directory/deletedItems/{oid}"), purpose="delete")]
        if op == "admin_unit.delete":
            return [
                Call(
                    outcome, GraphRequest("DELETE", f"/directory/administrativeUnits/{oid}"), purpose="delete"
                )
            ]
        outcome.fail(f"unsupported change {op}")
        return []

    def group_body(self, change: Change, outcome: Outcome | None = None) -> dict[str, Any]:
        spec = change.group
        assert spec is not None
        unified = spec.type == "microsoft365"
        body: dict[str, Any] = {
            "displayName": spec.display_name,
            "mailNickname": spec.mail_nickname,
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [],
            "description": group_description(spec.kind),
        }
        if unified:
            body["visibility"] = "Private"
            if spec.behaviour_options:
                body["resourceBehaviorOptions"] = list(spec.behaviour_options)
        owners, members = self.known(change.owners, outcome), self.known(change.users, outcome)
        if owners:
            body["owners@odata.bind"] = unique([self.ref(u) for u in owners])
        if members:
            body["members@odata.bind"] = unique([self.ref(u) for u in members])
        return body

    def class_body(self, change: Change) -> dict[str, Any]:
        spec = change.group
        assert spec is not None
        return {
            "displayName": spec.display_name,
            "mailNickname": spec.mail_nickname,
            "description": group_description(spec.kind, education_class=True),
            "externalId": spec.roster_id or spec.key,
            "externalName": spec.display_name,
            "externalSource": "manual",
        }

    def add_one(self, oid: str, relation: str, user: UserRef) -> GraphRequest:
        """Add one owner or member by `$ref` (the fallback when a PATCH of several is refused)."""
        return GraphRequest(
            "POST", f"/groups/{oid}/{relation}/$ref", {"@odata.id": self.ref(user)}, idempotent=True
        )
