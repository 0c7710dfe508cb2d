"""The generated OPC 40001-3 / OPC 10031-4 models: wire names, CloudEvent metadata, codecs."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

import msgpack
import orjson
import pytest

from microdcs.core.errors import PayloadValidationError
from microdcs.models import Model
from microdcs_models import machinery_jobs as mj

DATA = Path(__file__).parents[1] / "data" / "models"
JC = "org.opcfoundation.ISA95-JOBCONTROL_V2"
MJ = "org.opcfoundation.Machinery.Jobs"
CFG = "com.github.aschamberger.ISA95-JOBCONTROL_V2.config"
BASE = "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json"
JSON = "application/json"
MSGPACK = "application/msgpack"

STATE = [
    {"StateText": {"Locale": "en", "Text": "AllowedToStart"}, "StateNumber": 2},
    {
        "BrowsePath": {
            "Elements": [
                {
                    "ReferenceTypeId": "i=47",
                    "IsInverse": False,
                    "IncludeSubtypes": True,
                    "TargetName": {"NamespaceIndex": 1, "Name": "Ready"},
                }
            ]
        },
        "StateText": {"Locale": "en", "Text": "Ready"},
        "StateNumber": 2,
    },
]


@pytest.fixture(scope="module")
def job_order() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "woodworking_job_order.json").read_text())
    return data


def job_response(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "JobResponseID": "R-1",
        "JobOrderID": order["JobOrderID"],
        "StartTime": "2024-08-15T06:01:00Z",
        "EndTime": "2024-08-15T13:40:00Z",
        "JobState": STATE,
        "JobResponseData": [{"ID": "JobResult", "Value": mj.JobResult.SUCCESSFUL.value}],
        "MaterialActuals": order.get("MaterialRequirements", []),
    }


def samples(order: dict[str, Any]) -> dict[type[Model], dict[str, Any]]:
    """One valid payload per message class of the schema."""
    result: dict[type[Model], dict[str, Any]] = {}
    for method in ("Store", "StoreAndStart", "Update"):
        result[getattr(mj, f"{method}Request")] = {
            "JobOrder": order,
            "Comment": [{"Locale": "en", "Text": "from the MES"}],
        }
    for method in ("Start", "RevokeStart", "Pause", "Resume", "Stop", "Abort", "Cancel", "Clear"):
        result[getattr(mj, f"{method}Request")] = {"JobOrderID": "J1"}
    for method in (
        "Store", "StoreAndStart", "Update", "Start", "RevokeStart", "Pause",
        "Resume", "Stop", "Abort", "Cancel", "Clear",
    ):  # fmt: skip
        result[getattr(mj, f"{method}Response")] = {"ReturnStatus": 1 << 32}
    result[mj.RequestJobResponseByJobOrderIDRequest] = {"JobOrderID": "J1"}
    result[mj.RequestJobResponseByJobOrderIDResponse] = {
        "JobResponse": job_response(order),
        "ReturnStatus": 1,
    }
    result[mj.RequestJobResponseByJobOrderStateRequest] = {"JobOrderState": STATE}
    result[mj.RequestJobResponseByJobOrderStateResponse] = {
        "JobResponses": [job_response(order)],
        "ReturnStatus": 1,
    }
    result[mj.ISA95JobOrderStatusEventType] = {
        "JobOrder": order,
        "JobState": STATE,
        "JobResponse": job_response(order),
    }
    result[mj.ISA95JobOrderAndStateDataType] = {"JobOrder": order, "State": STATE}
    for name in ("Equipment", "MaterialClass", "MaterialDefinition", "Personnel", "PhysicalAsset"):
        result[getattr(mj, f"{name}Config")] = {"ID": f"{name}-1"}
    result[mj.WorkMasterConfig] = {
        **order["WorkMasterID"][0],
        "data": {"Steps": [{"Name": "Saw", "Initial": True}], "Transitions": []},
        "dataschema": "https://github.com/aschamberger/microdcs/schemas/sfc_recipe.schema.json",
    }
    result[mj.JobAcceptanceConfig] = {"max_downloadable_job_orders": 1}
    result[mj.DispatchConfig] = {"max_running_jobs": 2}
    result[mj.JobOrderStateIndex] = {
        "seq": 7,
        "scope": "woodworking",
        "published_at": "2024-08-15T06:00:01Z",
        "jobs": [{"job_order_id": "J1", "state": "AllowedToStart.Ready", "has_result": False}],
    }
    result[mj.JobManagementMetadata] = {
        "methods": [{"type": f"{JC}.Store.v2", "dataschema": f"{BASE}#/$defs/StoreRequest"}],
        "events": [{"type": f"{JC}.ISA95JobOrderStatusEventType.v2"}],
    }
    return result


def message_classes() -> list[type[Model]]:
    return [
        cls
        for _, cls in inspect.getmembers(mj, inspect.isclass)
        if issubclass(cls, Model) and cls.__module__ == mj.__name__ and cls.__ce_dataschema__
    ]


def test_woodworking_job_order_round_trips_through_json(job_order: dict[str, Any]) -> None:
    payload = orjson.dumps({"JobOrder": job_order})
    request = mj.StoreRequest.decode(payload, JSON)
    assert orjson.loads(request.encode(JSON)) == {"JobOrder": job_order}


def test_woodworking_job_order_round_trips_through_msgpack(job_order: dict[str, Any]) -> None:
    payload = msgpack.packb({"JobOrder": job_order})
    request = mj.StoreRequest.decode(payload, MSGPACK)
    assert msgpack.unpackb(request.encode(MSGPACK)) == {"JobOrder": job_order}


def test_woodworking_job_order_decodes_to_typed_snake_case_attributes(
    job_order: dict[str, Any],
) -> None:
    order = mj.ISA95JobOrderDataType.from_raw(job_order)
    assert order.job_order_id == "WW-2024-0815"
    assert order.work_master_id is not None
    assert order.work_master_id[0].id == "WM-SAW-SHELF-LEGS"
    assert order.material_requirements is not None
    uses = [
        (m.material_definition_id, m.material_use, m.quantity) for m in order.material_requirements
    ]
    assert uses == [
        ("OakTrunk", "Consumed", "0.8"),
        ("ShelfFloor-1200x400", "Produced", "1"),
        ("TableLeg-720", "Produced", "4"),
        ("OakChips", "ByProduct", "95"),
    ]
    assert order.equipment_requirements is not None
    assert [e.id for e in order.equipment_requirements] == ["BandSaw-01", "Planer-02", "Sander-03"]


def test_job_order_built_in_python_encodes_pascal_case_without_nulls() -> None:
    order = mj.ISA95JobOrderDataType(
        job_order_id="J1",
        description=[mj.LocalizedText(locale="en", text="Shelf")],
        priority=3,
    )
    assert orjson.loads(order.encode(JSON)) == {
        "JobOrderID": "J1",
        "Description": [{"Locale": "en", "Text": "Shelf"}],
        "Priority": 3,
    }


def test_every_message_class_has_a_sample() -> None:
    assert set(message_classes()) == set(samples({"JobOrderID": "J1", "WorkMasterID": [{}]}))


@pytest.mark.parametrize("content_type", [JSON, MSGPACK])
def test_every_message_type_encodes_and_decodes(
    job_order: dict[str, Any], content_type: str
) -> None:
    pack, unpack = (
        (orjson.dumps, orjson.loads) if content_type == JSON else (msgpack.packb, msgpack.unpackb)
    )
    for cls, payload in samples(job_order).items():
        message = cls.decode(pack(payload), content_type)
        assert type(message) is cls
        assert unpack(message.encode(content_type)) == payload, cls.__name__


@pytest.mark.parametrize(
    ("cls", "ce_type"),
    [
        (mj.StoreRequest, f"{JC}.Store.v2"),
        (mj.StoreResponse, f"{JC}.Store.v2"),
        (mj.ClearRequest, f"{JC}.Clear.v2"),
        (
            mj.RequestJobResponseByJobOrderStateResponse,
            f"{MJ}.RequestJobResponseByJobOrderState.v1",
        ),
        (mj.ISA95JobOrderStatusEventType, f"{JC}.ISA95JobOrderStatusEventType.v2"),
        (mj.EquipmentConfig, f"{CFG}.equipment.v1"),
        (mj.WorkMasterConfig, f"{CFG}.workmaster.v1"),
        (mj.JobAcceptanceConfig, f"{CFG}.jobacceptance.v1"),
    ],
)
def test_messages_carry_their_cloudevent_type_and_dataschema(
    cls: type[Model], ce_type: str
) -> None:
    assert cls.__ce_type__ == ce_type
    assert cls.__ce_dataschema__ == f"{BASE}#/$defs/{cls.__name__}"


def test_every_request_is_linked_to_its_response_with_the_same_type() -> None:
    requests = [c for c in message_classes() if c.__name__.endswith("Request")]
    assert len(requests) == 13
    for request in requests:
        response = request.__response_type__
        assert response is not None
        assert response.__name__ == request.__name__.removesuffix("Request") + "Response"
        assert response.__ce_type__ == request.__ce_type__


def test_request_response_carries_return_status_as_uint64() -> None:
    request = mj.StartRequest.decode(b'{"JobOrderID": "J1"}', JSON)
    response = request.response(return_status=4294967296)
    assert isinstance(response, mj.StartResponse)
    assert response.encode(JSON) == b'{"ReturnStatus":4294967296}'


def test_enums_are_int_enums_with_opc_values() -> None:
    assert [m.value for m in mj.JobExecutionMode] == [0, 1, 2]
    assert mj.JobResult.UNSUCCESSFUL == 2


def test_optional_fields_default_to_none() -> None:
    order = mj.ISA95JobOrderDataType(job_order_id="J1")
    optional = [f.name for f in dataclasses.fields(order) if f.name != "job_order_id"]
    assert optional and all(getattr(order, name) is None for name in optional)


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        (b"{}", "JobOrder", "is required"),
        (b'{"JobOrder": {"JobOrderID": 5}}', "JobOrder.JobOrderID", "must be a string"),
        (b'{"JobOrder": {"Priority": 1}}', "JobOrder.JobOrderID", "is required"),
        (b'{"JobOrder": {"JobOrderID": "J", "Priority": "high"}}', "JobOrder.Priority", "integer"),
        (
            b'{"JobOrder": {"JobOrderID": "J", "MaterialRequirements": [{}, {"Quantity": 4}]}}',
            "JobOrder.MaterialRequirements[1].Quantity",
            "must be a string",
        ),
        (
            b'{"JobOrder": {"JobOrderID": "J", "WorkMasterID": {"ID": "W"}}}',
            "JobOrder.WorkMasterID",
            "array",
        ),
        (b'{"JobOrder": "J1"}', "JobOrder", "must be an object"),
        (b'{"JobOrder": null}', "JobOrder", "must not be null"),
    ],
)
def test_store_request_violating_the_schema_names_the_field(
    payload: bytes, field: str, reason: str
) -> None:
    with pytest.raises(PayloadValidationError) as caught:
        mj.StoreRequest.decode(payload, JSON)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_schema_violation_in_msgpack_names_the_field() -> None:
    with pytest.raises(PayloadValidationError) as caught:
        mj.JobAcceptanceConfig.decode(msgpack.packb({"max_downloadable_job_orders": "1"}), MSGPACK)
    assert caught.value.field == "max_downloadable_job_orders"


def test_boolean_is_not_an_integer() -> None:
    with pytest.raises(PayloadValidationError) as caught:
        mj.StoreResponse.decode(b'{"ReturnStatus": true}', JSON)
    assert caught.value.field == "ReturnStatus"


def test_attribute_names_are_accepted_on_input() -> None:
    request = mj.StoreRequest.decode(b'{"job_order": {"job_order_id": "J1"}}', JSON)
    assert request.job_order.job_order_id == "J1"
    assert request.encode(JSON) == b'{"JobOrder":{"JobOrderID":"J1"}}'


def test_unknown_keys_of_opc_types_are_ignored() -> None:
    request = mj.StartRequest.decode(b'{"JobOrderID": "J1", "Vendor": 1}', JSON)
    assert request.encode(JSON) == b'{"JobOrderID":"J1"}'
