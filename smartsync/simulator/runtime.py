"""The simulator's request pipeline: one entry point, `Simulator.handle`, for every HTTP request.

For a Graph request (`/v1.0/...`) the order is the one a client meets on the real service: an
injected fault (if the dice say so), then the bearer token (401), then throttling (429 with a
`Retry-After` in real seconds; nothing applied), then the Graph handlers of `api.py`. `$batch` runs
each item through the same fault/throttle/handler steps. Login endpoints go to `auth.py`;
`/_simulator/...` are control endpoints for tests and tools (state dump, clock advance, stats).
Everything is recorded in `request_log` and counted in `stats()`.

One lock serialises requests: the tenant is small and in memory, and a serial order makes throttling,
faults and the log reproducible.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartsync.simulator.api import GraphApi
from smartsync.simulator.auth import LoginService, is_login_path
from smartsync.simulator.batch import BatchItem, run_batch
from smartsync.simulator.clock import Clock
from smartsync.simulator.faults import ALL_KINDS, ITEM_KINDS, ConnectionDropped, FaultInjector, FaultSpec
from smartsync.simulator.graph_errors import graph_error
from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.latency import Latency, ServiceTime
from smartsync.simulator.live import LiveService, LiveSettings, parse_live_body
from smartsync.simulator.log import JsonLinesSink, LoggedRequest, loggable_body, write_jsonl
from smartsync.simulator.quirks import Quirks
from smartsync.simulator.tenant import TenantState
from smartsync.simulator.throttle import Throttle, request_cost

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://simulator.smartsync.invalid"
DEFAULT_CLIENT_SECRET = "simulator-client-secret"  # a demo tenant's secret, not a credential anywhere
# What smartsync needs with every feature on (DESIGN §7), so a seedless simulator accepts a full run.
DEFAULT_ROLES = (
    "User.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "AdministrativeUnit.ReadWrite.All",
    "Team.Create",
    "EduRoster.ReadWrite.All",
    "TeamSettings.ReadWrite.All",
    "TeamMember.ReadWrite.All",
    "Application.Read.All",
)
FAULT_RETRY_AFTER_SIM_SECONDS = 1.0
_ENVELOPE_KINDS = frozenset({"503", "504", "drop", "lost"})  # a $batch's own 429s come per item


def default_seed() -> dict[str, Any]:
    return {"app": {"client_secret": DEFAULT_CLIENT_SECRET, "roles": list(DEFAULT_ROLES)}}


def retry_after_text(real_seconds: float) -> str:
    """Seconds for `Retry-After`, rounded UP to the millisecond so that honouring it always suffices."""
    millis = max(1, math.ceil(real_seconds * 1000 - 1e-9))
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis / 1000:.3f}".rstrip("0")


class Simulator:
    """An in-memory Entra tenant speaking Graph v1.0 and the login endpoints, with quotas and faults."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        *,
        time_scale: float = 1.0,
        faults: FaultSpec | None = None,
        throttling: bool = True,
        replication_delay: float = 0.0,
        team_provisioning_time: float = 5.0,
        base_url: str = DEFAULT_BASE_URL,
        clock: Clock | None = None,
        quirks: Iterable[str] = (),
        live: bool | LiveSettings = True,
        latency: Latency | None = None,
        delay: Callable[[float], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # A given clock (e.g. one driven by `VirtualTime`) replaces the scaled real-time one.
        self.clock = clock if clock is not None else Clock(time_scale)
        self.state = TenantState.from_seed(seed if seed is not None else default_seed())
        # The live service's habits (live.py) are on unless switched off: the reference pages alone
        # describe a kinder service than the one a school's first run meets.
        settings = live if isinstance(live, LiveSettings) else (LiveSettings() if live else None)
        self.live = LiveService(settings, self.state) if settings is not None else None
        self.api = GraphApi(
            self.state,
            self.clock,
            base_url=self.base_url,
            replication_delay=replication_delay,
            team_provisioning_time=team_provisioning_time,
            live=self.live,
        )
        self.login = LoginService(self.state, self.clock, self.base_url)
        self.quirks = Quirks(quirks, self.state)  # refusals some live tenants make (quirks.py)
        self.throttle = Throttle(enabled=throttling)
        self.faults = FaultInjector(faults)
        # Service time is spent outside the lock, on the caller's thread (see latency.py); `delay`
        # waits simulated seconds (real ones scaled by the clock unless a virtual time is given).
        self.service_time = ServiceTime(latency)
        self._delay = delay or (lambda seconds: time.sleep(self.clock.to_real(seconds)))
        self.request_log: list[LoggedRequest] = []
        self._sink: JsonLinesSink | None = None
        self._lock = threading.RLock()
        self._batches = 0
        self._counts: dict[str, int] = {
            "requests": 0,
            "round_trips": 0,
            "batch_round_trips": 0,
            "login_requests": 0,
            "ru": 0,
            "writes": 0,
            "throttled": 0,
            "faults": 0,
        }
        self._faults_by_kind: dict[str, int] = dict.fromkeys(ALL_KINDS, 0)

    # --- public API -------------------------------------------------------------------------------

    def handle(self, req: SimRequest) -> SimResponse:
        """The whole pipeline for one HTTP request. Raises `ConnectionDropped` for `drop`/`lost` faults."""
        if req.path.startswith("/_simulator/"):
            return self._control(req)
        with self._lock:
            if is_login_path(req.path):
                return self._handle_login(req)
            operations = self._counts["requests"]
            response = self._handle_graph(req)
            # A $batch's items are served concurrently: it takes about as long as its slowest item.
            service = self.service_time.batch(self._counts["requests"] - operations)
        if service > 0:
            self._delay(service)
        return response

    def transport(self) -> httpx.BaseTransport:
        """An `httpx.BaseTransport` that serves requests in process (any host: use `base_url`)."""
        from smartsync.simulator.transport import SimulatorTransport  # httpx only when asked for

        return SimulatorTransport(self)

    def dump_state(self) -> dict[str, Any]:
        return self.state.dump()

    def stats(self) -> dict[str, Any]:
        """Counts since start: `requests` (Graph operations, each $batch item counted), `round_trips`
        (Graph HTTP requests, a $batch counted once), `batch_round_trips`, `login_requests`, `ru` and
        `writes` charged, `throttled` (429s from quotas), `faults` (injected) and `faults_by_kind`."""
        with self._lock:
            out: dict[str, Any] = dict(self._counts)
            out["faults_by_kind"] = {kind: n for kind, n in self._faults_by_kind.items() if n}
            out["sim_time"] = self.clock.now()
            return out

    def request_log_jsonl(self, path: Path) -> None:
        """Write the request log so far as JSON lines."""
        with self._lock:
            records = list(self.request_log)
        write_jsonl(records, path)

    def log_to(self, path: Path) -> None:
        """Also append every future record to `path` as a JSON line, as it happens."""
        with self._lock:
            if self._sink is not None:
                self._sink.close()
            self._sink = JsonLinesSink(path)

    def close(self) -> None:
        with self._lock:
            if self._sink is not None:
                self._sink.close()
                self._sink = None

    # --- pipeline ---------------------------------------------------------------------------------

    def _record(self, record: LoggedRequest) -> None:
        self.request_log.append(record)
        if record.fault:
            self._counts["faults"] += 1
            self._faults_by_kind[record.fault] += 1
        if record.throttled:
            self._counts["throttled"] += 1
        self._counts["ru"] += record.ru
        self._counts["writes"] += record.writes
        if self._sink is not None:
            self._sink.write(record)

    def _log(
        self,
        req: SimRequest,
        status: int,
        *,
        ru: int = 0,
        writes: int = 0,
        batch_id: str | None = None,
        batch_item_id: str | None = None,
        throttled: bool = False,
        fault: str | None = None,
    ) -> None:
        self._record(
            LoggedRequest(
                method=req.method,
                path=req.path,
                query=dict(req.query),
                body=loggable_body(req.body, req.headers.get("content-type", "")),
                status=status,
                ru=ru,
                writes=writes,
                sim_time=self.clock.now(),
                batch_id=batch_id,
                batch_item_id=batch_item_id,
                throttled=throttled,
                fault=fault,
            )
        )

    def _handle_login(self, req: SimRequest) -> SimResponse:
        self._counts["login_requests"] += 1
        fault = self.faults.draw(ALL_KINDS, login=True)
        if fault == "drop":
            self._log(req, 0, fault=fault)
            raise ConnectionDropped(fault, applied=False)
        if fault in ITEM_KINDS:
            response = self._login_fault_response(fault or "")
            self._log(req, response.status, fault=fault)
            return response
        response = self.login.handle(req)
        self._log(req, response.status, fault=fault)
        if fault == "lost":
            raise ConnectionDropped(fault, applied=True)
        return response

    def _login_fault_response(self, kind: str) -> SimResponse:
        headers = {"retry-after": retry_after_text(self.clock.to_real(FAULT_RETRY_AFTER_SIM_SECONDS))}
        return SimResponse.of_json(
            int(kind),
            {
                "error": "temporarily_unavailable",
                "error_description": "AADSTS50196: The server is temporarily unavailable (simulated fault).",
                "error_codes": [50196],
            },
            headers if kind in {"429", "503"} else None,
        )

    def _fault_response(self, kind: str, req: SimRequest) -> SimResponse:
        client_request_id = req.headers.get("client-request-id", "")
        now = self.clock.now()
        if kind == "429":
            wait = retry_after_text(self.clock.to_real(FAULT_RETRY_AFTER_SIM_SECONDS))
            return graph_error(
                429,
                "TooManyRequests",
                f"Too many requests (simulated fault). Retry after {wait} seconds.",
                now,
                headers={"retry-after": wait},
                client_request_id=client_request_id,
            )
        if kind == "503":
            return graph_error(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable (simulated fault). Retry with a back-off.",
                now,
                client_request_id=client_request_id,
            )
        return graph_error(
            504,
            "UnknownError",
            "The gateway timed out (simulated fault); the request was not applied.",
            now,
            client_request_id=client_request_id,
        )

    def _handle_graph(self, req: SimRequest) -> SimResponse:
        self._counts["round_trips"] += 1
        is_batch = req.method == "POST" and req.path.rstrip("/").lower() == "/v1.0/$batch"
        fault = self.faults.draw(_ENVELOPE_KINDS if is_batch else ALL_KINDS)
        if not is_batch:
            self._counts["requests"] += 1
        if fault == "drop":
            self._log(req, 0, fault=fault)
            raise ConnectionDropped(fault, applied=False)
        if fault in ITEM_KINDS:
            response = self._fault_response(fault or "", req)
            self._log(req, response.status, fault=fault)
            return response
        principal = self.login.authenticate(req)
        if isinstance(principal, SimResponse):
            self._log(req, principal.status, fault=fault)
            if fault == "lost":
                raise ConnectionDropped(fault, applied=True)
            return principal
        if is_batch:
            response = self._handle_batch(req, principal, fault)
        else:
            response = self._apply(req, principal, fault=fault)
        if fault == "lost":
            raise ConnectionDropped(fault, applied=True)
        return response

    def _handle_batch(self, req: SimRequest, principal: Principal, fault: str | None) -> SimResponse:
        self._counts["batch_round_trips"] += 1
        self._batches += 1
        batch_id = str(self._batches)

        def run_item(item: BatchItem) -> SimResponse:
            self._counts["requests"] += 1
            item_fault = self.faults.draw(ITEM_KINDS)
            if item_fault is not None:
                response = self._fault_response(item_fault, item.request)
                self._log(
                    item.request, response.status, batch_id=batch_id, batch_item_id=item.id, fault=item_fault
                )
                return response
            return self._apply(item.request, principal, batch_id=batch_id, batch_item_id=item.id)

        def record_skipped(item: BatchItem, response: SimResponse) -> None:
            self._counts["requests"] += 1
            self._log(item.request, response.status, batch_id=batch_id, batch_item_id=item.id)

        response = run_batch(req, run_item, self.clock.now, record_skipped)
        if self.live is not None:
            response = self.live.shuffle(response)
        self._log(req, response.status, batch_id=batch_id, fault=fault)
        return response

    def _apply(
        self,
        req: SimRequest,
        principal: Principal,
        *,
        fault: str | None = None,
        batch_id: str | None = None,
        batch_item_id: str | None = None,
    ) -> SimResponse:
        """Throttle, then run the Graph handler: the part shared by plain requests and batch items."""
        cost = request_cost(req.method, req.path, req.query)
        now = self.clock.now()
        wait = self.throttle.admit(principal.app_id, cost, now, self.state.user_count())
        if wait > 0.0:
            retry_after = retry_after_text(self.clock.to_real(wait))
            response = graph_error(
                429,
                "TooManyRequests",
                f"Too many requests: this application's quota for the tenant is spent. "
                f"Retry after {retry_after} seconds.",
                now,
                headers={"retry-after": retry_after},
                client_request_id=req.headers.get("client-request-id", ""),
            )
            self._log(req, 429, batch_id=batch_id, batch_item_id=batch_item_id, throttled=True, fault=fault)
            return response
        refused = self.quirks.refusal(req, now)
        response = refused or self.api.handle(req, principal)
        response.headers.setdefault("x-ms-resource-unit", str(cost.ru))
        # As Graph does, past 80 % of a quota: how much of it is used (0.8 to 1.8).
        used = self.throttle.usage(principal.app_id, now)
        if used > 0.8:
            response.headers.setdefault("x-ms-throttle-limit-percentage", f"{min(used, 1.8):.2f}")
        self._log(
            req,
            response.status,
            ru=cost.ru,
            writes=cost.writes,
            batch_id=batch_id,
            batch_item_id=batch_item_id,
            fault=fault,
        )
        return response

    # --- control endpoints ------------------------------------------------------------------------

    def _live_control(self, action: str, req: SimRequest) -> SimResponse:
        """`POST /_simulator/live/{lock-group|refuse-guest|unit-role}` with a JSON body, for tests."""
        if self.live is None:
            return SimResponse.of_json(409, {"error": "the live behaviours are off (serve --live)"})
        try:
            body = parse_live_body(req.body)
            with self._lock:
                if action == "lock-group":
                    self.live.lock_group(str(body["group"]), str(body["kind"]))
                elif action == "refuse-guest":
                    self.live.refuse_guest(str(body["user"]))
                elif action == "unit-role":
                    self.live.unit_role = bool(body.get("granted", True))
                else:
                    return SimResponse.of_json(404, {"error": f"no live control {action!r}"})
        except (KeyError, ValueError) as exc:
            return SimResponse.of_json(400, {"error": f"bad live control body: {exc}"})
        return SimResponse.of_json(200, {"ok": True})

    def _control(self, req: SimRequest) -> SimResponse:
        action = req.path[len("/_simulator/") :].strip("/")
        if req.method == "GET" and action == "state":
            return SimResponse.of_json(200, self.dump_state())
        if req.method == "GET" and action == "stats":
            return SimResponse.of_json(200, self.stats())
        if req.method == "POST" and action == "clock/advance":
            try:
                seconds = float(req.query.get("seconds", ""))
            except ValueError:
                return SimResponse.of_json(400, {"error": "seconds must be a number, e.g. ?seconds=60"})
            if seconds < 0 or not math.isfinite(seconds):
                return SimResponse.of_json(400, {"error": "seconds must be a finite number of 0 or more"})
            self.clock.advance(seconds)
            return SimResponse.of_json(200, {"now": self.clock.now()})
        if req.method == "POST" and action.startswith("live/"):
            return self._live_control(action[len("live/") :], req)
        return SimResponse.of_json(
            404, {"error": f"no control endpoint {req.method} {req.path}; try GET /_simulator/state"}
        )
