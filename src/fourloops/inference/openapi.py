"""The server's self-description: ``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs``.

Every route is described with its request and response bodies. The request
schema of each model comes from its contract (the same rules the server
enforces, strictly by JSON type), so clients can generate code or validate
requests before sending them; the tests check that the server's answers
match the documented responses and that the schema and the server accept
exactly the same requests (no string or key of a body may hold NUL, which
:func:`fourloops.inference.http.parse_json` refuses: every request schema says
so with a ``pattern``). ``/docs`` is :mod:`fourloops.inference.docs`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fourloops.definitions.model import Task
from fourloops.inference.docs import docs_routes
from fourloops.inference.http import NUL_FREE, JSONResponse
from fourloops.inference.service import SHADOW_SUFFIX, ModelService
from fourloops.storage.events import MAX_REQUEST_ID_CHARS

__all__ = ["MAX_REQUEST_ID", "description_routes", "openapi_spec"]

#: The longest ``request_id`` a client may choose (published here, enforced by the app).
MAX_REQUEST_ID = 200


def description_routes(services: Mapping[str, ModelService], *, rollouts: bool = False) -> list[BaseRoute]:
    """The ``/openapi.json`` and ``/docs`` routes for ``services`` (and the rollout routes, if served)."""

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec(services, rollouts=rollouts))

    models = {n: s.model.description or n for n, s in services.items()}
    return [Route("/openapi.json", openapi, methods=["GET"]), *docs_routes(models)]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int, conflict: str = "") -> dict[str, Any]:
    said = {
        400: "malformed body: not JSON, or the wrong shape",
        401: "missing or wrong bearer token; nothing changed",
        409: conflict or "refused by the registry (unknown version, failed gates, nothing to roll back)",
        413: "body or number of instances over the limit",
        422: "contract violation: each field and the rule it broke",
        429: "rate limited; Retry-After says when to come back",
        503: "not ready, overloaded, or the prediction could not be logged (never acknowledged)",
    }
    return {str(s): _json(_ref("Error"), said[s]) for s in statuses}


#: The 409 of a prediction route.
DUPLICATE = (
    "duplicate_request_id: the request id (or a row's <id>-<row>) was already used by a logged "
    "prediction within server.request_id_window; nothing was logged"
)

#: Where each view's features of an answer came from: ok, missing or expired (see the event log).
FEATURE_STATUS = {
    "type": "object",
    "additionalProperties": {"type": "string", "enum": ["ok", "missing", "expired"]},
    "description": "per feature view looked up in the online store: ok, missing (no value for the "
    "key: defaults or nulls were used) or expired (older than the view's ttl); empty when the "
    "request carried every feature",
}


def _prediction_schema(task: Task, actions: list[str] | None = None) -> dict[str, Any]:
    if task is Task.POLICY:
        return {"type": "string", "enum": list(actions or []), "description": "the action chosen"}
    if task is Task.MULTICLASS:
        return {"type": "array", "items": {"type": "number"}, "description": "one probability per class"}
    if task is Task.BINARY:
        return {"type": "number", "description": "probability of the positive class"}
    return {"type": "number"}


#: The fields a decision model's answer carries beside the prediction (its action).
_DECISION: dict[str, Any] = {
    "action": {"type": "string", "description": "the action chosen (also the prediction)"},
    "propensity": {
        "type": "number",
        "description": "the probability the served policy gave this action (on the route that answered)",
    },
    "exploration_rate": {"type": "number", "description": "the exploration rate applied to this request"},
    "expected_reward": {"type": ["number", "null"], "description": "the predicted reward of the action"},
}


def _common_schemas() -> dict[str, Any]:
    tensor_data = {"type": "array", "items": {"type": ["number", "string", "boolean", "null"]}}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["type", "message"],
                    "properties": {
                        "type": {"type": "string", "description": "machine-readable kind"},
                        "message": {"type": "string", "description": "one line for a human"},
                        "field": {"type": "string"},
                        "violations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "rule"],
                                "properties": {"field": {"type": "string"}, "rule": {"type": "string"}},
                            },
                        },
                    },
                }
            },
        },
        "RequestId": {
            "type": ["string", "null"],
            "minLength": 1,
            "maxLength": MAX_REQUEST_ID,
            "not": {"type": "string", "pattern": re.escape(SHADOW_SUFFIX) + "$"},
            "description": "yours to choose (unique); the server makes one when absent",
        },
        "InferTensor": {
            "type": "object",
            "description": "input: a field of the model's request contract; output: 'prediction'",
            "required": ["name", "data"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"},
                "data": tensor_data,
            },
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": _ref("RequestId"),
                "inputs": {"type": "array", "minItems": 1, "items": _ref("InferTensor")},
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "id", "outputs", "parameters"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string", "description": "comma-separated when routes differed"},
                "id": {"type": "string"},
                "outputs": {
                    "type": "array",
                    "items": {"allOf": [_ref("InferTensor"), {"required": ["shape", "datatype"]}]},
                },
                "parameters": {
                    "type": "object",
                    "required": ["fallback", "request_ids"],
                    "properties": {
                        "fallback": {"type": "boolean"},
                        "request_ids": {"type": "array", "items": {"type": "string"}},
                        "feature_status": {"type": "array", "items": FEATURE_STATUS},
                    },
                },
            },
        },
        "Label": {
            "type": "object",
            "required": ["request_id", "value"],
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID_CHARS},
                "value": {
                    "type": ["string", "number", "boolean"],
                    "description": "the ground truth (a class, a number or a boolean)",
                },
            },
        },
        "LabelStats": {
            "type": "object",
            "required": ["inserted", "duplicates", "unknown"],
            "properties": {
                "inserted": {"type": "integer", "minimum": 0},
                "duplicates": {"type": "integer", "minimum": 0},
                "unknown": {"type": "integer", "minimum": 0, "description": "request ids never logged"},
            },
        },
        "AliasChange": {
            "type": "object",
            "required": ["model", "alias", "previous", "current"],
            "properties": {
                "model": {"type": "string"},
                "alias": {"type": "string"},
                "previous": {"type": ["integer", "null"]},
                "current": {"type": ["integer", "null"]},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"type": "object"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
            },
        },
        "ModelReady": {
            "type": "object",
            "required": ["name", "ready"],
            "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        },
        "Status": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "ready", "not_ready"]},
                "models": {"type": "object", "description": "routing table of each served model"},
                "problems": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    }


def _model_paths(name: str, service: ModelService) -> tuple[dict[str, Any], dict[str, Any]]:
    """The paths and component schemas of one served model."""
    inputs, answer = f"{name}.inputs", f"{name}.prediction"
    schemas = {
        inputs: service.validator.json_schema(),
        answer: {
            "type": "object",
            "required": ["request_id", "model", "version", "route", "prediction", "fallback"],
            "properties": {
                "request_id": {"type": "string"},
                "model": {"type": "string", "const": name},
                "version": {
                    "type": "integer",
                    "description": "the version that answered; 0 when a constant or rule fallback did",
                },
                "route": {
                    "type": "string",
                    "pattern": "^(champion|canary|ab:[0-9]+)$",
                    "description": "champion, canary, or ab:<version> under an A/B split",
                },
                "prediction": _prediction_schema(service.model.task, service.model.actions),
                **(_DECISION if service.model.task is Task.POLICY else {}),
                "fallback": {
                    "type": ["string", "null"],
                    "description": "which fallback answered (then prediction is its value), or null",
                },
                "fallback_reason": {
                    "type": ["string", "null"],
                    "enum": ["timeout", "error", "circuit_open", None],
                },
                "feature_status": FEATURE_STATUS,
            },
        },
    }
    request = {
        "type": "object",
        "description": "give 'inputs' (one row) or 'instances' (several), not both",
        "properties": {
            "inputs": _ref(inputs),
            "instances": {"type": "array", "minItems": 1, "items": _ref(inputs)},
            "request_id": _ref("RequestId"),
            "unit_id": {"type": ["string", "integer", "null"], "description": "sticky routing key"},
        },
        "oneOf": [{"required": ["inputs"]}, {"required": ["instances"]}],
    }
    several = {
        "type": "object",
        "required": ["model", "predictions"],
        "properties": {
            "model": {"type": "string", "const": name},
            "predictions": {"type": "array", "items": _ref(answer)},
        },
    }
    task = service.model.task.value
    paths: dict[str, Any] = {
        f"/v1/models/{name}/predict": {
            "post": {
                "summary": f"Predict with model {name} ({task})",
                "operationId": f"predict_{name}",
                "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                "responses": {
                    "200": _json({"oneOf": [_ref(answer), several]}, "one answer, or one per instance"),
                    **_errors(400, 409, 413, 422, 429, 503, conflict=DUPLICATE),
                },
            }
        },
        f"/v2/models/{name}": {
            "get": {
                "summary": f"Open Inference Protocol: metadata of model {name}",
                "operationId": f"v2_metadata_{name}",
                "responses": {
                    "200": _json(_ref("ModelMetadata"), "versions served, input and output tensors")
                },
            }
        },
        f"/v2/models/{name}/ready": {
            "get": {
                "summary": f"Open Inference Protocol: readiness of model {name}",
                "operationId": f"v2_model_ready_{name}",
                "responses": {
                    "200": _json(_ref("ModelReady"), "a version is loaded"),
                    "503": _json(_ref("ModelReady"), "no champion loaded yet"),
                },
            }
        },
        f"/v2/models/{name}/infer": {
            "post": {
                "summary": f"Predict with model {name}: the Open Inference Protocol (KServe/Triton V2)",
                "operationId": f"infer_{name}",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("InferRequest")}},
                },
                "responses": {
                    "200": _json(_ref("InferResponse"), "one output tensor 'prediction'"),
                    **_errors(400, 409, 413, 422, 429, 503, conflict=DUPLICATE),
                },
            }
        },
    }
    admin: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any]]] = {
        "promote": (
            "Point an alias (default champion) at a version",
            {
                "type": "object",
                "required": ["version"],
                "properties": {
                    "version": {"type": "integer"},
                    "alias": {"type": "string"},
                    "reason": {"type": "string"},
                    "force": {"type": "boolean"},
                },
            },
            _ref("AliasChange"),
        ),
        "rollback": ("Restore the previous champion", None, _ref("AliasChange")),
        "canary": (
            "Set the share of units routed to the canary (and, with version, which version it is)",
            {
                "type": "object",
                "required": ["share"],
                "properties": {
                    "share": {"type": "number", "minimum": 0, "maximum": 1},
                    "version": {"type": "integer"},
                    "reason": {"type": "string"},
                    "force": {"type": "boolean"},
                },
            },
            {
                "type": "object",
                "properties": {
                    "model": {"type": "string"},
                    "canary": {"type": ["integer", "null"]},
                    "canary_share": {"type": "number"},
                },
            },
        ),
        "pause": (
            "Send no traffic to the canary",
            None,
            {
                "type": "object",
                "properties": {
                    "model": {"type": "string"},
                    "canary_share": {"type": "number"},
                    "paused": {"type": "boolean"},
                },
            },
        ),
        "ab": (
            "Set an A/B split over versions, or clear it with null",
            {
                "type": "object",
                "required": ["split"],
                "properties": {
                    "split": {
                        "type": ["object", "null"],
                        "propertyNames": {"pattern": "^[0-9]+$", "description": "a version number"},
                        "additionalProperties": {"type": "number"},
                    },
                    "reason": {"type": "string"},
                    "force": {"type": "boolean"},
                },
            },
            {
                "type": "object",
                "properties": {"model": {"type": "string"}, "ab_split": {"type": ["object", "null"]}},
            },
        ),
    }
    for action, (summary, body, result) in admin.items():
        operation: dict[str, Any] = {
            "summary": f"{summary} ({name})",
            "operationId": f"admin_{action}_{name}",
            "tags": ["admin"],
            "security": [{"bearer": []}],
            "responses": {"200": _json(result, "the change, applied and audited"), **_errors(400, 401, 409)},
        }
        if body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        paths[f"/v1/admin/models/{name}/{action}"] = {"post": operation}
    return paths, schemas


def _rollout_paths(name: str) -> dict[str, Any]:
    """The staged-rollout routes of one model (served when the server runs in a project)."""
    record = {
        "type": "object",
        "description": "the rollout: stage, status, the last checks' numbers, the routing",
        "additionalProperties": True,
    }
    decision = {
        "type": "object",
        "required": ["at", "kind", "model", "reason"],
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "kind": {"type": "string"},
            "model": {"type": "string"},
            "version": {"type": ["integer", "null"]},
            "reason": {"type": "string"},
            "evidence": {"type": "object"},
        },
    }
    common = {"tags": ["admin"], "security": [{"bearer": []}]}
    return {
        f"/v1/admin/models/{name}/rollout": {
            "post": {
                **common,
                "summary": f"Start a staged rollout of a version by the model's fl.Rollout ({name})",
                "operationId": f"admin_rollout_start_{name}",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["version"],
                                "properties": {
                                    "version": {"type": "integer"},
                                    "reason": {"type": "string"},
                                    "force": {"type": "boolean"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(decision, "the rollout's first stage, applied and journaled"),
                    **_errors(400, 401, 409, conflict="refused: a rollout already runs, or the gates failed"),
                },
            },
            "get": {
                **common,
                "summary": f"The model's rollout: stage, checks and routing ({name})",
                "operationId": f"admin_rollout_status_{name}",
                "responses": {"200": _json(record, "the current or latest rollout"), **_errors(401)},
            },
        },
        f"/v1/admin/models/{name}/rollout/abort": {
            "post": {
                **common,
                "summary": f"Abort the rollout: all traffic back to the champion ({name})",
                "operationId": f"admin_rollout_abort_{name}",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"reason": {"type": "string"}}}
                        }
                    },
                },
                "responses": {
                    "200": _json(decision, "the abort, applied and journaled"),
                    **_errors(400, 401, 409, conflict="no rollout in progress"),
                },
            }
        },
    }


def openapi_spec(services: Mapping[str, ModelService], *, rollouts: bool = False) -> dict[str, Any]:
    """OpenAPI 3.1 of every route; request schemas come from the models' contracts."""
    paths: dict[str, Any] = {}
    schemas = _common_schemas()
    for name, service in services.items():
        model_paths, model_schemas = _model_paths(name, service)
        paths.update(model_paths)
        schemas.update(model_schemas)
        if rollouts:
            paths.update(_rollout_paths(name))
    labels = {
        "oneOf": [
            _ref("Label"),
            {
                "type": "object",
                "required": ["labels"],
                "properties": {"labels": {"type": "array", "minItems": 1, "items": _ref("Label")}},
            },
            {"type": "array", "minItems": 1, "items": _ref("Label")},
        ]
    }
    paths["/v1/labels"] = {
        "post": {
            "summary": "Record delayed ground truth by request id (idempotent: the first label wins)",
            "operationId": "labels",
            "requestBody": {"required": True, "content": {"application/json": {"schema": labels}}},
            "responses": {"200": _json(_ref("LabelStats"), "what was recorded"), **_errors(400, 413, 503)},
        }
    }
    paths["/v1/models"] = {
        "get": {
            "summary": "The models served here: task, readiness and routing",
            "operationId": "models",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["models"],
                        "properties": {
                            "models": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name", "task", "ready", "routing"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "task": {"type": "string"},
                                        "ready": {"type": "boolean"},
                                        "routing": {"type": ["object", "null"]},
                                    },
                                },
                            }
                        },
                    },
                    "the served models",
                )
            },
        }
    }
    flag = {"type": "object", "properties": {"live": {"type": "boolean"}, "ready": {"type": "boolean"}}}
    paths["/v2/health/live"] = {
        "get": {
            "summary": "Open Inference Protocol: liveness",
            "operationId": "v2_live",
            "responses": {"200": _json(flag, "alive")},
        }
    }
    paths["/v2/health/ready"] = {
        "get": {
            "summary": "Open Inference Protocol: readiness (every model has a version loaded)",
            "operationId": "v2_ready",
            "responses": {"200": _json(flag, "ready"), "503": _json(flag, "not ready")},
        }
    }
    paths["/healthz"] = {
        "get": {
            "summary": "Liveness",
            "operationId": "healthz",
            "responses": {"200": _json(_ref("Status"), "alive")},
        }
    }
    paths["/readyz"] = {
        "get": {
            "summary": "Readiness: every model has a champion loaded and the event store answers",
            "operationId": "readyz",
            "responses": {"200": _json(_ref("Status"), "ready"), "503": _json(_ref("Status"), "not ready")},
        }
    }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}},
        }
    }
    _refuse_nul(paths, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "fourloops prediction server", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "server.admin_token"}
            },
        },
    }


_PREFIX = "#/components/schemas/"
#: Keywords whose value is a schema or a list of schemas (``not`` is left alone: there a pattern
#: would mean the opposite).
_SUBSCHEMAS = frozenset(
    {
        "items",
        "additionalProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "prefixItems",
        "if",
        "then",
        "else",
        "contains",
    }
)


def _refuse_nul(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Say in every request schema what the server enforces: no string, and no key, holds NUL."""
    names: set[str] = set()
    for item in paths.values():
        for operation in item.values():
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]["application/json"]
                content["schema"] = _nul_free(content["schema"], names)
    done: set[str] = set()
    while names - done:
        name = min(names - done)
        done.add(name)
        schemas[name] = _nul_free(schemas[name], names)


def _nul_free(node: Any, refs: set[str]) -> Any:
    """A copy of ``node`` whose strings refuse NUL (the names of components it refers to go to ``refs``)."""
    if isinstance(node, list):
        return [_nul_free(inner, refs) for inner in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_PREFIX):
        refs.add(ref.removeprefix(_PREFIX))
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "$defs") and isinstance(value, dict):
            out[key] = {name: _nul_free(inner, refs) for name, inner in value.items()}
        elif key in _SUBSCHEMAS:
            out[key] = _nul_free(value, refs)
        else:
            out[key] = value
    kinds = node.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if "string" in kinds and not {"enum", "const", "pattern"} & node.keys():
        out["pattern"] = NUL_FREE
    if "object" in kinds and "propertyNames" not in node:
        out["propertyNames"] = {"pattern": NUL_FREE}
    return out
