"""IAM Access Analyzer's policy checks, through boto3 as the daemon calls them."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

READ_LOGS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"}]}
READ_ALL_S3 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
PASS_ROLE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    {"Effect": "Allow", "Action": ["iam:Pass*"], "Resource": "*"}]}


def check_no_new_access(emulator, existing, new, policy_type="IDENTITY_POLICY"):
    return emulator.client("accessanalyzer").check_no_new_access(
        existingPolicyDocument=json.dumps(existing), newPolicyDocument=json.dumps(new),
        policyType=policy_type)


def test_a_narrower_policy_passes_and_a_wider_one_fails(emulator):
    narrower = check_no_new_access(emulator, READ_ALL_S3, READ_LOGS)
    assert narrower["result"] == "PASS"
    assert narrower["reasons"] == []
    wider = check_no_new_access(emulator, READ_LOGS, PASS_ROLE)
    assert wider["result"] == "FAIL"
    # Both statements of the new policy are new access: logs/* does not cover *, nor Get* Pass*.
    assert [r["statementIndex"] for r in wider["reasons"]] == [0, 1]
    assert emulator.counters()["access_analyzer_calls"] == 2


def test_not_action_covers_what_it_does_not_exclude(emulator):
    all_but_iam = {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    assert check_no_new_access(emulator, all_but_iam, READ_ALL_S3)["result"] == "PASS"
    assert check_no_new_access(emulator, all_but_iam, PASS_ROLE)["result"] == "FAIL"


def test_a_trust_policy_opened_to_everyone_is_new_access(emulator):
    own = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                          "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}
    anyone = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "*"}]}
    assert check_no_new_access(emulator, own, own, "RESOURCE_POLICY")["result"] == "PASS"
    assert check_no_new_access(emulator, own, anyone, "RESOURCE_POLICY")["result"] == "FAIL"


def test_access_not_granted_matches_the_listed_actions_through_globs(emulator):
    client = emulator.client("accessanalyzer")
    granted = client.check_access_not_granted(
        policyDocument=json.dumps(PASS_ROLE), access=[{"actions": ["iam:PassRole", "ssm:SendCommand"]}],
        policyType="IDENTITY_POLICY")
    assert granted["result"] == "FAIL"
    assert [r["statementIndex"] for r in granted["reasons"]] == [1]
    clean = client.check_access_not_granted(
        policyDocument=json.dumps(READ_LOGS), access=[{"actions": ["iam:PassRole"]}],
        policyType="IDENTITY_POLICY")
    assert clean["result"] == "PASS"


def test_bad_requests_are_validation_errors(emulator):
    client = emulator.client("accessanalyzer")
    with pytest.raises(ClientError) as error:
        client.check_no_new_access(existingPolicyDocument="{not json", newPolicyDocument="{}",
                                   policyType="IDENTITY_POLICY")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "not JSON" in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:
        client.check_access_not_granted(policyDocument=json.dumps(READ_LOGS),
                                        access=[{"actions": ["a:b"] * 101}], policyType="IDENTITY_POLICY")
    assert error.value.response["Error"]["Code"] == "ValidationException"
