"""Education classes: `POST /education/classes` makes the Microsoft 365 group of a class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.resources.base import (
    EDUCATION_EXTERNAL_SOURCES,
    ApiBase,
    _refuse_read_only,
    _string,
    invalid_value,
    not_found,
)
from smartsync.simulator.tenant import EducationClassInfo, Group


class EducationApi(ApiBase):
    def _create_class(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "education.write")
        body = self._body(req, "educationClass")
        _refuse_read_only(body, "educationClass")
        display_name = _string(body, "displayName", "EducationClass", required=True)
        if "mailNickname" not in body:
            raise invalid_value("mailNickname", "EducationClass")
        nickname = self._check_nickname(body["mailNickname"], unified=True)
        source = body.get("externalSource")
        if source is not None and source not in EDUCATION_EXTERNAL_SOURCES:
            raise invalid_value("externalSource", "EducationClass")
        group = Group(
            id=self.state.new_id(),
            display_name=display_name,
            mail_nickname=nickname,
            mail_enabled=True,
            security_enabled=False,
            description=_string(body, "description", "EducationClass"),
            group_types=["Unified"],
            visibility="HiddenMembership",
            created=self._now(),
            education_class=EducationClassInfo(
                external_id=_string(body, "externalId", "EducationClass"),
                external_name=_string(body, "externalName", "EducationClass"),
                external_source=source,
                class_code=_string(body, "classCode", "EducationClass"),
            ),
        )
        self.state.groups[group.id] = group
        out = {"@odata.context": self._context("education/classes/$entity"), **self._class_properties(group)}
        return SimResponse.of_json(
            201, out, {"location": f"{self.base_url}/v1.0/education/classes/{group.id}"}
        )

    def _class_properties(self, group: Group) -> dict[str, Any]:
        info = group.education_class or EducationClassInfo()
        return {
            "id": group.id,
            "displayName": group.display_name,
            "mailNickname": group.mail_nickname,
            "description": group.description,
            "createdBy": {"application": {"id": self.state.app.client_id, "displayName": None}, "user": None},
            "classCode": info.class_code,
            "externalName": info.external_name,
            "externalId": info.external_id,
            "externalSource": info.external_source,
            "externalSourceDetail": None,
            "grade": None,
            "term": None,
            "course": None,
        }

    def _get_class(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], class_id: str
    ) -> SimResponse:
        self._require(principal, "education.read")
        group = self.state.groups.get(class_id)
        if group is None or group.education_class is None:
            raise not_found(class_id)
        out = {"@odata.context": self._context("education/classes/$entity"), **self._class_properties(group)}
        return SimResponse.of_json(200, out)
