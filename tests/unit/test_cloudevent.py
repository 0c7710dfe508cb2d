"""The CloudEvent envelope: validation, canonical strings and extension accessors."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from microdcs.core.cloudevent import (
    SPEC_VERSION,
    CloudEvent,
    canonical_string,
    is_attribute_name,
    new_event_id,
    now_millis,
    now_timestamp,
    parse_extension,
)
from microdcs.core.errors import InvalidCloudEventError


def make(**changes: object) -> CloudEvent:
    event = CloudEvent(type="com.example.t.v1", source="test/src", id="1")
    for name, value in changes.items():
        setattr(event, name, value)
    return event


def test_a_new_event_has_specversion_1_0_and_a_fresh_uuid_id() -> None:
    first = CloudEvent(type="t", source="s")
    second = CloudEvent(type="t", source="s")
    assert first.specversion == SPEC_VERSION == "1.0"
    assert uuid.UUID(first.id)
    assert first.id != second.id


def test_new_event_id_is_a_version_4_uuid() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text  # canonical lower-case hyphenated form


def test_now_timestamp_is_rfc3339_utc_with_z() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", now_timestamp())


def test_now_timestamp_is_the_current_utc_time() -> None:
    before = datetime.now(UTC)
    stamp = datetime.fromisoformat(now_timestamp().replace("Z", "+00:00"))
    after = datetime.now(UTC)
    assert before - timedelta(microseconds=1) <= stamp <= after


def test_now_millis_gives_the_same_moment_as_text_and_as_milliseconds() -> None:
    before = datetime.now(UTC)
    text, ms = now_millis()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    assert stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z") == text
    assert before - timedelta(milliseconds=1) <= stamp <= after


def test_a_minimal_event_is_valid() -> None:
    make().validate()


@pytest.mark.parametrize("name", ["id", "source", "type", "specversion"])
def test_an_empty_required_attribute_is_invalid(name: str) -> None:
    with pytest.raises(InvalidCloudEventError, match=name):
        make(**{name: ""}).validate()


@pytest.mark.parametrize("name", ["id", "source", "type"])
def test_a_required_attribute_that_is_not_a_string_is_invalid(name: str) -> None:
    with pytest.raises(InvalidCloudEventError):
        make(**{name: 42}).validate()


def test_a_specversion_other_than_1_0_is_invalid() -> None:
    with pytest.raises(InvalidCloudEventError, match="specversion"):
        make(specversion="0.3").validate()


@pytest.mark.parametrize("name", ["Upper", "with-dash", "with_underscore", "", "\u00e9t\u00e9"])
def test_an_extension_name_outside_lowercase_ascii_alphanumerics_is_invalid(name: str) -> None:
    with pytest.raises(InvalidCloudEventError):
        make(extensions={name: "x"}).validate()


@pytest.mark.parametrize("name", ["subject", "time", "id", "datacontenttype"])
def test_an_extension_may_not_reuse_a_core_attribute_name(name: str) -> None:
    with pytest.raises(InvalidCloudEventError):
        make(extensions={name: "x"}).validate()


def test_an_extension_may_not_be_named_data() -> None:
    # "data" is reserved: in the JSON event format such an extension would become the data.
    with pytest.raises(InvalidCloudEventError):
        make(extensions={"data": "x"}).validate()


def test_extensions_of_lowercase_letters_and_digits_are_valid() -> None:
    make(extensions={"correlationid": "c", "ext2": 3, "flag": True}).validate()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("abc", True), ("a1b2", True), ("ABC", False), ("a.b", False), ("", False), ("\u0661", False)],
)
def test_attribute_names_are_lowercase_ascii_letters_and_digits(name: str, expected: bool) -> None:
    assert is_attribute_name(name) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (False, "false"), (0, "0"), (-17, "-17"), ("text", "text"), ("", "")],
)
def test_canonical_string_follows_the_cloudevents_type_system(
    value: str | int | bool, expected: str
) -> None:
    assert canonical_string(value) == expected


def test_expiryinterval_parses_back_to_an_integer() -> None:
    assert parse_extension("expiryinterval", "30") == 30


def test_a_non_integer_expiryinterval_is_invalid() -> None:
    with pytest.raises(InvalidCloudEventError, match="expiryinterval"):
        parse_extension("expiryinterval", "soon")


def test_other_extensions_stay_strings_when_parsed() -> None:
    assert parse_extension("correlationid", "42") == "42"


def test_attributes_lists_required_attributes_and_extensions_without_data() -> None:
    event = make(extensions={"correlationid": "c"}, data=b"{}")
    assert event.attributes() == {
        "specversion": "1.0",
        "id": "1",
        "source": "test/src",
        "type": "com.example.t.v1",
        "correlationid": "c",
    }


def test_attributes_include_set_optional_attributes() -> None:
    event = make(datacontenttype="application/json", dataschema="urn:s", subject="a.b", time="t0")
    attrs = event.attributes()
    assert attrs["datacontenttype"] == "application/json"
    assert attrs["dataschema"] == "urn:s"
    assert attrs["subject"] == "a.b"
    assert attrs["time"] == "t0"


def test_correlation_and_causation_accessors_read_the_extensions() -> None:
    event = make(extensions={"correlationid": "corr", "causationid": "cause"})
    assert event.correlationid == "corr"
    assert event.causationid == "cause"


def test_absent_extensions_read_as_none() -> None:
    event = make()
    assert event.correlationid is None
    assert event.causationid is None
    assert event.expiryinterval is None
    assert event.error_kind is None


def test_expiryinterval_accessor_returns_only_integers() -> None:
    assert make(extensions={"expiryinterval": 60}).expiryinterval == 60
    assert make(extensions={"expiryinterval": "60"}).expiryinterval is None
    assert make(extensions={"expiryinterval": True}).expiryinterval is None


def test_method_defaults_to_put() -> None:
    assert make().method == "PUT"


def test_method_is_upper_cased() -> None:
    assert make(extensions={"method": "delete"}).method == "DELETE"


def test_error_kind_reads_mdcserrorkind() -> None:
    assert make(extensions={"mdcserrorkind": "unknown_type"}).error_kind == "unknown_type"


def test_a_forked_child_does_not_repeat_the_parents_event_ids() -> None:
    """Ids come from the ``random`` generator, which must be re-seeded in a forked child
    (replicas started by fork would otherwise send the same ids and be deduplicated)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write_end, ",".join(new_event_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    parent = [new_event_id() for _ in range(3)]
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read().decode().split(",")
    os.waitpid(pid, 0)
    assert len(child) == 3
    assert not set(child) & set(parent)
