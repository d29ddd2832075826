"""GraphClient single requests: headers, paging, Retry-After, retry safety, typed errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from smartsync import __version__
from smartsync.errors import EXIT_AUTH, AuthError
from smartsync.graph import (
    GraphAuthError,
    GraphBadRequest,
    GraphClient,
    GraphConflict,
    GraphError,
    GraphNotFound,
    GraphOutcomeUnknown,
    GraphThrottled,
    GraphUnavailable,
    ResponseInfo,
)

API = "https://graph.microsoft.com/v1.0"
TOKEN = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6W119.c2lnbmF0dXJl"


def graph_error(status: int, code: str, message: str, request_id: str = "req-1") -> httpx.Response:
    body = {
        "error": {"code": code, "message": message, "innerError": {"request-id": request_id, "date": "x"}}
    }
    return httpx.Response(status, json=body)


# -- headers and URLs ----------------------------------------------------------------------------------


def test_every_request_carries_the_documented_headers(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.get("/groups/g1").respond(200, json={"id": "g1"})

    assert client.get("/groups/g1") == {"id": "g1"}
    assert client.get("/groups/g1", headers={"ConsistencyLevel": "eventual"}) == {"id": "g1"}

    assert route.call_count == 2
    first, second = (call.request for call in route.calls)
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert first.headers["Accept"] == "application/json"
    assert first.headers["User-Agent"] == f"smartsync/{__version__}"
    assert uuid.UUID(first.headers["client-request-id"]).version == 4
    assert first.headers["client-request-id"] != second.headers["client-request-id"]
    assert "ConsistencyLevel" not in first.headers
    assert second.headers["ConsistencyLevel"] == "eventual"
    assert str(first.url) == f"{API}/groups/g1"


def test_odata_query_stays_readable(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.get("/groups").respond(200, json={"value": []})

    client.get_all(
        "/groups", {"$filter": "startswith(mailNickname,'smartsync-')", "$select": "id,displayName"}
    )

    url = str(route.calls.last.request.url)
    assert url == f"{API}/groups?$filter=startswith(mailNickname,'smartsync-')&$select=id,displayName"


def test_json_body_is_sent_with_its_content_type(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.post("/groups").respond(201, json={"id": "new"})

    result = client.request("POST", "/groups", json={"displayName": "7A/Ma1 Maths"})

    assert result.status == 201 and result.body == {"id": "new"} and result.ok
    sent = route.calls.last.request
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == {"displayName": "7A/Ma1 Maths"}


def test_accepted_with_empty_body_keeps_location(client: GraphClient, graph: respx.MockRouter) -> None:
    # POST /teams answers 202, Content-Type json, Content-Length 0 and a Location to poll (Graph docs).
    location = "/teams('dbd8de4f')/operations('3a6fdce1')"
    graph.post("/teams").respond(202, headers={"Content-Type": "application/json", "Location": location})

    result = client.request("POST", "/teams", json={"displayName": "x"})

    assert result.status == 202 and result.body is None
    assert result.headers["location"] == location


# -- paging ---------------------------------------------------------------------------------------------


def test_get_all_follows_next_link_unchanged(client: GraphClient, graph: respx.MockRouter) -> None:
    link2 = f"{API}/users?$top=2&$skiptoken=RFNwdAIAAQAAAB86VXNlcl8x%2bY2Q"
    link3 = f"{API}/users?$top=2&$skiptoken=RFNwdAIAAQAAAB86VXNlcl8y%2bY2Q"
    pages = {
        f"{API}/users?$top=2": {"value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": link2},
        link2: {"value": [{"id": "3"}, {"id": "4"}], "@odata.nextLink": link3},
        link3: {"value": [{"id": "5"}]},
    }
    route = graph.get("/users").mock(
        side_effect=lambda request: httpx.Response(200, json=pages[str(request.url)])
    )

    users = client.get_all("/users", {"$top": "2"})

    assert [u["id"] for u in users] == ["1", "2", "3", "4", "5"]
    assert [str(call.request.url) for call in route.calls] == [f"{API}/users?$top=2", link2, link3]


def test_next_link_to_another_host_is_refused(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.get("/users").respond(
        200, json={"value": [{"id": "1"}], "@odata.nextLink": "https://evil.example/v1.0/users?page=2"}
    )

    with pytest.raises(GraphError, match=r"not on https://graph\.microsoft\.com"):
        client.get_all("/users")
    assert route.call_count == 1


def test_html_page_from_a_proxy_is_a_clear_error(client: GraphClient, graph: respx.MockRouter) -> None:
    page = "<html><head><title>Blocked</title></head><body><h1>Access denied by WebFilter</h1></body></html>"
    graph.get("/users").respond(200, text=page, headers={"Content-Type": "text/html"})

    with pytest.raises(GraphError) as caught:
        client.get_all("/users")

    text = str(caught.value)
    assert "not from Microsoft Graph" in text and "Access denied by WebFilter" in text
    assert "<h1>" not in text and "page 1 of GET /users" in text


def test_page_without_value_is_an_error(client: GraphClient, graph: respx.MockRouter) -> None:
    graph.get("/groups").respond(200, json={"id": "not-a-collection"})

    with pytest.raises(GraphError, match="'value' list"):
        client.get_all("/groups")


# -- Retry-After and backoff ----------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), ("0.25", 0.25), ("  7 ", 7.0)])
def test_retry_after_seconds_are_honoured(
    client: GraphClient, graph: respx.MockRouter, sleeps: list[float], header: str, expected: float
) -> None:
    route = graph.get("/users").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": header}),
            httpx.Response(200, json={"value": []}),
        ]
    )

    assert client.get_all("/users") == []

    assert route.call_count == 2
    assert sleeps == [expected]


def test_retry_after_http_date_is_honoured(
    client: GraphClient, graph: respx.MockRouter, sleeps: list[float]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    graph.get("/users").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": when}),
            httpx.Response(200, json={"value": []}),
        ]
    )

    client.get_all("/users")

    (wait,) = sleeps
    assert 28.0 <= wait <= 30.0


def test_server_error_without_retry_after_backs_off(
    client: GraphClient, graph: respx.MockRouter, sleeps: list[float]
) -> None:
    route = graph.get("/groups/g1").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(502),
            httpx.Response(504),
            httpx.Response(200, json={}),
        ]
    )

    client.get("/groups/g1")

    assert route.call_count == 4
    waits = sleeps
    assert len(waits) == 3 and all(w > 0 for w in waits)
    assert waits[2] > waits[0]  # exponential: the third wait's floor is above the first's ceiling


def test_throttling_until_retries_run_out(graph: respx.MockRouter, sleeps: list[float]) -> None:
    route = graph.get("/users").respond(429, headers={"Retry-After": "1"})
    with GraphClient(
        "https://graph.microsoft.com", lambda: TOKEN, sleep=sleeps.append, max_retries=3
    ) as client:
        with pytest.raises(GraphThrottled) as caught:
            client.get_all("/users")
        assert client.concurrency_now == 1  # halved on every 429, never below one

    assert route.call_count == 4
    assert sleeps == [1.0, 1.0, 1.0]
    assert caught.value.status == 429


def test_unavailable_after_retries(graph: respx.MockRouter, sleeps: list[float]) -> None:
    route = graph.get("/users").mock(side_effect=httpx.ReadTimeout("slow"))
    with (
        GraphClient(
            "https://graph.microsoft.com", lambda: TOKEN, sleep=sleeps.append, max_retries=2
        ) as client,
        pytest.raises(GraphUnavailable, match="ReadTimeout"),
    ):
        client.get_all("/users")
    assert route.call_count == 3


# -- retry safety ---------------------------------------------------------------------------------------


def test_post_is_not_repeated_after_a_read_error(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.post("/groups").mock(side_effect=httpx.ReadError("connection reset"))

    with pytest.raises(GraphOutcomeUnknown) as caught:
        client.request("POST", "/groups", json={"displayName": "x"})

    assert route.call_count == 1
    assert "not known whether Graph applied it" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_is_not_repeated_after_a_server_error(
    client: GraphClient, graph: respx.MockRouter, status: int
) -> None:
    route = graph.post("/groups").respond(status)

    with pytest.raises(GraphOutcomeUnknown):
        client.request("POST", "/groups", json={"displayName": "x"})
    assert route.call_count == 1


def test_post_is_repeated_when_the_connection_was_never_made(
    client: GraphClient, graph: respx.MockRouter
) -> None:
    route = graph.post("/groups").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(201, json={"id": "g"})]
    )

    assert client.request("POST", "/groups", json={"displayName": "x"}).status == 201
    assert route.call_count == 2


def test_post_is_repeated_after_429(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.post("/groups").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(201, json={"id": "g"})]
    )

    assert client.request("POST", "/groups", json={}).status == 201
    assert route.call_count == 2


def test_post_marked_idempotent_is_repeated(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.post("/teams/t1/archive").mock(side_effect=[httpx.ReadError("reset"), httpx.Response(202)])

    assert client.request("POST", "/teams/t1/archive", idempotent=True).status == 202
    assert route.call_count == 2


@pytest.mark.parametrize("failure", [httpx.ReadError("reset"), httpx.RemoteProtocolError("dropped")])
def test_patch_is_repeated_after_a_lost_response(
    client: GraphClient, graph: respx.MockRouter, failure: Exception
) -> None:
    route = graph.patch("/groups/g1").mock(side_effect=[failure, httpx.Response(204)])

    assert client.request("PATCH", "/groups/g1", json={"displayName": "y"}).status == 204
    assert route.call_count == 2


def test_tls_failure_is_not_retried_and_names_ca_bundle(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.get("/users").mock(
        side_effect=httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate in chain")
    )

    with pytest.raises(GraphUnavailable, match=r"tenant\.ca_bundle"):
        client.get_all("/users")
    assert route.call_count == 1


# -- idempotent $ref outcomes ---------------------------------------------------------------------------


def test_adding_an_existing_member_is_success(client: GraphClient, graph: respx.MockRouter) -> None:
    graph.post("/groups/g1/members/$ref").respond(
        400,
        json=graph_error(
            400,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: "
            "'members'.",
        ).json(),
    )

    result = client.request(
        "POST", "/groups/g1/members/$ref", json={"@odata.id": f"{API}/directoryObjects/u1"}
    )

    assert result.ok and result.already and result.status == 204


def test_removing_an_absent_member_is_success(client: GraphClient, graph: respx.MockRouter) -> None:
    graph.delete("/groups/g1/members/u1/$ref").mock(
        return_value=graph_error(404, "Request_ResourceNotFound", "Resource 'u1' does not exist.")
    )

    result = client.request("DELETE", "/groups/g1/members/u1/$ref")

    assert result.ok and result.already and result.status == 204


def test_not_found_without_ref_is_an_error(client: GraphClient, graph: respx.MockRouter) -> None:
    graph.delete("/groups/g1").mock(
        return_value=graph_error(404, "Request_ResourceNotFound", "gone", "rid-404")
    )

    with pytest.raises(GraphNotFound) as caught:
        client.request("DELETE", "/groups/g1")
    assert caught.value.request_id == "rid-404"


def test_other_bad_requests_on_ref_stay_errors(client: GraphClient, graph: respx.MockRouter) -> None:
    graph.post("/groups/g1/members/$ref").mock(
        return_value=graph_error(400, "Request_BadRequest", "Invalid object identifier 'nope'.")
    )

    with pytest.raises(GraphBadRequest, match="Invalid object identifier"):
        client.request("POST", "/groups/g1/members/$ref", json={"@odata.id": "nope"})


# -- typed errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "Request_BadRequest", GraphBadRequest),
        (401, "InvalidAuthenticationToken", GraphAuthError),
        (403, "Authorization_RequestDenied", GraphAuthError),
        (404, "Request_ResourceNotFound", GraphNotFound),
        (409, "Conflict", GraphConflict),
    ],
)
def test_errors_are_typed_with_code_message_and_request_id(
    client: GraphClient, graph: respx.MockRouter, status: int, code: str, kind: type[GraphError]
) -> None:
    route = graph.get("/groups/g1").mock(
        return_value=graph_error(status, code, "Something is wrong.", "1234")
    )

    with pytest.raises(kind) as caught:
        client.get("/groups/g1")

    error = caught.value
    assert (error.status, error.code, error.message, error.request_id) == (
        status,
        code,
        "Something is wrong.",
        "1234",
    )
    assert str(error).startswith(f"Graph {status} {code}: Something is wrong. (request-id 1234)")
    assert route.call_count == 1  # client errors are never retried


def test_permission_errors_exit_as_auth_errors(client: GraphClient, graph: respx.MockRouter) -> None:
    graph.get("/users").mock(
        return_value=graph_error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    )

    with pytest.raises(AuthError) as caught:
        client.get_all("/users")

    assert isinstance(caught.value, GraphAuthError)
    assert caught.value.exit_code == EXIT_AUTH
    assert "check-credentials" in str(caught.value)


def test_html_error_body_names_the_status_and_the_proxy(graph: respx.MockRouter, sleeps: list[float]) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1><p>" + "squid " * 80 + "</p></body></html>"
    graph.get("/users").respond(502, text=page, headers={"Content-Type": "text/html"})

    with (
        GraphClient(
            "https://graph.microsoft.com", lambda: TOKEN, sleep=sleeps.append, max_retries=0
        ) as client,
        pytest.raises(GraphUnavailable) as caught,
    ):
        client.get_all("/users")

    text = str(caught.value)
    assert text.startswith("Graph 502 NonGraphResponse:")
    assert "not from Microsoft Graph" in text and "502 Bad Gateway" in text
    assert "<" not in text and text.count("squid") < 40  # tags stripped, excerpt cut to 200 characters


def test_no_token_in_any_error_text(client: GraphClient, graph: respx.MockRouter) -> None:
    echo = f"Token Bearer {TOKEN} is not valid for audience; token was {TOKEN}"
    graph.get("/users").mock(return_value=graph_error(401, "InvalidAuthenticationToken", echo))

    with pytest.raises(GraphAuthError) as caught:
        client.get_all("/users")

    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value.args)
    assert "***" in str(caught.value)


def test_every_exchange_is_reported(graph: respx.MockRouter, sleeps: list[float]) -> None:
    seen: list[ResponseInfo] = []
    graph.get("/users").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(429, headers={"Retry-After": "0.5", "request-id": "r2"}),
            httpx.Response(200, json={"value": []}),
        ]
    )
    with GraphClient(
        "https://graph.microsoft.com", lambda: TOKEN, sleep=sleeps.append, on_response=seen.append
    ) as client:
        client.get_all("/users")

    assert [(i.status, i.attempt, i.transport_error) for i in seen] == [
        (None, 1, "ConnectError"),
        (429, 2, None),
        (200, 3, None),
    ]
    assert seen[1].retry_after == 0.5 and seen[1].request_id == "r2" and seen[1].path == "/users"
