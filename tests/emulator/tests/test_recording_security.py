"""The security services, Organizations and IAM Identity Center are recorded too, shaped like
AWS's own records of them (AWS's documented examples, field for field where moto answers)."""

from __future__ import annotations

import json

from conftest import lookup_all, records_of


def records_from(emulator, source: str, region: str = "us-east-1") -> list[dict]:
    """Oldest first (LookupEvents answers newest first)."""
    trail = emulator.client("cloudtrail", region)
    return records_of(lookup_all(trail, LookupAttributes=[
        {"AttributeKey": "EventSource", "AttributeValue": source}]))[::-1]


def named(records: list[dict], name: str) -> dict:
    [record] = [r for r in records if r["eventName"] == name]
    return record


def test_guardduty_detector_deleted_and_disabled_with_the_ids_from_the_path(emulator):
    guardduty = emulator.client("guardduty", "eu-west-1")
    detector = guardduty.create_detector(Enable=True)["DetectorId"]
    guardduty.update_detector(DetectorId=detector, Enable=False)
    guardduty.delete_detector(DetectorId=detector)
    records = records_from(emulator, "guardduty.amazonaws.com", "eu-west-1")
    assert [r["eventName"] for r in records] == ["CreateDetector", "UpdateDetector", "DeleteDetector"]
    update = named(records, "UpdateDetector")
    assert update["requestParameters"] == {"detectorId": detector, "enable": False}
    assert update["awsRegion"] == "eu-west-1" and update["readOnly"] is False
    assert named(records, "DeleteDetector")["requestParameters"] == {"detectorId": detector}
    assert named(records, "CreateDetector")["responseElements"] == {"detectorId": detector}


def test_config_recorder_stopped(emulator):
    config = emulator.client("config")
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": "arn:aws:iam::123456789012:role/config"})
    config.stop_configuration_recorder(ConfigurationRecorderName="default")
    stop = named(records_from(emulator, "config.amazonaws.com"), "StopConfigurationRecorder")
    assert stop["requestParameters"] == {"configurationRecorderName": "default"}
    assert stop["eventSource"] == "config.amazonaws.com"


def test_organizations_calls_are_recorded_in_us_east_1(emulator):
    orgs = emulator.client("organizations", "us-east-1")
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    policy = orgs.create_policy(
        Name="deny-leave", Type="SERVICE_CONTROL_POLICY", Description="",
        Content=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}]}),
    )["Policy"]["PolicySummary"]["Id"]
    orgs.attach_policy(PolicyId=policy, TargetId=root)
    attach = named(records_from(emulator, "organizations.amazonaws.com"), "AttachPolicy")
    assert attach["requestParameters"] == {"policyId": policy, "targetId": root}
    assert attach["awsRegion"] == "us-east-1"


def test_identity_center_account_assignment_and_identity_store(emulator):
    sso = emulator.client("sso-admin", "eu-west-1")
    instance = "arn:aws:sso:::instance/ssoins-1111111111111111"
    permission_set = sso.create_permission_set(
        Name="admins", InstanceArn=instance)["PermissionSet"]["PermissionSetArn"]
    sso.create_account_assignment(
        InstanceArn=instance, TargetId="111122223333", TargetType="AWS_ACCOUNT",
        PermissionSetArn=permission_set, PrincipalType="USER", PrincipalId="user-1")
    records = records_from(emulator, "sso.amazonaws.com", "eu-west-1")
    assignment = named(records, "CreateAccountAssignment")
    assert assignment["requestParameters"] == {
        "instanceArn": instance, "targetId": "111122223333", "targetType": "AWS_ACCOUNT",
        "permissionSetArn": permission_set, "principalType": "USER", "principalId": "user-1"}
    assert "accountAssignmentCreationStatus" in assignment["responseElements"]
    store = emulator.client("identitystore", "eu-west-1")
    store.create_group(IdentityStoreId="d-1234567890", DisplayName="admins")
    group = named(records_from(emulator, "identitystore.amazonaws.com", "eu-west-1"), "CreateGroup")
    assert group["requestParameters"]["displayName"] == "admins"


def test_kms_and_security_hub_are_recorded(emulator):
    kms = emulator.client("kms", "eu-west-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    disable = named(records_from(emulator, "kms.amazonaws.com", "eu-west-1"), "DisableKey")
    assert disable["requestParameters"] == {"keyId": key}
    hub = emulator.client("securityhub", "eu-west-1")
    hub.enable_security_hub()
    hub.disable_security_hub()
    names = [r["eventName"] for r in records_from(emulator, "securityhub.amazonaws.com", "eu-west-1")]
    assert names == ["EnableSecurityHub", "DisableSecurityHub"]


def test_sns_publish_is_a_data_event_and_not_in_the_event_history(emulator):
    sns = emulator.client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    sns.publish(TopicArn=topic, Message="hello")
    names = [r["eventName"] for r in records_from(emulator, "sns.amazonaws.com")]
    assert names == ["CreateTopic"]
