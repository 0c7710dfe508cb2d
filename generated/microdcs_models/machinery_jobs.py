"""Generated from machinery_jobs.schema.json by ``microdcs dataclassgen``; do not edit by hand.

OPC 40001-3 Machinery Job Management and OPC 10031-4 ISA-95 Job Control types and messages of
microdcs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, ClassVar

from microdcs.models import Model


@dataclass(kw_only=True)
class LocalizedText(Model):
    """OPC UA LocalizedText: a text with its locale."""

    #: Locale id, e.g. `en-US`.
    locale: str | None = field(default=None, metadata={"alias": "Locale"})
    #: The text.
    text: str | None = field(default=None, metadata={"alias": "Text"})


@dataclass(kw_only=True)
class QualifiedName(Model):
    """OPC UA QualifiedName: a name qualified by a namespace index."""

    namespace_index: int | None = field(
        default=None, metadata={"alias": "NamespaceIndex", "minimum": 0, "maximum": 65535}
    )
    name: str | None = field(default=None, metadata={"alias": "Name"})


@dataclass(kw_only=True)
class RelativePathElement(Model):
    """One element of an OPC UA RelativePath."""

    #: NodeId of the reference type, e.g. `i=47`.
    reference_type_id: str | None = field(default=None, metadata={"alias": "ReferenceTypeId"})
    is_inverse: bool | None = field(default=None, metadata={"alias": "IsInverse"})
    include_subtypes: bool | None = field(default=None, metadata={"alias": "IncludeSubtypes"})
    target_name: QualifiedName | None = field(default=None, metadata={"alias": "TargetName"})


@dataclass(kw_only=True)
class RelativePath(Model):
    """OPC UA RelativePath: names a substate relative to its state machine."""

    elements: list[RelativePathElement] | None = field(default=None, metadata={"alias": "Elements"})


@dataclass(kw_only=True)
class EUInformation(Model):
    """OPC UA EUInformation: an engineering unit (UNECE code in UnitId)."""

    namespace_uri: str | None = field(default=None, metadata={"alias": "NamespaceUri"})
    unit_id: int | None = field(default=None, metadata={"alias": "UnitId"})
    display_name: LocalizedText | None = field(default=None, metadata={"alias": "DisplayName"})
    description: LocalizedText | None = field(default=None, metadata={"alias": "Description"})


class JobExecutionMode(IntEnum):
    """OPC 40001-3 JobExecutionMode: value of the predefined JobExecutionMode job order
    parameter.
    """

    SIMULATION = 0
    TEST = 1
    PRODUCTION = 2


class JobResult(IntEnum):
    """OPC 40001-3 JobResult: outcome of a job, reported in the job response."""

    UNKNOWN = 0
    SUCCESSFUL = 1
    UNSUCCESSFUL = 2


@dataclass(kw_only=True)
class ISA95ParameterDataType(Model):
    """OPC 10031-4 parameter of a job order, work master or job response (nestable)."""

    id: str | None = field(default=None, metadata={"alias": "ID"})
    #: Any JSON value (OPC UA BaseDataType).
    value: Any | None = field(default=None, metadata={"alias": "Value"})
    description: list[LocalizedText] | None = field(default=None, metadata={"alias": "Description"})
    engineering_units: EUInformation | None = field(
        default=None, metadata={"alias": "EngineeringUnits"}
    )
    subparameters: list[ISA95ParameterDataType] | None = field(
        default=None, metadata={"alias": "Subparameters"}
    )


@dataclass(kw_only=True)
class ISA95PropertyDataType(Model):
    """OPC 10031-4 property of an equipment, personnel, physical asset or material (nestable)."""

    id: str | None = field(default=None, metadata={"alias": "ID"})
    #: Any JSON value (OPC UA BaseDataType).
    value: Any | None = field(default=None, metadata={"alias": "Value"})
    description: list[LocalizedText] | None = field(default=None, metadata={"alias": "Description"})
    engineering_units: EUInformation | None = field(
        default=None, metadata={"alias": "EngineeringUnits"}
    )
    subproperties: list[ISA95PropertyDataType] | None = field(
        default=None, metadata={"alias": "Subproperties"}
    )


@dataclass(kw_only=True)
class ISA95WorkMasterDataType(Model):
    """OPC 10031-4 work master reference: the template a job order is executed by."""

    id: str | None = field(default=None, metadata={"alias": "ID"})
    description: LocalizedText | None = field(default=None, metadata={"alias": "Description"})
    parameters: list[ISA95ParameterDataType] | None = field(
        default=None, metadata={"alias": "Parameters"}
    )


@dataclass(kw_only=True)
class ISA95EquipmentDataType(Model):
    """OPC 10031-4 equipment requirement or actual of a job."""

    id: str | None = field(default=None, metadata={"alias": "ID"})
    description: list[LocalizedText] | None = field(default=None, metadata={"alias": "Description"})
    #: How the equipment is used.
    equipment_use: str | None = field(default=None, metadata={"alias": "EquipmentUse"})
    #: Quantity as a string (OPC 10031-4).
    quantity: str | None = field(default=None, metadata={"alias": "Quantity"})
    engineering_units: EUInformation | None = field(
        default=None, metadata={"alias": "EngineeringUnits"}
    )
    properties: list[ISA95PropertyDataType] | None = field(
        default=None, metadata={"alias": "Properties"}
    )


@dataclass(kw_only=True)
class ISA95PersonnelDataType(Model):
    """OPC 10031-4 personnel requirement or actual of a job."""

    id: str | None = field(default=None, metadata={"alias": "ID"})
    description: list[LocalizedText] | None = field(default=None, metadata={"alias": "Description"})
    #: How the personnel is used.
    personnel_use: str | None = field(default=None, metadata={"alias": "PersonnelUse"})
    #: Quantity as a string (OPC 10031-4).
    quantity: str | None = field(default=None, metadata={"alias": "Quantity"})
    engineering_units: EUInformation | None = field(
        default=None, metadata={"alias": "EngineeringUnits"}
    )
    properties: list[ISA95PropertyDataType] | None = field(
        default=None, metadata={"alias": "Properties"}
    )


@dataclass(kw_only=True)
class ISA95PhysicalAssetDataType(Model):
    """OPC 10031-4 physical asset requirement or actual of a job."""

    id: str | None = field(default=None, metadata={"alias": "ID"})
    description: list[LocalizedText] | None = field(default=None, metadata={"alias": "Description"})
    #: How the physical asset is used.
    physical_asset_use: str | None = field(default=None, metadata={"alias": "PhysicalAssetUse"})
    #: Quantity as a string (OPC 10031-4).
    quantity: str | None = field(default=None, metadata={"alias": "Quantity"})
    engineering_units: EUInformation | None = field(
        default=None, metadata={"alias": "EngineeringUnits"}
    )
    properties: list[ISA95PropertyDataType] | None = field(
        default=None, metadata={"alias": "Properties"}
    )


@dataclass(kw_only=True)
class ISA95MaterialDataType(Model):
    """OPC 10031-4 material requirement or actual of a job."""

    material_class_id: str | None = field(default=None, metadata={"alias": "MaterialClassID"})
    material_definition_id: str | None = field(
        default=None, metadata={"alias": "MaterialDefinitionID"}
    )
    material_lot_id: str | None = field(default=None, metadata={"alias": "MaterialLotID"})
    material_sublot_id: str | None = field(default=None, metadata={"alias": "MaterialSublotID"})
    description: list[LocalizedText] | None = field(default=None, metadata={"alias": "Description"})
    #: ISA-95 material use, e.g. `Consumed`, `Produced`, `ByProduct`.
    material_use: str | None = field(default=None, metadata={"alias": "MaterialUse"})
    #: Quantity as a string (OPC 10031-4).
    quantity: str | None = field(default=None, metadata={"alias": "Quantity"})
    engineering_units: EUInformation | None = field(
        default=None, metadata={"alias": "EngineeringUnits"}
    )
    properties: list[ISA95PropertyDataType] | None = field(
        default=None, metadata={"alias": "Properties"}
    )


@dataclass(kw_only=True)
class ISA95JobOrderDataType(Model):
    """OPC 10031-4 job order: what to make, with which work master, equipment, personnel and
    material.
    """

    #: Unique within the scope.
    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    description: list[LocalizedText] | None = field(default=None, metadata={"alias": "Description"})
    work_master_id: list[ISA95WorkMasterDataType] | None = field(
        default=None, metadata={"alias": "WorkMasterID"}
    )
    #: Planned start (ISO 8601).
    start_time: str | None = field(
        default=None, metadata={"alias": "StartTime", "format": "date-time"}
    )
    #: Planned end (ISO 8601).
    end_time: str | None = field(default=None, metadata={"alias": "EndTime", "format": "date-time"})
    priority: int | None = field(
        default=None, metadata={"alias": "Priority", "minimum": -32768, "maximum": 32767}
    )
    job_order_parameters: list[ISA95ParameterDataType] | None = field(
        default=None, metadata={"alias": "JobOrderParameters"}
    )
    personnel_requirements: list[ISA95PersonnelDataType] | None = field(
        default=None, metadata={"alias": "PersonnelRequirements"}
    )
    equipment_requirements: list[ISA95EquipmentDataType] | None = field(
        default=None, metadata={"alias": "EquipmentRequirements"}
    )
    physical_asset_requirements: list[ISA95PhysicalAssetDataType] | None = field(
        default=None, metadata={"alias": "PhysicalAssetRequirements"}
    )
    material_requirements: list[ISA95MaterialDataType] | None = field(
        default=None, metadata={"alias": "MaterialRequirements"}
    )


@dataclass(kw_only=True)
class ISA95StateDataType(Model):
    """OPC 10031-4 state: the top-level state (BrowsePath null) or a substate of it."""

    browse_path: RelativePath | None = field(default=None, metadata={"alias": "BrowsePath"})
    state_text: LocalizedText | None = field(default=None, metadata={"alias": "StateText"})
    state_number: int | None = field(
        default=None, metadata={"alias": "StateNumber", "minimum": 0, "maximum": 4294967295}
    )


@dataclass(kw_only=True)
class ISA95JobResponseDataType(Model):
    """OPC 10031-4 job response: what a job did (its state, results and actuals)."""

    job_response_id: str | None = field(default=None, metadata={"alias": "JobResponseID"})
    description: LocalizedText | None = field(default=None, metadata={"alias": "Description"})
    job_order_id: str | None = field(default=None, metadata={"alias": "JobOrderID"})
    #: Actual start (ISO 8601).
    start_time: str | None = field(
        default=None, metadata={"alias": "StartTime", "format": "date-time"}
    )
    #: Actual end (ISO 8601).
    end_time: str | None = field(default=None, metadata={"alias": "EndTime", "format": "date-time"})
    job_state: list[ISA95StateDataType] | None = field(default=None, metadata={"alias": "JobState"})
    job_response_data: list[ISA95ParameterDataType] | None = field(
        default=None, metadata={"alias": "JobResponseData"}
    )
    personnel_actuals: list[ISA95PersonnelDataType] | None = field(
        default=None, metadata={"alias": "PersonnelActuals"}
    )
    equipment_actuals: list[ISA95EquipmentDataType] | None = field(
        default=None, metadata={"alias": "EquipmentActuals"}
    )
    physical_asset_actuals: list[ISA95PhysicalAssetDataType] | None = field(
        default=None, metadata={"alias": "PhysicalAssetActuals"}
    )
    material_actuals: list[ISA95MaterialDataType] | None = field(
        default=None, metadata={"alias": "MaterialActuals"}
    )


@dataclass(kw_only=True)
class ISA95JobOrderAndStateDataType(Model):
    """A job order with its state; the retained `order/{JobOrderID}` payload."""

    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/ISA95JobOrderAndStateDataType"
    )

    job_order: ISA95JobOrderDataType = field(metadata={"alias": "JobOrder"})
    state: list[ISA95StateDataType] | None = field(default=None, metadata={"alias": "State"})


@dataclass(kw_only=True)
class StoreRequest(Model):
    """Call of the OPC 10031-4 Store method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Store.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StoreRequest"
    )

    job_order: ISA95JobOrderDataType = field(metadata={"alias": "JobOrder"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class StoreResponse(Model):
    """Result of the OPC 10031-4 Store method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Store.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StoreResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class StoreAndStartRequest(Model):
    """Call of the OPC 10031-4 StoreAndStart method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.StoreAndStart.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StoreAndStartRequest"
    )

    job_order: ISA95JobOrderDataType = field(metadata={"alias": "JobOrder"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class StoreAndStartResponse(Model):
    """Result of the OPC 10031-4 StoreAndStart method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.StoreAndStart.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StoreAndStartResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class UpdateRequest(Model):
    """Call of the OPC 10031-4 Update method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Update.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/UpdateRequest"
    )

    job_order: ISA95JobOrderDataType = field(metadata={"alias": "JobOrder"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class UpdateResponse(Model):
    """Result of the OPC 10031-4 Update method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Update.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/UpdateResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class StartRequest(Model):
    """Call of the OPC 10031-4 Start method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Start.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StartRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class StartResponse(Model):
    """Result of the OPC 10031-4 Start method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Start.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StartResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class RevokeStartRequest(Model):
    """Call of the OPC 10031-4 RevokeStart method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.RevokeStart.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/RevokeStartRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class RevokeStartResponse(Model):
    """Result of the OPC 10031-4 RevokeStart method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.RevokeStart.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/RevokeStartResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class PauseRequest(Model):
    """Call of the OPC 10031-4 Pause method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Pause.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/PauseRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class PauseResponse(Model):
    """Result of the OPC 10031-4 Pause method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Pause.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/PauseResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class ResumeRequest(Model):
    """Call of the OPC 10031-4 Resume method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Resume.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/ResumeRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class ResumeResponse(Model):
    """Result of the OPC 10031-4 Resume method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Resume.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/ResumeResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class StopRequest(Model):
    """Call of the OPC 10031-4 Stop method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Stop.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StopRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class StopResponse(Model):
    """Result of the OPC 10031-4 Stop method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Stop.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/StopResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class AbortRequest(Model):
    """Call of the OPC 10031-4 Abort method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Abort.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/AbortRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class AbortResponse(Model):
    """Result of the OPC 10031-4 Abort method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Abort.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/AbortResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class CancelRequest(Model):
    """Call of the OPC 10031-4 Cancel method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Cancel.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/CancelRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class CancelResponse(Model):
    """Result of the OPC 10031-4 Cancel method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Cancel.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/CancelResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class ClearRequest(Model):
    """Call of the OPC 10031-4 Clear method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Clear.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/ClearRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})
    #: Optional comment of the caller.
    comment: list[LocalizedText] | None = field(default=None, metadata={"alias": "Comment"})


@dataclass(kw_only=True)
class ClearResponse(Model):
    """Result of the OPC 10031-4 Clear method."""

    __ce_type__: ClassVar[str | None] = "org.opcfoundation.ISA95-JOBCONTROL_V2.Clear.v2"
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/ClearResponse"
    )

    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class RequestJobResponseByJobOrderIDRequest(Model):
    """Call of the OPC 40001-3 RequestJobResponseByJobOrderID method."""

    __ce_type__: ClassVar[str | None] = (
        "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderID.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/RequestJobResponseByJobOrderIDRequest"
    )

    job_order_id: str = field(metadata={"alias": "JobOrderID"})


@dataclass(kw_only=True)
class RequestJobResponseByJobOrderIDResponse(Model):
    """The job response of one job order (absent when ReturnStatus is not 1)."""

    __ce_type__: ClassVar[str | None] = (
        "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderID.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/RequestJobResponseByJobOrderIDResponse"
    )

    job_response: ISA95JobResponseDataType | None = field(
        default=None, metadata={"alias": "JobResponse"}
    )
    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class RequestJobResponseByJobOrderStateRequest(Model):
    """Call of the OPC 40001-3 RequestJobResponseByJobOrderState method; an empty list is an
    invalid request.
    """

    __ce_type__: ClassVar[str | None] = (
        "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderState.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/RequestJobResponseByJobOrderStateRequest"
    )

    job_order_state: list[ISA95StateDataType] = field(metadata={"alias": "JobOrderState"})


@dataclass(kw_only=True)
class RequestJobResponseByJobOrderStateResponse(Model):
    """The job responses of the scope whose state matches."""

    __ce_type__: ClassVar[str | None] = (
        "org.opcfoundation.Machinery.Jobs.RequestJobResponseByJobOrderState.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/RequestJobResponseByJobOrderStateResponse"
    )

    job_responses: list[ISA95JobResponseDataType] | None = field(
        default=None, metadata={"alias": "JobResponses"}
    )
    #: OPC 10031-4 return status bit mask (UInt64): 1 ok, 2 unknown job order, 8 invalid state, 16
    #: unable to accept, 4294967296 invalid request.
    return_status: int = field(
        metadata={"alias": "ReturnStatus", "minimum": 0, "maximum": 18446744073709551615}
    )


@dataclass(kw_only=True)
class ISA95JobOrderStatusEventType(Model):
    """Status event raised on every state change of a job."""

    __ce_type__: ClassVar[str | None] = (
        "org.opcfoundation.ISA95-JOBCONTROL_V2.ISA95JobOrderStatusEventType.v2"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/ISA95JobOrderStatusEventType"
    )

    job_order: ISA95JobOrderDataType = field(metadata={"alias": "JobOrder"})
    job_state: list[ISA95StateDataType] = field(metadata={"alias": "JobState"})
    job_response: ISA95JobResponseDataType | None = field(
        default=None, metadata={"alias": "JobResponse"}
    )


class EquipmentTransport(StrEnum):
    """How the runtime reaches an equipment: through a southbound processor bound under an MQTT
    topic prefix, or through a sidecar connected over MessagePack-RPC.
    """

    MQTT = "mqtt"
    RPC = "rpc"


@dataclass(kw_only=True)
class EquipmentBinding(Model):
    """The processor binding SFC actions naming this equipment are dispatched through."""

    class Config(Model.Config):
        forbid_extra_keys = True

    transport: EquipmentTransport = field(metadata={"alias": "Transport"})
    #: mqtt: the topic prefix of the equipment processor (the built-in one or one a processor
    #: factory bound).
    topic_prefix: str | None = field(default=None, metadata={"alias": "TopicPrefix"})
    #: rpc: the sidecar's name (its entry in APP_RPC_TOKENS_FILE; `default` without one).
    sidecar: str | None = field(default=None, metadata={"alias": "Sidecar"})


@dataclass(kw_only=True)
class EquipmentConfig(Model):
    """Station configuration: allow (PUT) or disallow (DELETE) a equipment ID in the scope."""

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.equipment.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/EquipmentConfig"
    )

    id: str = field(metadata={"alias": "ID"})
    binding: EquipmentBinding | None = field(default=None, metadata={"alias": "Binding"})


@dataclass(kw_only=True)
class MaterialClassConfig(Model):
    """Station configuration: allow (PUT) or disallow (DELETE) a materialclass ID in the scope."""

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.materialclass.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/MaterialClassConfig"
    )

    id: str = field(metadata={"alias": "ID"})


@dataclass(kw_only=True)
class MaterialDefinitionConfig(Model):
    """Station configuration: allow (PUT) or disallow (DELETE) a materialdefinition ID in the
    scope.
    """

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.materialdefinition.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/MaterialDefinitionConfig"
    )

    id: str = field(metadata={"alias": "ID"})


@dataclass(kw_only=True)
class PersonnelConfig(Model):
    """Station configuration: allow (PUT) or disallow (DELETE) a personnel ID in the scope."""

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.personnel.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/PersonnelConfig"
    )

    id: str = field(metadata={"alias": "ID"})


@dataclass(kw_only=True)
class PhysicalAssetConfig(Model):
    """Station configuration: allow (PUT) or disallow (DELETE) a physicalasset ID in the scope."""

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.physicalasset.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/PhysicalAssetConfig"
    )

    id: str = field(metadata={"alias": "ID"})


@dataclass(kw_only=True)
class WorkMasterConfig(Model):
    """Station configuration: store (PUT) or delete (DELETE) a work master of the scope,
    optionally with its recipe.
    """

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.workmaster.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/WorkMasterConfig"
    )

    id: str = field(metadata={"alias": "ID"})
    description: LocalizedText | None = field(default=None, metadata={"alias": "Description"})
    parameters: list[ISA95ParameterDataType] | None = field(
        default=None, metadata={"alias": "Parameters"}
    )
    #: Recipe content (any JSON), in the format named by `dataschema`.
    data: Any | None = None
    #: URI of the recipe format, e.g. the SFC recipe schema.
    dataschema: str | None = None


@dataclass(kw_only=True)
class JobAcceptanceConfig(Model):
    """Station configuration: job list limit of the scope."""

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.jobacceptance.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/JobAcceptanceConfig"
    )

    #: 0 (or 65535) = unlimited.
    max_downloadable_job_orders: int = field(metadata={"minimum": 0})


@dataclass(kw_only=True)
class DispatchConfig(Model):
    """Station configuration: how many jobs of the scope run at a time."""

    __ce_type__: ClassVar[str | None] = (
        "com.github.aschamberger.ISA95-JOBCONTROL_V2.config.dispatch.v1"
    )
    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/DispatchConfig"
    )

    #: Running (or Interrupted) jobs at a time; 0 = unlimited. Default 1.
    max_running_jobs: int = field(metadata={"minimum": 0, "maximum": 65535})


@dataclass(kw_only=True)
class JobOrderStateIndexEntry(Model):
    """One job of the state index."""

    job_order_id: str
    #: State path, e.g. `Running` or `AllowedToStart.Ready`.
    state: str
    has_result: bool


@dataclass(kw_only=True)
class JobOrderStateIndex(Model):
    """The retained `state-index` of a scope; `seq` grows by one per change so a gap is visible."""

    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/JobOrderStateIndex"
    )

    seq: int = field(metadata={"minimum": 0})
    scope: str
    #: Publication time (ISO 8601).
    published_at: str = field(metadata={"format": "date-time"})
    jobs: list[JobOrderStateIndexEntry]


@dataclass(kw_only=True)
class CloudEventTypeInfo(Model):
    """A CloudEvent type a processor handles or emits."""

    type: str
    dataschema: str | None = None
    response_dataschema: str | None = None


@dataclass(kw_only=True)
class JobManagementMetadata(Model):
    """The retained `metadata` capability description of the job management processor."""

    __ce_dataschema__: ClassVar[str | None] = (
        "https://github.com/aschamberger/microdcs/schemas/machinery_jobs.schema.json#/$defs/JobManagementMetadata"
    )

    #: Supported method calls.
    methods: list[CloudEventTypeInfo]
    #: Events it publishes.
    events: list[CloudEventTypeInfo]


# Requests answered with a typed response (set here: the response may be defined later).
StoreRequest.__response_type__ = StoreResponse
StoreAndStartRequest.__response_type__ = StoreAndStartResponse
UpdateRequest.__response_type__ = UpdateResponse
StartRequest.__response_type__ = StartResponse
RevokeStartRequest.__response_type__ = RevokeStartResponse
PauseRequest.__response_type__ = PauseResponse
ResumeRequest.__response_type__ = ResumeResponse
StopRequest.__response_type__ = StopResponse
AbortRequest.__response_type__ = AbortResponse
CancelRequest.__response_type__ = CancelResponse
ClearRequest.__response_type__ = ClearResponse
RequestJobResponseByJobOrderIDRequest.__response_type__ = RequestJobResponseByJobOrderIDResponse
RequestJobResponseByJobOrderStateRequest.__response_type__ = (
    RequestJobResponseByJobOrderStateResponse
)
