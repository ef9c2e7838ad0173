"""Every call to a recorded service becomes a CloudTrail record shaped like AWS's own."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from botocore.exceptions import ClientError

from conftest import lookup_all, records_of, corpus_records

REQUIRED_FIELDS = {
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID",
    "eventID", "readOnly", "eventType", "managementEvent", "recipientAccountId", "eventCategory",
}


def records_named(emulator, name: str, region: str = "us-east-1") -> list[dict]:
    trail = emulator.client("cloudtrail", region)
    return records_of(lookup_all(trail, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": name}]))


def test_a_successful_call_has_every_realistic_field(emulator):
    emulator.client("iam").create_role(
        RoleName="deployer",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        Tags=[{"Key": "team", "Value": "platform"}],
    )
    [record] = records_named(emulator, "CreateRole")
    assert set(record) >= REQUIRED_FIELDS
    assert record["eventSource"] == "iam.amazonaws.com"
    assert record["readOnly"] is False and record["managementEvent"] is True
    assert record["eventType"] == "AwsApiCall" and record["eventCategory"] == "Management"
    assert record["recipientAccountId"] == "123456789012"
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert "Boto3" in record["userAgent"] or "botocore" in record["userAgent"]
    assert record["requestParameters"]["roleName"] == "deployer"
    assert record["requestParameters"]["tags"] == [{"key": "team", "value": "platform"}]
    assert record["responseElements"]["role"]["roleName"] == "deployer"
    assert record["eventTime"].endswith("Z")


def test_reads_are_read_only_and_have_no_response_elements(emulator):
    emulator.client("iam").list_roles()
    [record] = records_named(emulator, "ListRoles")
    assert record["readOnly"] is True
    assert record["responseElements"] is None


def test_failed_calls_carry_error_code_and_message(emulator):
    with pytest.raises(ClientError):
        emulator.client("iam").attach_user_policy(
            UserName="ghost", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    [record] = records_named(emulator, "AttachUserPolicy")
    assert record["errorCode"] == "NoSuchEntity"
    assert record["errorMessage"]
    assert record["responseElements"] is None


def test_secrets_are_redacted(emulator):
    iam = emulator.client("iam")
    iam.create_user(UserName="erin")
    iam.create_login_profile(UserName="erin", Password="Sup3r-secret!")
    iam.create_access_key(UserName="erin")
    [login] = records_named(emulator, "CreateLoginProfile")
    assert login["requestParameters"] == {"userName": "erin"}
    assert "Sup3r-secret!" not in json.dumps(login)
    [key] = records_named(emulator, "CreateAccessKey")
    assert key["responseElements"]["accessKey"]["userName"] == "erin"
    assert "secretAccessKey" not in key["responseElements"]["accessKey"]


def test_identity_of_an_iam_user_and_of_an_assumed_role_session(emulator):
    iam = emulator.client("iam")
    iam.create_user(UserName="frank")
    key = iam.create_access_key(UserName="frank")["AccessKey"]
    as_frank = emulator.client("iam", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    as_frank.create_group(GroupName="frank-made")
    role = iam.create_role(RoleName="ci", AssumeRolePolicyDocument="{}")["Role"]
    credentials = emulator.client("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="build-42")["Credentials"]
    as_ci = emulator.client("iam", key=credentials["AccessKeyId"],
                            secret=credentials["SecretAccessKey"],
                            token=credentials["SessionToken"])
    as_ci.create_group(GroupName="ci-made")

    by_group = {r["requestParameters"]["groupName"]: r["userIdentity"]
                for r in records_named(emulator, "CreateGroup")}
    user = by_group["frank-made"]
    assert user["type"] == "IAMUser" and user["userName"] == "frank"
    assert user["arn"].endswith(":user/frank") and user["accessKeyId"] == key["AccessKeyId"]
    session = by_group["ci-made"]
    assert session["type"] == "AssumedRole"
    assert session["arn"] == "arn:aws:sts::123456789012:assumed-role/ci/build-42"
    assert session["sessionContext"]["sessionIssuer"]["arn"] == role["Arn"]
    assert session["principalId"].endswith(":build-42")


def test_monitoring_services_are_recorded_for_tampering_detection(emulator):
    region = "eu-central-1"
    emulator.client("logs", region).create_log_group(logGroupName="trail-logs")
    emulator.client("logs", region).delete_log_group(logGroupName="trail-logs")
    emulator.client("sns", region).create_topic(Name="alarms")
    emulator.client("cloudwatch", region).delete_alarms(AlarmNames=["iam-changes"])
    with pytest.raises(ClientError):
        emulator.client("cloudtrail", region).stop_logging(Name="missing-trail")
    sources = {(r["eventSource"], r["eventName"]): r for r in records_of(
        lookup_all(emulator.client("cloudtrail", region)))}
    assert ("logs.amazonaws.com", "DeleteLogGroup") in sources
    assert sources[("logs.amazonaws.com", "DeleteLogGroup")]["requestParameters"] == {
        "logGroupName": "trail-logs"}
    assert ("sns.amazonaws.com", "CreateTopic") in sources
    assert ("monitoring.amazonaws.com", "DeleteAlarms") in sources
    stop = sources[("cloudtrail.amazonaws.com", "StopLogging")]
    assert stop["errorCode"] and stop["requestParameters"] == {"name": "missing-trail"}
    assert {r["awsRegion"] for r in sources.values()} == {region}


def test_emulated_records_look_like_real_ones(emulator):
    """Cross-check with real records: no field the real service would not write."""
    iam = emulator.client("iam")
    iam.create_user(UserName="gina")
    iam.attach_user_policy(UserName="gina",
                           PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.create_access_key(UserName="gina")
    iam.create_login_profile(UserName="gina", Password="x-Secret-1")
    real_fields: dict[str, set[str]] = defaultdict(set)
    real_params: dict[str, set[str]] = defaultdict(set)
    for record in corpus_records():
        if record.get("eventSource") == "iam.amazonaws.com" and not record.get("errorCode"):
            real_fields[record["eventName"]] |= set(record)
            if isinstance(record.get("requestParameters"), dict):
                real_params[record["eventName"]] |= set(record["requestParameters"])
    compared = 0
    for name in ("CreateUser", "AttachUserPolicy", "CreateAccessKey", "CreateLoginProfile"):
        if name not in real_fields:
            continue
        [ours] = records_named(emulator, name)
        assert set(ours) <= real_fields[name] | {"eventCategory", "tlsDetails"}, name
        assert set(ours["requestParameters"]) <= real_params[name], name
        compared += 1
    assert compared >= 3, "the corpus should hold real records for these calls"
