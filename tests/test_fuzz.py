"""Schemathesis against the served OpenAPI document: for every method, generated valid and
invalid requests (bounded); never a 5xx, and every answer in its documented shape."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.harness import ServerThread, new_tenant


@pytest.mark.only_on("sqlite")  # the contract is the same on every backend: fuzzed once
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_documented_shapes(server: ServerThread, database_url: str, mode: Any) -> None:
    key = new_tenant(database_url, name="fuzz").admin
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    if mode == GenerationMode.NEGATIVE:  # the health checks take no input to get wrong
        operations = [op for op in operations if op.method.upper() == "POST"]

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {key}"})
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        check()


@pytest.mark.only_on("sqlite")
def test_raw_bytes_never_get_a_5xx(server: ServerThread, database_url: str) -> None:
    """Bodies no schema describes: arbitrary bytes, and JSON with bytes that are not UTF-8,
    overlong or cut-short sequences, lone surrogates and NULs spliced in."""
    import httpx
    from hypothesis import strategies as st

    tenant = new_tenant(database_url, name="raw fuzz")
    paths = [
        path for path in httpx.get(server.base_url + "/openapi.json").json()["paths"]
        if path.startswith("/v1/")
    ] + ["/ingest/freeswitch"]  # fmt: skip
    assert len(paths) >= 20
    splices = st.sampled_from(
        [
            b"\xff",
            b"\xfe\xff",
            b"\xc0\xaf",
            b"\xe1\xbb",
            b"\xed\xa0\x80",
            b"\\ud800",
            b"\x00",
            b"\x80",
        ]
    )
    documents = st.sampled_from(
        [
            b'{"filter": {"call_number": "0912@"}}',
            b'{"call_logs": [{"source_id": "@", "started_at": "2025-01-01T00:00:00Z"}]}',
            b'{"hotline": "@"}',
            b'{"variables": {"uuid": "@", "start_uepoch": "1"}}',
            b"cdr=%7B%22variables%22%3A%7B%22uuid%22%3A%22@%22%7D%7D",
        ]
    )
    bodies = st.one_of(
        st.binary(max_size=200),
        st.builds(lambda doc, bad: doc.replace(b"@", bad), documents, splices),
    )
    basic = base64.b64encode(f"freeswitch:{tenant.ingest}".encode()).decode()
    with httpx.Client(base_url=server.base_url) as client:

        @given(path=st.sampled_from(paths), body=bodies)
        @settings(max_examples=300, deadline=None, database=None)
        def check(path: str, body: bytes) -> None:
            auth = f"Basic {basic}" if path.startswith("/ingest") else f"Bearer {tenant.admin}"
            response = client.post(
                path,
                content=body,
                headers={"Content-Type": "application/json", "Authorization": auth},
            )
            assert response.status_code < 500, (path, body, response.text)
            assert response.json()["code"] in ("malformed", "invalid_argument", "not_found"), (
                path,
                body,
            )

        check()
