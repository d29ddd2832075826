"""Teams: creation from a group or a class, archiving, and their asynchronous operations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import GraphError, bad_request
from smartsync.simulator.resources.base import (
    _GROUP_BIND,
    _TEMPLATE,
    TEAM_TEMPLATES,
    ApiBase,
)
from smartsync.simulator.resources.team_members import start_team
from smartsync.simulator.tenant import Group, Team, TeamsOperation, iso_utc


class TeamsApi(ApiBase):
    def _team_group(self, group_id: str) -> Group:
        """The group a new team is made from, refused as the Teams service refuses it."""
        group = self.state.groups.get(group_id)
        now = self._now()
        if group is None or now - group.created < self.replication_delay:
            # A group created moments ago has not yet replicated to the Teams service.
            raise GraphError(
                404,
                "NotFound",
                "Failed to execute Templates backend request CreateTeamFromGroupWithTemplateRequest. "
                f"Group '{group_id}' was not found. A group created in the last 15 minutes may not have "
                "replicated yet: retry later.",
            )
        if not group.is_unified:
            raise GraphError(
                400,
                "BadRequest",
                f"Group '{group_id}' is not a Microsoft 365 group: only those can become teams.",
            )
        if group.team is not None:
            raise GraphError(409, "Conflict", f"A team already exists for group '{group_id}'.")
        if not group.owners:
            raise GraphError(
                400, "BadRequest", f"Group '{group_id}' has no owner: add an owner before creating its team."
            )
        return group

    def _team_properties(self, group: Group) -> dict[str, Any]:
        team = group.team or Team()
        return {
            "id": group.id,
            "createdDateTime": iso_utc(group.created),
            "displayName": group.display_name,
            "description": group.description,
            "internalId": f"19:{group.id.replace('-', '')}@thread.tacv2",
            "classification": None,
            "specialization": "educationStandard" if team.template == "educationClass" else "none",
            "visibility": "private" if (group.visibility or "").lower() != "public" else "public",
            "webUrl": f"https://teams.microsoft.com/l/team/19%3a{group.id.replace('-', '')}%40thread.tacv2",
            "isArchived": team.is_archived,
            "summary": {
                "ownersCount": len(group.owners),
                "membersCount": len(group.members),
                "guestsCount": 0,
            },
            "tenantId": self.state.tenant_id,
            "memberSettings": {
                "allowCreateUpdateChannels": True,
                "allowDeleteChannels": True,
                "allowAddRemoveApps": True,
                "allowCreateUpdateRemoveTabs": True,
                "allowCreateUpdateRemoveConnectors": True,
            },
            "guestSettings": {"allowCreateUpdateChannels": False, "allowDeleteChannels": False},
            "messagingSettings": {
                "allowUserEditMessages": True,
                "allowUserDeleteMessages": True,
                "allowOwnerDeleteMessages": True,
                "allowTeamMentions": True,
                "allowChannelMentions": True,
            },
            "funSettings": {
                "allowGiphy": True,
                "giphyContentRating": "moderate",
                "allowStickersAndMemes": True,
                "allowCustomMemes": True,
            },
        }

    def _put_group_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], group_id: str
    ) -> SimResponse:
        self._require(principal, "teams.create")
        self._body(req, "team")
        group = self._team_group(group_id)
        group.team = start_team(group, Team(ready_at=self._now()), self.state.users)
        out = {"@odata.context": self._context("teams/$entity"), **self._team_properties(group)}
        return SimResponse.of_json(201, out, {"location": f"{self.base_url}/v1.0/teams/{group.id}"})

    def _ready_team_group(self, team_id: str) -> Group:
        group = self.state.groups.get(team_id)
        if group is None or not group.team_ready(self._now()):
            raise GraphError(404, "NotFound", f"No team found with Group Id {team_id}.")
        return group

    def _get_group_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], group_id: str
    ) -> SimResponse:
        return self._get_team(req, principal, query, group_id)

    def _get_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str
    ) -> SimResponse:
        self._require(principal, "teams.read")
        group = self._ready_team_group(team_id)
        out = {"@odata.context": self._context("teams/$entity"), **self._team_properties(group)}
        return SimResponse.of_json(200, out)

    def _create_team(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "teams.create")
        body = self._body(req, "team", binds=("template", "group"))
        template_url = body.get("template@odata.bind")
        template_match = _TEMPLATE.search(template_url) if isinstance(template_url, str) else None
        if template_match is None:
            raise GraphError(400, "BadRequest", "The 'template@odata.bind' property is required.")
        template = template_match.group(1)
        if template not in TEAM_TEMPLATES:
            raise GraphError(400, "BadRequest", f"Template '{template}' is not supported.")
        group_url = body.get("group@odata.bind")
        group_match = _GROUP_BIND.search(group_url) if isinstance(group_url, str) else None
        if group_match is None:
            raise GraphError(
                400, "BadRequest", "Creating a team requires 'group@odata.bind' naming an existing group."
            )
        group_id = group_match.group(1)
        group = self._team_group(group_id)
        if template == "educationClass" and group.education_class is None:
            raise GraphError(
                400,
                "BadRequest",
                "Team with template 'educationClass' can not be provisioned using a group which does not "
                "belong to a class",
            )
        now = self._now()
        group.team = start_team(
            group, Team(ready_at=now + self.team_provisioning_time, template=template), self.state.users
        )
        operation = self._operation(group.id, "createTeam", now + self.team_provisioning_time)
        return SimResponse.empty(
            202,
            {
                "location": f"/teams('{group.id}')/operations('{operation.id}')",
                "content-location": f"/teams('{group.id}')",
                "content-length": "0",
            },
        )

    def _operation(self, team_id: str, operation_type: str, completes_at: float) -> TeamsOperation:
        operation = TeamsOperation(
            id=self.state.new_id(),
            team_id=team_id,
            operation_type=operation_type,
            created=self._now(),
            completes_at=completes_at,
        )
        self.state.teams_operations[operation.id] = operation
        return operation

    def _archive_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str, action: str
    ) -> SimResponse:
        self._require(principal, "teams.archive")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise bad_request("Invalid JSON in the request body.") from None
        if body is not None and (
            not isinstance(body, dict) or set(body) - {"shouldSetSpoSiteReadOnlyForMembers"}
        ):
            raise GraphError(
                400, "BadRequest", "The only parameter accepted is 'shouldSetSpoSiteReadOnlyForMembers'."
            )
        group = self._ready_team_group(team_id)
        assert group.team is not None
        group.team.is_archived = action == "archive"
        operation = self._operation(team_id, f"{action}Team", self._now())
        return SimResponse.empty(
            202,
            {
                "location": f"/teams('{team_id}')/operations('{operation.id}')",
                "content-type": "text/plain",
                "content-length": "0",
            },
        )

    def _get_operation(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str, operation_id: str
    ) -> SimResponse:
        self._require(principal, "teams.operations.read")
        operation = self.state.teams_operations.get(operation_id)
        if operation is None or operation.team_id != team_id:
            raise GraphError(
                404, "NotFound", f"Operation '{operation_id}' was not found for team '{team_id}'."
            )
        out = {
            "@odata.context": self._context(f"teams('{team_id}')/operations/$entity"),
            **operation.properties(self._now()),
        }
        return SimResponse.of_json(200, out)
