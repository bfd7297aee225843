"""Schema patterns run on RE2: linear time whatever the pattern, and patterns RE2
cannot run are refused when the schema is saved."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from datasets_app.models import Dataset, DatasetItem

pytestmark = pytest.mark.django_db

EVIL = "^(a+)+$"  # Python's re backtracks for seconds to minutes before rejecting ITEM
ITEM = "a" * 30 + "!"


def create(api, **schemas):
    return api.post("/api/datasets", {"name": "Patterns", **schemas}, format="json")


def add_item(api, dataset_id, input):
    return api.post(f"/api/datasets/{dataset_id}/items", {"input": input}, format="json")


def test_a_catastrophic_pattern_rejects_the_item_naming_the_path(api):
    dataset = create(api, inputSchema={"type": "object", "properties": {"code": {"type": "string", "pattern": EVIL}}})

    response = add_item(api, dataset.json()["id"], {"code": ITEM})

    assert response.status_code == 400
    assert response.json()["errors"] == {"input/code": [f"'{ITEM}' does not match '{EVIL}'"]}
    assert add_item(api, dataset.json()["id"], {"code": "aaaa"}).status_code == 201


def test_pattern_properties_and_additional_properties_match_keys_with_re2(api):
    schema = {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}, "additionalProperties": False}
    dataset = create(api, inputSchema=schema)

    response = add_item(api, dataset.json()["id"], {"aaa": 1, ITEM: 2})

    assert response.status_code == 400
    assert response.json()["errors"] == {"input": [f"'{ITEM}' does not match any of the regexes: '{EVIL}'"]}
    matched = add_item(api, dataset.json()["id"], {"aaa": "x"})
    assert matched.json()["errors"] == {"input/aaa": ["'x' is not of type 'integer'"]}


@pytest.mark.parametrize(
    ("schema", "pattern"),
    [
        ({"pattern": "(a)\\1"}, "(a)\\\\1"),
        ({"properties": {"q": {"pattern": "^(?=x)"}}}, "^(?=x)"),
        ({"patternProperties": {"(?<!a)b": {}}}, "(?<!a)b"),
        ({"$schema": "http://json-schema.org/draft-07/schema#", "items": {"pattern": "(x)\\1"}}, "(x)\\\\1"),
    ],
)
def test_a_pattern_re2_cannot_run_is_400_naming_the_field(api, schema, pattern):
    response = create(api, outputSchema=schema)

    assert response.status_code == 400
    message = response.json()["errors"]["outputSchema"][0]
    assert f"the pattern '{pattern}' is not supported" in message
    assert "uses a feature RE2 does not support (backreferences/lookaround)" in message
    assert not Dataset.objects.exists()


def test_unicode_classes_are_patterns_too(api):
    """RE2 (like JSON Schema's ECMA-262 regexes) knows \\p{L}; Python's re does not."""
    dataset = create(api, inputSchema={"type": "string", "pattern": "^\\p{L}+$"})

    assert dataset.status_code == 201
    assert add_item(api, dataset.json()["id"], "Zürich").status_code == 201
    assert add_item(api, dataset.json()["id"], "Zürich 8001").status_code == 400


def test_pattern_properties_with_unevaluated_properties_is_400(api):
    """jsonschema matches patternProperties keys with Python's re inside unevaluatedProperties."""
    response = create(api, inputSchema={"patternProperties": {EVIL: {}}, "unevaluatedProperties": False})

    assert response.status_code == 400
    assert "unevaluatedProperties" in response.json()["errors"]["inputSchema"][0]


@pytest.mark.parametrize(
    ("ref", "reason"),
    [("#", "refers back to itself without end"), ("#/$defs/missing", "cannot resolve $ref")],
)
def test_a_ref_that_cannot_be_applied_is_400_naming_the_schema(api, ref, reason):
    dataset = create(api, inputSchema={"$ref": ref})

    response = add_item(api, dataset.json()["id"], {"q": 1})

    assert response.status_code == 400
    assert "the dataset's input schema cannot be applied" in response.json()["errors"]["input"][0]
    assert reason in response.json()["errors"]["input"][0]
    assert not DatasetItem.objects.exists()


@pytest.fixture
def schema_server():
    """A loopback server that would hand out {"type": "string"} and counts who asks."""
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = json.dumps({"type": "string"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_a_remote_ref_is_never_fetched(api, schema_server):
    url, requests = schema_server
    dataset = create(api, inputSchema={"$ref": f"{url}/schema.json"})

    response = add_item(api, dataset.json()["id"], "text")

    assert response.status_code == 400
    assert f"cannot resolve $ref '{url}/schema.json'" in response.json()["errors"]["input"][0]
    assert requests == []
