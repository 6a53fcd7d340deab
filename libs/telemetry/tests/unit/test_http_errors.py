"""Invalid requests get a 4xx that says what is wrong; bugs a 500 without internals."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from integr8scode_telemetry import install_request_error_handlers


class Body(BaseModel):
    name: str = Field(min_length=2)


def _client() -> TestClient:
    app = FastAPI()
    install_request_error_handlers(app)

    @app.post("/things")
    async def create(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/things")
    async def things() -> list[str]:
        return []

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such thing")

    router = APIRouter(prefix="/api/v1")

    @router.get("/items/{item_id}")
    async def item(item_id: str) -> str:
        return item_id

    @router.delete("/items/{item_id}")
    async def drop(item_id: str) -> None:
        return None

    app.include_router(router)

    return TestClient(app, raise_server_exceptions=False)


def test_malformed_json_is_a_400_saying_where() -> None:
    response = _client().post(
        "/things", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed JSON body: ")
    assert "at character" in response.json()["detail"]


def test_invalid_fields_are_a_422_naming_each() -> None:
    response = _client().post("/things", json={"name": "x"})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("invalid request: name: ")
    assert [e["field"] for e in body["errors"]] == ["name"]


def test_a_bug_is_a_500_without_internals() -> None:
    response = _client().get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


def test_the_openapi_document_describes_the_400_and_422_as_answered() -> None:
    client = _client()
    schema = client.get("/openapi.json").json()
    responses = schema["paths"]["/things"]["post"]["responses"]
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    body = schema["components"]["schemas"]["HTTPValidationError"]
    assert body["required"] == ["detail", "errors"]
    assert body["properties"]["detail"]["type"] == "string"
    assert "ValidationError" not in schema["components"]["schemas"]
    # ... and the answer has exactly that shape.
    answer = client.post("/things", json={"name": "x"}).json()
    assert set(answer) == {"detail", "errors"}
    field = schema["components"]["schemas"]["FieldError"]
    assert set(answer["errors"][0]) == set(field["properties"]) == set(field["required"])
    assert "400" not in schema["paths"]["/boom"]["get"]["responses"]  # no body, no 400


def test_a_405_allows_every_method_of_the_path() -> None:
    # FastAPI makes one route per method; Starlette would name only the first route's.
    for method in ("DELETE", "OPTIONS", "PUT"):
        response = _client().request(method, "/things")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, POST"
        assert response.json() == {"detail": "Method Not Allowed"}


def test_a_405_on_an_included_router_with_a_parameter_allows_its_methods() -> None:
    response = _client().put("/api/v1/items/42")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD"


def test_other_http_errors_answer_as_before() -> None:
    response = _client().get("/missing")
    assert (response.status_code, response.json()) == (404, {"detail": "no such thing"})
    assert _client().get("/nowhere").status_code == 404
