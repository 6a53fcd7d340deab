"""Every service's OpenAPI, fuzzed (schemathesis, stateless) with valid tokens: no 5xx, and
every answer is one the document promises (status code, content type, headers, body schema);
invalid requests are refused.

Each operation gets positive cases (valid by its schema) and negative ones (invalid by it),
sent with a fresh user's token, or the admin's on admin routes. Bounded: a few examples per
operation, no shrinking, so the five services together take about a minute on 2 cores.

What is held back, and why:

- ``POST /api/v1/replay/sessions`` only ever sends dry runs (``dry_run: true``): a real session
  replays stored events into Kafka (into their original topics by default), which would feed
  the running coordinator and notifier. A negative case without ``dry_run: true`` is not sent.
- ``PUT``/``DELETE /api/v1/admin/rate-limits/{name}`` change the live rules of the shared api:
  the rules fuzzed are named ``fuzz-*`` and match no route (their glob is replaced by one
  that matches nothing), and the teardown deletes them.
- ``POST /api/v1/execute`` runs programs in the sandbox: few examples (the coordinator's
  queue is shared with the other tests).
- ``/health/ready`` answers 503 by contract when a dependency is slow: the no-5xx check is off
  there (its status codes and body are still checked).
- ``positive_data_acceptance`` is not checked: some rules are not expressible in the schema
  (password strength, known event types, from < to, safe webhook URLs); what matters is that
  such a request gets a 4xx with a message, which the no-5xx and status-code checks enforce.
- ``allow_header_conformance`` is not checked: a 405 lists the methods of the one route
  Starlette matched, not every method of the path (framework behaviour, not our contract).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import ADMIN
from tests.stack import local_stack

AnyCase = Case[Any]
STACK = local_stack()
API = STACK.services["integr8scode-backend"]
SERVICES = sorted(STACK.services.items())
EXAMPLES = 10  # per operation and generation mode
FEW = 4  # operations with side effects on the shared stack
REQUEST_TIMEOUT_S = 30
MAX_REPORTED = 25
FUZZ_RULE_PREFIX = "fuzz-"
NEVER_MATCHES = "GET /fuzz/never/*"
RULE_NAME_MAX = 64
RULE_NAME = r"[a-z0-9][a-z0-9_.-]{0,63}"  # the api's rule names

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
_STRICT_LOCATIONS = {ParameterLocation.PATH, ParameterLocation.BODY}
ADMIN_PREFIXES = ("/api/v1/admin/", "/api/v1/dlq/", "/api/v1/replay/")


@dataclasses.dataclass
class Finding:
    operation: str
    mode: str
    failure: str
    reproduce: str

    def __str__(self) -> str:
        return f"{self.operation} [{self.mode}] {self.failure}\n    {self.reproduce}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one operation is fuzzed: whose token, how many examples, what a case must be."""

    headers: dict[str, str]
    examples: int = EXAMPLES
    # Makes a case safe to send, or steers a valid one past rules the schema can't say (a
    # valid case stays valid, an invalid one invalid).
    adjust: Callable[[AnyCase], None] | None = None
    adjust_invalid: bool = False
    # False: the case is not sent (it could do what the test must not do).
    safe: Callable[[AnyCase], bool] = lambda _case: True
    checks: tuple[Any, ...] = tuple(CHECKS)


def _is_dry_run(case: AnyCase) -> bool:
    return isinstance(case.body, dict) and case.body.get("dry_run") is True


def _as_dry_run(case: AnyCase) -> None:
    """Makes the session a dry run (a ``dry_run`` the schema refuses is left as it is) with at
    least one filter, so that valid cases get past the "at least one filter" rule."""
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("dry_run", False), bool):
        body["dry_run"] = True
    filters = body.get("filters")
    if isinstance(filters, dict) and not any(v is not None for v in filters.values()):
        filters["user_id"] = "fuzz"


def _a_python_run(case: AnyCase) -> None:
    """A valid execute request in a language that exists (the rest stays fuzzed)."""
    if isinstance(case.body, dict):
        case.body["language"] = "python"
        case.body.pop("language_version", None)


def _fuzz_rule(case: AnyCase) -> None:
    """A rule named ``fuzz-*`` whose glob matches nothing; values the schema refuses are left
    as they are, so a negative case stays negative."""
    params = case.path_parameters or {}
    name = params.get("name")
    if isinstance(name, str) and name and not name.startswith(FUZZ_RULE_PREFIX):
        candidate = (FUZZ_RULE_PREFIX + name)[:RULE_NAME_MAX]
        if _valid_rule(name):  # renamed only when valid (it stays valid)
            params["name"] = candidate
    body = case.body
    pattern = body.get("pattern") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(pattern, str) and 1 <= len(pattern) <= 200:
        body["pattern"] = NEVER_MATCHES


def _only_fuzz_rules(case: AnyCase) -> bool:
    """Never a rule of another name (a name the api refuses changes nothing)."""
    name = (case.path_parameters or {}).get("name")
    return not isinstance(name, str) or name.startswith(FUZZ_RULE_PREFIX) or not _valid_rule(name)


def _valid_rule(name: str) -> bool:
    return re.fullmatch(RULE_NAME, name) is not None


def _plan(
    method: str, path: str, user: dict[str, str], executor: dict[str, str], admin: dict[str, str]
) -> Plan:
    headers = admin if path.startswith(ADMIN_PREFIXES) else user
    checks = tuple(CHECKS)
    if path == "/health/ready":
        checks = tuple(c for c in CHECKS if c is not not_a_server_error)
    if method == "POST" and path == "/api/v1/replay/sessions":
        return Plan(
            headers, examples=FEW, adjust=_as_dry_run, adjust_invalid=True, safe=_is_dry_run
        )
    if path == "/api/v1/admin/rate-limits/{name}" and method in {"PUT", "DELETE"}:
        return Plan(headers, adjust=_fuzz_rule, adjust_invalid=True, safe=_only_fuzz_rules)
    if method == "POST" and path == "/api/v1/execute":
        # Its own user: the fuzzed notification settings must not get these runs' webhooks.
        return Plan(executor, examples=FEW, adjust=_a_python_run)
    return Plan(headers, checks=checks)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass(frozen=True)
class Tokens:
    user: dict[str, str]
    executor: dict[str, str]
    admin: dict[str, str]


def _new_user(http: httpx.Client) -> dict[str, str]:
    username, password = f"fuzz_{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    credentials = {"username": username, "password": password}
    registered = http.post("/api/v1/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    login = http.post("/api/v1/auth/login", json=credentials)
    assert login.status_code == 200, login.text
    return _bearer(login.json()["access_token"])


@pytest.fixture(scope="module")
def tokens() -> Iterator[Tokens]:
    """Two fresh users' bearer headers and the admin's; deletes the fuzzed rules afterwards."""
    with httpx.Client(base_url=API, timeout=30) as http:
        login = http.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert login.status_code == 200, login.text
        admin = _bearer(login.json()["access_token"])
        yield Tokens(user=_new_user(http), executor=_new_user(http), admin=admin)
        rules = http.get("/api/v1/admin/rate-limits", headers=admin)
        for rule in rules.json() if rules.status_code == 200 else []:
            if str(rule["name"]).startswith(FUZZ_RULE_PREFIX):
                http.delete(f"/api/v1/admin/rate-limits/{rule['name']}", headers=admin)


def _fuzz_operation(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    plan: Plan,
    session: requests.Session,
    findings: list[Finding],
) -> int:
    label = f"{operation.method.upper()} {operation.path}"
    sent = 0
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(
        max_examples=plan.examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a finding is reported as sent
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, _=st.just(None))
    def run(case: AnyCase, _: None) -> None:
        nonlocal sent
        if plan.adjust is not None and (mode is GenerationMode.POSITIVE or plan.adjust_invalid):
            plan.adjust(case)
        if not plan.safe(case):
            return
        sent += 1
        checks = list(plan.checks)
        if mode is GenerationMode.NEGATIVE and not _invalid_where_it_counts(case):
            checks.remove(negative_data_rejection)
        try:
            case.call_and_validate(
                session=session,
                headers=plan.headers,
                checks=checks,
                timeout=REQUEST_TIMEOUT_S,
            )
        except (Failure, FailureGroup) as exc:
            findings.append(
                Finding(label, mode.value, _first_line(exc), case.as_curl_command(plan.headers))
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing in the operation can be made invalid (no parameters, no body).
        if mode is not GenerationMode.NEGATIVE:
            raise
    return sent


def _invalid_where_it_counts(case: AnyCase) -> bool:
    """Whether the case is invalid in its path or body. Invalid query strings and headers are
    sent but not required to be refused: the frameworks ignore unknown query parameters and
    take the last of a repeated one, and the test's own Authorization header replaces a
    generated one."""
    components = case.meta.components if case.meta is not None else {}
    return any(
        location in _STRICT_LOCATIONS and info.mode is GenerationMode.NEGATIVE
        for location, info in components.items()
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " | ".join(line.strip() for line in text.splitlines()[:6] if line.strip())


@pytest.mark.parametrize(("service", "base_url"), SERVICES, ids=[name for name, _ in SERVICES])
def test_the_openapi_holds_under_fuzzing(service: str, base_url: str, tokens: Tokens) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=30)
    findings: list[Finding] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"{service}: an operation is not valid OpenAPI: {result}"
        operations.append(result.ok())
    assert operations, f"{service} documents no operation"
    sent = 0
    with requests.Session() as session:
        for operation in operations:
            plan = _plan(
                operation.method.upper(), operation.path, tokens.user, tokens.executor, tokens.admin
            )
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                sent += _fuzz_operation(operation, mode, plan, session, findings)
    assert sent >= len(operations), f"{service}: only {sent} requests sent"
    report = "\n".join(str(f) for f in findings[:MAX_REPORTED])
    assert not findings, f"{service}: {len(findings)} findings in {sent} requests:\n{report}"
