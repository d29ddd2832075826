"""The Graph requests of the `user.*` changes, and the hand-out row of each account created.

The applier asks `AccountWrites` for each account change's request and tells it which creations
succeeded. The initial password is made here when the creation request is built, kept in memory for
that one request (a resend after a lost answer sends the same password), and goes to the hand-out
file once Graph has created the account: never to the plan, the journal, the report or an error.
"""

from __future__ import annotations

import re
from typing import Any

from smartsync.engine.plan import Change
from smartsync.graph import GraphClient, GraphError, GraphRequest
from smartsync.handout import Handout, new_password

_NICKNAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def mail_nickname_of(address: str) -> str:
    """The part before @, reduced to characters Graph allows in a user's mailNickname."""
    local = address.partition("@")[0]
    return (_NICKNAME_UNSAFE.sub("_", local).strip("._") or "user")[:64]


class AccountWrites:
    def __init__(self, handout: Handout | None) -> None:
        self.handout = handout
        self._passwords: dict[str, str] = {}  # change key -> password, until the account exists

    def request(self, change: Change, object_id: str | None) -> GraphRequest:
        spec = change.account
        if change.op == "user.delete":
            return GraphRequest("DELETE", f"/users/{object_id}")
        assert spec is not None
        body: dict[str, Any] = dict(spec.properties)
        if spec.marker is not None:
            body["onPremisesExtensionAttributes"] = {spec.marker_attribute: spec.marker}
        if change.op == "user.create":
            password = self._passwords.setdefault(change.key, new_password())
            body = {
                "accountEnabled": True,
                "displayName": body.pop("displayName", spec.user_principal_name),
                "mailNickname": mail_nickname_of(spec.user_principal_name),
                "userPrincipalName": spec.user_principal_name,
                "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": password},
                **body,
            }
            return GraphRequest("POST", "/users", body)
        return GraphRequest("PATCH", f"/users/{object_id}", body)

    def created(self, change: Change) -> None:
        """Graph created the account: its row goes to the hand-out file, the password leaves memory."""
        password = self._passwords.pop(change.key, None)
        spec = change.account
        if password is None or spec is None or self.handout is None:
            return
        self.handout.add(
            change.name or spec.user_principal_name,
            spec.year_group,
            spec.group_name,
            spec.user_principal_name,
            password,
        )

    def forget(self, change: Change) -> None:
        self._passwords.pop(change.key, None)

    def flush(self) -> None:
        if self.handout is not None:
            self.handout.flush()

    @staticmethod
    def find_created(client: GraphClient, change: Change) -> str | None:
        """After a lost answer: does the account exist? Look it up by its sign-in address."""
        if change.account is None:
            return None
        upn = change.account.user_principal_name.replace("'", "''")
        try:
            rows = client.get_all(
                "/users", {"$filter": f"userPrincipalName eq '{upn}'", "$select": "id,userPrincipalName"}
            )
        except GraphError:
            return None
        return str(rows[0]["id"]) if rows else None
