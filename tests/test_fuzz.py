"""Schemathesis against the served OpenAPI document: for every method, generated valid and
invalid requests (bounded); never a 5xx, and every answer in its documented shape."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.harness import ServerThread, new_tenant


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_documented_shapes(server: ServerThread, database_url: str, mode: Any) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the contract is the same on every backend; fuzzed once")
    key = new_tenant(database_url, name="fuzz").admin
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

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
