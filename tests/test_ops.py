"""Operations: health, readiness, the OpenAPI document, JSON access logs with request ids."""

from __future__ import annotations

import json
import logging

from callhistory.accesslog import JsonFormatter
from callhistory.app import METHODS
from callhistory.config import Settings
from tests.harness import Api, ServerThread, Tenant

LIST = "/v1/shop.Etelecom/ListCallLogs"


def test_health_and_readiness(api: Api) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    assert api.http.get("/readyz").json() == {"status": "ready"}


def test_openapi_describes_every_method_with_its_models(api: Api) -> None:
    doc = api.http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for method in METHODS:
        for prefix in method.prefixes:
            operation = doc["paths"][f"/v1/{prefix}.{method.service}/{method.name}"]["post"]
            request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            response_ref = operation["responses"]["200"]["content"]["application/json"]["schema"][
                "$ref"
            ]
            for ref in (request_ref, response_ref):
                assert ref.split("/")[-1] in doc["components"]["schemas"]
            assert "400" in operation["responses"] and "401" in operation["responses"]
    call_log = doc["components"]["schemas"]["CallLog"]
    assert call_log["properties"]["call_targets"]["items"]["$ref"].endswith("/CallTarget")
    filters = doc["components"]["schemas"]["CallLogFilter"]
    assert filters["additionalProperties"] is False
    assert "call_number" in filters["properties"]


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(JsonFormatter().format(record)))


def test_access_log_is_json_with_request_id(database_url: str, tenant: Tenant) -> None:
    settings = Settings(database_url=database_url, access_log=True)
    capture = Capture()
    with ServerThread(settings) as running:
        logging.getLogger("callhistory.access").addHandler(capture)
        try:
            with Api(running.base_url).http as http:
                headers = {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {tenant.read}",
                }
                tagged = http.post(
                    LIST, content=b"{}", headers={**headers, "X-Request-Id": "req-123"}
                )
                untagged = http.post(LIST, content=b"{}", headers=headers)
        finally:
            logging.getLogger("callhistory.access").removeHandler(capture)
    assert tagged.headers["x-request-id"] == "req-123"
    generated = untagged.headers["x-request-id"]
    assert generated and generated != "req-123"
    by_id = {line["request_id"]: line for line in capture.lines}
    assert by_id["req-123"]["status"] == 200
    assert by_id["req-123"]["tenant_id"] == tenant.id
    assert by_id["req-123"]["path"] == LIST
    assert by_id[generated]["level"] == "info"
