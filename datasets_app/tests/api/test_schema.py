import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def component(schema, name):
    return schema["components"]["schemas"][name]


def test_schema_declares_trace_id_as_a_nullable_string_always_present(schema):
    result = component(schema, "Result")

    assert result["properties"]["traceId"]["type"] == "string"
    assert result["properties"]["traceId"]["nullable"] is True
    assert "traceId" in result["required"]


def test_schema_lists_every_endpoint_of_the_contract(schema):
    expected = {
        "/api/projects": {"get", "post"},
        "/api/projects/{projectId}": {"get", "patch", "delete"},
        "/api/projects/{projectId}/members": {"get", "post"},
        "/api/projects/{projectId}/members/{username}": {"delete"},
        "/api/datasets": {"get", "post"},
        "/api/datasets/{datasetId}": {"get", "patch", "delete"},
        "/api/datasets/{datasetId}/versions": {"get"},
        "/api/datasets/{datasetId}/items": {"get", "post"},
        "/api/datasets/{datasetId}/items/bulk": {"post", "delete"},
        "/api/datasets/{datasetId}/items/split": {"post"},
        "/api/datasets/{datasetId}/items/from-results": {"post"},
        "/api/datasets/{datasetId}/items/{itemId}": {"get", "patch", "delete"},
        "/api/datasets/{datasetId}/items/{itemId}/versions": {"get"},
        "/api/datasets/{datasetId}/runs": {"get", "post"},
        "/api/datasets/{datasetId}/runs/{runId}": {"get", "patch"},
        "/api/datasets/{datasetId}/runs/{runId}/cancel": {"post"},
        "/api/datasets/{datasetId}/runs/{runId}/rerun-failed": {"post"},
        "/api/datasets/{datasetId}/runs/{runId}/results": {"get"},
        "/api/datasets/{datasetId}/runs/{runId}/results/{resultId}/annotations": {"get", "post"},
        "/api/datasets/{datasetId}/runs/{runId}/results/{resultId}/annotations/{annotationId}": {"delete"},
        "/api/datasets/{datasetId}/compare": {"post"},
        "/api/targets": {"get"},
        "/api/scorers": {"get"},
        "/api/traces/{traceId}": {"get"},
    }

    assert {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items()} == expected


def test_schema_uses_camel_case_names(schema):
    assert set(component(schema, "Run")["properties"]) >= {
        "datasetId",
        "totalItems",
        "succeededCount",
        "maxConcurrency",
    }
    assert set(component(schema, "Item")["properties"]) >= {"expectedOutput", "datasetId", "createdAt"}
    assert set(component(schema, "Dataset")["properties"]) >= {"inputSchema", "outputSchema", "itemCount"}
    for name, definition in schema["components"]["schemas"].items():
        for field in definition.get("properties", {}):
            assert "_" not in field, (name, field)


def test_list_answers_are_described_with_their_envelope(schema):
    ok = schema["paths"]["/api/datasets/{datasetId}/runs/{runId}/results"]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    envelope = component(schema, ref)

    assert set(envelope["properties"]) == {"results", "pagination"}
    assert set(component(schema, "Pagination")["properties"]) == {"total", "page", "perPage", "hasMore"}
    params = {p["name"] for p in schema["paths"]["/api/datasets/{datasetId}/items"]["get"]["parameters"]}
    assert params >= {"page", "perPage", "search", "version"}


def test_errors_are_documented(schema):
    start = schema["paths"]["/api/datasets/{datasetId}/runs"]["post"]["responses"]
    cancel = schema["paths"]["/api/datasets/{datasetId}/runs/{runId}/cancel"]["post"]["responses"]

    assert set(start) >= {"201", "400", "401", "404"}
    assert "409" in cancel
    assert set(component(schema, "Error")["properties"]) == {"message", "errors"}


def test_swagger_ui_is_served_offline(api):
    response = api.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn" not in response.content.lower()
