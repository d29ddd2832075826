"""The simulator over real HTTPS: msal gets a token and a client lists users through a TLS socket."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest
from test_sim_support import CLIENT_ID, ROLES, SECRET, TENANT_ID, MsalHttpClient, jwt_payload, make_seed

from smartsync.simulator import FaultSpec, Simulator
from smartsync.simulator.server import RunningServer, start_server


def https_client(ca_cert: Path, base_url: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(ca_cert)), base_url=base_url, **kwargs)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(
        lambda base_url: Simulator(make_seed(users=5), base_url=base_url), cert_dir=tmp_path
    )
    yield running
    running.shutdown()


def test_msal_and_httpx_work_over_https(server: RunningServer) -> None:
    assert server.base_url.startswith("https://127.0.0.1:")
    http = MsalHttpClient(https_client(server.ca_cert, server.base_url))
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=SECRET,
        authority=f"{server.base_url}/{TENANT_ID}",
        http_client=http,
        instance_discovery=False,  # the default would ask the public login host about this one
    )

    result = app.acquire_token_for_client(scopes=[f"{server.base_url}/.default"])

    assert "access_token" in result, result
    assert sorted(jwt_payload(result["access_token"])["roles"]) == sorted(ROLES)
    headers = {"Authorization": f"Bearer {result['access_token']}"}
    with https_client(server.ca_cert, server.base_url, headers=headers) as client:
        first = client.get("/v1.0/users", params={"$top": "2", "$select": "id,userPrincipalName"})
        assert first.status_code == 200, first.text
        names = [user["userPrincipalName"] for user in first.json()["value"]]
        next_link = first.json()["@odata.nextLink"]
        assert next_link.startswith(server.base_url)  # links name the address the client really uses
        while next_link:
            page = client.get(next_link).json()
            names += [user["userPrincipalName"] for user in page["value"]]
            next_link = page.get("@odata.nextLink")
        state = client.get("/_simulator/state").json()
        advanced = client.post("/_simulator/clock/advance", params={"seconds": "60"}).json()
    http.close()

    assert sorted(names) == [f"user{n}@school.example" for n in range(5)]
    assert state["tenant_id"] == TENANT_ID and len(state["users"]) == 5
    assert advanced["now"] >= server.simulator.clock.now() - 1 and advanced["now"] > time.time() + 50
    assert any(r.path.endswith("/oauth2/v2.0/token") for r in server.simulator.request_log)


def test_a_dropped_connection_reaches_the_client_as_a_protocol_error(tmp_path: Path) -> None:
    running = start_server(
        lambda base_url: Simulator(
            make_seed(), base_url=base_url, faults=FaultSpec(rate=1.0, seed=1, kinds=("drop",))
        ),
        cert_dir=tmp_path,
    )
    try:
        with (
            https_client(running.ca_cert, running.base_url) as client,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            client.get("/v1.0/users")
    finally:
        running.shutdown()
    assert running.simulator.stats()["faults_by_kind"] == {"drop": 1}


def test_cli_serve_writes_the_ready_file_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    seed_path = tmp_path / "seed.json"
    seed_path.write_text(json.dumps(make_seed(users=2)), encoding="utf-8")
    ready = tmp_path / "ready.json"
    log = tmp_path / "requests.jsonl"
    command = [
        sys.executable, "-m", "smartsync", "simulator", "serve", "--port", "0", "--state", str(seed_path),
        "--request-log", str(log), "--ready-file", str(ready), "--cert-dir", str(tmp_path / "certs"),
        "--time-scale", "100",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), process.stderr.read() if process.stderr else ""
        info = json.loads(ready.read_text(encoding="utf-8"))
        with https_client(Path(info["ca_cert"]), info["base_url"]) as client:
            token = client.post(
                f"/{TENANT_ID}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": SECRET,
                    "scope": "https://graph.microsoft.com/.default",
                },
            ).json()["access_token"]
            users = client.get("/v1.0/users", headers={"Authorization": f"Bearer {token}"})
        assert users.status_code == 200 and len(users.json()["value"]) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)

    assert process.returncode == 0, stderr
    assert info["base_url"] in stdout and info["ca_cert"] in stdout
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["path"] for r in records] == [f"/{TENANT_ID}/oauth2/v2.0/token", "/v1.0/users"]
    assert SECRET not in log.read_text(encoding="utf-8")
    assert not ready.exists()


def test_cli_serve_rejects_a_bad_fault_spec_with_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from smartsync.cli import cli

    result = CliRunner().invoke(cli, ["simulator", "serve", "--port", "0", "--faults", "rate=5"])
    assert result.exit_code == 2
    assert "between 0 and 1" in result.output
