"""Several accounts under AWS Organizations: AssumeRole into members, each account's own event
history and LookupEvents limit, and an organization trail carrying every member's records to the
management account's one log group."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import lookup_all, wait_for

MANAGEMENT = "123456789012"
PATTERN = '{ ($.eventSource = "iam.amazonaws.com") && ($.readOnly IS FALSE) }'


def member_account(emulator, name: str) -> str:
    """A new member account of the organization, by CreateAccount."""
    org = emulator.client("organizations")
    status = org.create_account(AccountName=name, Email=f"{name}@example.com")
    return status["CreateAccountStatus"]["AccountId"]


def as_account(emulator, service: str, account: str, role: str = "OrganizationAccountAccessRole"):
    """A client acting in ``account`` through an assumed role, as the daemon would."""
    credentials = emulator.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="iamwatchd")["Credentials"]
    return emulator.client(service, key=credentials["AccessKeyId"],
                           secret=credentials["SecretAccessKey"],
                           token=credentials["SessionToken"])


def trail_to_logs(emulator, name: str, organization: bool) -> str:
    logs = emulator.client("logs")
    group = f"{name}-group"
    logs.create_log_group(logGroupName=group)
    emulator.client("s3").create_bucket(Bucket=f"{name}-bucket")
    trail = emulator.client("cloudtrail")
    trail.create_trail(
        Name=name, S3BucketName=f"{name}-bucket", IsMultiRegionTrail=True,
        IncludeGlobalServiceEvents=True, IsOrganizationTrail=organization,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:us-east-1:{MANAGEMENT}:log-group:{group}:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{MANAGEMENT}:role/trail-to-logs")
    trail.start_logging(Name=name)
    return group


def delivered(emulator, group: str) -> list[dict]:
    events = emulator.client("logs").filter_log_events(logGroupName=group)["events"]
    return [json.loads(e["message"]) for e in events]


def test_each_member_account_has_its_own_event_history_and_identity(emulator):
    emulator.client("organizations").create_organization(FeatureSet="ALL")
    prod, dev = member_account(emulator, "prod"), member_account(emulator, "dev")
    assert len({prod, dev, MANAGEMENT}) == 3
    as_account(emulator, "iam", prod).create_user(UserName="in-prod")
    as_account(emulator, "iam", dev).create_user(UserName="in-dev")

    def history(account: str) -> list[dict]:
        return lookup_all(as_account(emulator, "cloudtrail", account), LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "CreateUser"}])

    prod_events = history(prod)
    assert len(prod_events) == 1
    record = json.loads(prod_events[0]["CloudTrailEvent"])
    assert record["recipientAccountId"] == prod
    assert record["requestParameters"]["userName"] == "in-prod"
    identity = record["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{prod}:assumed-role/OrganizationAccountAccessRole/iamwatchd"
    assert len(history(dev)) == 1
    # The management account's own history holds neither member's change.
    mine = lookup_all(emulator.client("cloudtrail"), LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateUser"}])
    assert mine == []


def test_the_lookup_limit_is_per_account(emulator):
    emulator.client("organizations").create_organization(FeatureSet="ALL")
    prod = member_account(emulator, "prod")
    emulator.settings(lookup_rate=1)
    mine = emulator.client("cloudtrail")
    theirs = as_account(emulator, "cloudtrail", prod)
    mine.lookup_events(MaxResults=1)
    with pytest.raises(ClientError) as throttled:
        mine.lookup_events(MaxResults=1)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    # The management account's bucket is spent; the member's is its own.
    theirs.lookup_events(MaxResults=1)


def test_an_organization_trail_delivers_every_members_records_to_one_log_group(emulator):
    emulator.client("organizations").create_organization(FeatureSet="ALL")
    emulator.client("organizations").enable_aws_service_access(
        ServicePrincipal="cloudtrail.amazonaws.com")
    prod, dev = member_account(emulator, "prod"), member_account(emulator, "dev")
    org_group = trail_to_logs(emulator, "org", organization=True)
    own_group = trail_to_logs(emulator, "own", organization=False)
    logs = emulator.client("logs")
    logs.put_metric_filter(
        logGroupName=org_group, filterName="iam-changes", filterPattern=PATTERN,
        metricTransformations=[{"metricName": "IAMChanges", "metricNamespace": "Watch",
                                "metricValue": "1"}])
    as_account(emulator, "iam", prod).create_user(UserName="in-prod")
    as_account(emulator, "iam", dev).create_user(UserName="in-dev")
    emulator.client("iam").create_user(UserName="in-management")
    # An account that left the organization: its records stay its own.
    gone = member_account(emulator, "gone")
    emulator.client("organizations").remove_account_from_organization(AccountId=gone)
    as_account(emulator, "iam", gone).create_user(UserName="outsider")

    def users_in(group: str) -> dict[str, str]:
        return {r["requestParameters"]["userName"]: r["recipientAccountId"]
                for r in delivered(emulator, group) if r["eventName"] == "CreateUser"}

    emulator.control("POST", "tick")
    org = wait_for(lambda: (users := users_in(org_group)) and len(users) >= 3 and users,
                   "the members' records in the organization trail's log group")
    assert org == {"in-prod": prod, "in-dev": dev, "in-management": MANAGEMENT}
    # A trail that is not an organization trail receives its own account's records only.
    assert users_in(own_group) == {"in-management": MANAGEMENT}
    # The organization trail's metric filter counts every member's change, in the management
    # account's CloudWatch.
    assert emulator.counters()["metric_datapoints"] == 3
    metrics = emulator.client("cloudwatch").list_metrics(Namespace="Watch")["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"IAMChanges"}


def test_assume_role_needs_the_role_and_its_external_id(emulator):
    emulator.client("organizations").create_organization(FeatureSet="ALL")
    prod = member_account(emulator, "prod")
    sts = emulator.client("sts")
    # Organizations made its role in the new account, trusting the management account.
    role = as_account(emulator, "iam", prod).get_role(RoleName="OrganizationAccountAccessRole")
    assert f"arn:aws:iam::{MANAGEMENT}:root" in json.dumps(role["Role"]["AssumeRolePolicyDocument"])
    with pytest.raises(ClientError) as missing:
        sts.assume_role(RoleArn=f"arn:aws:iam::{prod}:role/iamwatchd-member",
                        RoleSessionName="iamwatchd")
    error = missing.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (
        f"User: arn:aws:iam::{MANAGEMENT}:root is not authorized to perform: sts:AssumeRole "
        f"on resource: arn:aws:iam::{prod}:role/iamwatchd-member")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # The refusal is recorded in the caller's account, as CloudTrail does.
    failed = [json.loads(e["CloudTrailEvent"]) for e in lookup_all(
        emulator.client("cloudtrail"),
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}])]
    refused = [r for r in failed if r.get("errorCode")]
    assert [r["errorCode"] for r in refused] == ["AccessDenied"]
    assert refused[0]["requestParameters"]["roleArn"].endswith(":role/iamwatchd-member")

    as_account(emulator, "iam", prod).create_role(
        RoleName="iamwatchd-member", AssumeRolePolicyDocument=json.dumps({"Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "s3cret"}}}]}))
    with pytest.raises(ClientError):
        sts.assume_role(RoleArn=f"arn:aws:iam::{prod}:role/iamwatchd-member",
                        RoleSessionName="iamwatchd", ExternalId="wrong")
    granted = sts.assume_role(RoleArn=f"arn:aws:iam::{prod}:role/iamwatchd-member",
                              RoleSessionName="iamwatchd", ExternalId="s3cret")
    assert granted["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{prod}:assumed-role/iamwatchd-member/iamwatchd")


MEMBER_ROLE_TEMPLATE = json.dumps({"Resources": {"Member": {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "RoleName": "iamwatchd-member",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
            "Action": "sts:AssumeRole"}]},
    }}}})


def test_a_service_managed_stack_set_reaches_the_ou_and_every_account_that_joins_it(emulator):
    org = emulator.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    workloads = org.create_organizational_unit(ParentId=root, Name="workloads")[
        "OrganizationalUnit"]["Id"]
    prod = org.create_organizational_unit(ParentId=workloads, Name="prod")["OrganizationalUnit"]["Id"]
    early, outside = member_account(emulator, "early"), member_account(emulator, "outside")
    org.move_account(AccountId=early, SourceParentId=root, DestinationParentId=workloads)
    cfn = emulator.client("cloudformation")
    cfn.create_stack_set(
        StackSetName="iamwatchd-member", TemplateBody=MEMBER_ROLE_TEMPLATE,
        PermissionModel="SERVICE_MANAGED", Capabilities=["CAPABILITY_NAMED_IAM"],
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False})
    assert cfn.describe_stack_set(StackSetName="iamwatchd-member")["StackSet"][
        "AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    cfn.create_stack_instances(StackSetName="iamwatchd-member", Regions=["us-east-1"],
                               DeploymentTargets={"OrganizationalUnitIds": [workloads]})

    def has_role(account: str) -> bool:
        try:
            as_account(emulator, "iam", account, role="OrganizationAccountAccessRole").get_role(
                RoleName="iamwatchd-member")
            return True
        except ClientError:
            return False

    assert has_role(early)
    assert not has_role(outside)
    # An account moved into the OU, and one created and moved into a child OU, get it too.
    org.move_account(AccountId=outside, SourceParentId=root, DestinationParentId=workloads)
    late = member_account(emulator, "late")
    org.move_account(AccountId=late, SourceParentId=root, DestinationParentId=prod)
    assert has_role(outside) and has_role(late)
    accounts = {s["Account"] for s in cfn.list_stack_instances(
        StackSetName="iamwatchd-member")["Summaries"]}
    assert accounts == {early, outside, late}
    # The role lets the management account in.
    as_account(emulator, "sts", late, role="iamwatchd-member").get_caller_identity()


def _refusal(call) -> dict:
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.response["Error"]


def test_an_organization_trail_needs_the_management_account_all_features_and_trusted_access(
        emulator):
    def org_trail(client, name: str = "org"):
        return lambda: client.create_trail(Name=name, S3BucketName="org-bucket",
                                           IsOrganizationTrail=True)

    emulator.client("s3").create_bucket(Bucket="org-bucket")
    trail = emulator.client("cloudtrail")
    # No organization at all.
    assert _refusal(org_trail(trail))["Code"] == "OrganizationsNotInUseException"
    org = emulator.client("organizations")
    org.create_organization(FeatureSet="ALL")
    # Trusted access not enabled.
    error = _refusal(org_trail(trail))
    assert error["Code"] == "CloudTrailAccessNotEnabledException"
    assert "Trusted access" in error["Message"]
    # A member account may not, trusted access or not.
    org.enable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")
    prod = member_account(emulator, "prod")
    member_trail = as_account(emulator, "cloudtrail", prod)
    as_account(emulator, "s3", prod).create_bucket(Bucket="prod-bucket")
    error = _refusal(lambda: member_trail.create_trail(
        Name="org", S3BucketName="prod-bucket", IsOrganizationTrail=True))
    assert error["Code"] == "NotOrganizationMasterAccountException"
    assert MANAGEMENT in error["Message"]
    # A member's own trail is still fine; so is the management account's organization trail.
    member_trail.create_trail(Name="own", S3BucketName="prod-bucket")
    created = trail.create_trail(Name="org", S3BucketName="org-bucket", IsOrganizationTrail=True)
    assert created["IsOrganizationTrail"] is True
    # Converting a trail later is checked the same way: with trusted access gone, refused.
    trail.create_trail(Name="later", S3BucketName="org-bucket")
    org.disable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")
    error = _refusal(lambda: trail.update_trail(Name="later", IsOrganizationTrail=True))
    assert error["Code"] == "CloudTrailAccessNotEnabledException"
    trail.update_trail(Name="later", IsOrganizationTrail=False)


def test_an_organization_with_consolidated_billing_only_has_no_organization_trail(emulator):
    emulator.client("organizations").create_organization(FeatureSet="CONSOLIDATED_BILLING")
    emulator.client("s3").create_bucket(Bucket="org-bucket")
    error = _refusal(lambda: emulator.client("cloudtrail").create_trail(
        Name="org", S3BucketName="org-bucket", IsOrganizationTrail=True))
    assert error["Code"] == "OrganizationNotInAllFeaturesModeException"


def _member_role_template() -> str:
    return json.dumps({
        "Parameters": {"Principal": {"Type": "String",
                                     "Default": f"arn:aws:iam::{MANAGEMENT}:root"}},
        "Resources": {"Member": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": "iamwatchd-member",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"AWS": {"Ref": "Principal"}},
                    "Action": "sts:AssumeRole"}]},
            }}}})


def _role_trust(emulator, account: str) -> str | None:
    try:
        role = as_account(emulator, "iam", account).get_role(RoleName="iamwatchd-member")
    except ClientError:
        return None
    return json.dumps(role["Role"]["AssumeRolePolicyDocument"])


def _operation(cfn, operation_id: str) -> dict:
    return cfn.describe_stack_set_operation(
        StackSetName="iamwatchd-member-roles", OperationId=operation_id)["StackSetOperation"]


def test_stack_set_instances_below_an_ou_at_any_depth_updated_and_deleted_by_ou(emulator):
    org = emulator.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    workloads = org.create_organizational_unit(ParentId=root, Name="workloads")[
        "OrganizationalUnit"]["Id"]
    prod = org.create_organizational_unit(ParentId=workloads, Name="prod")["OrganizationalUnit"]["Id"]
    eu = org.create_organizational_unit(ParentId=prod, Name="eu")["OrganizationalUnit"]["Id"]
    deep, outside = member_account(emulator, "deep"), member_account(emulator, "outside")
    org.move_account(AccountId=deep, SourceParentId=root, DestinationParentId=eu)
    cfn = emulator.client("cloudformation")
    cfn.create_stack_set(
        StackSetName="iamwatchd-member-roles", TemplateBody=_member_role_template(),
        PermissionModel="SERVICE_MANAGED", Capabilities=["CAPABILITY_NAMED_IAM"],
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False})
    created = cfn.create_stack_instances(
        StackSetName="iamwatchd-member-roles", Regions=["us-east-1"],
        DeploymentTargets={"OrganizationalUnitIds": [workloads]})["OperationId"]
    assert _operation(cfn, created)["Status"] == "SUCCEEDED"
    # Three levels down, and nowhere else.
    assert _role_trust(emulator, deep) is not None
    assert _role_trust(emulator, outside) is None
    summaries = cfn.list_stack_instances(StackSetName="iamwatchd-member-roles")["Summaries"]
    assert [(s["Account"], s["OrganizationalUnitId"]) for s in summaries] == [(deep, workloads)]
    results = cfn.list_stack_set_operation_results(
        StackSetName="iamwatchd-member-roles", OperationId=created)["Summaries"]
    assert [(r["Account"], r["Status"]) for r in results] == [(deep, "SUCCEEDED")]

    # An update reaches the existing instances' stacks: the role trusts the new principal.
    updated = cfn.update_stack_set(
        StackSetName="iamwatchd-member-roles", TemplateBody=_member_role_template(),
        Parameters=[{"ParameterKey": "Principal",
                     "ParameterValue": f"arn:aws:iam::{MANAGEMENT}:role/iamwatchd"}],
        Capabilities=["CAPABILITY_NAMED_IAM"], PermissionModel="SERVICE_MANAGED")["OperationId"]
    assert _operation(cfn, updated)["Status"] == "SUCCEEDED"
    assert "role/iamwatchd" in _role_trust(emulator, deep)

    # Deleting by OU removes the instances below it, and the role with them.
    deleted = cfn.delete_stack_instances(
        StackSetName="iamwatchd-member-roles", Regions=["us-east-1"], RetainStacks=False,
        DeploymentTargets={"OrganizationalUnitIds": [workloads]})["OperationId"]
    assert _operation(cfn, deleted)["Status"] == "SUCCEEDED"
    assert cfn.list_stack_instances(StackSetName="iamwatchd-member-roles")["Summaries"] == []
    assert _role_trust(emulator, deep) is None
    cfn.delete_stack_set(StackSetName="iamwatchd-member-roles")
    with pytest.raises(ClientError) as gone:
        cfn.describe_stack_set(StackSetName="iamwatchd-member-roles")
    assert gone.value.response["Error"]["Code"] == "StackSetNotFoundException"


def test_stack_set_skips_the_management_account_and_a_failing_account_fails_the_operation(
        emulator):
    org = emulator.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    fine, taken = member_account(emulator, "fine"), member_account(emulator, "taken")
    # Someone made a role of that name by hand in one account.
    as_account(emulator, "iam", taken).create_role(
        RoleName="iamwatchd-member", AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    cfn = emulator.client("cloudformation")
    cfn.create_stack_set(
        StackSetName="iamwatchd-member-roles", TemplateBody=_member_role_template(),
        PermissionModel="SERVICE_MANAGED", Capabilities=["CAPABILITY_NAMED_IAM"])
    operation_id = cfn.create_stack_instances(
        StackSetName="iamwatchd-member-roles", Regions=["us-east-1"],
        DeploymentTargets={"OrganizationalUnitIds": [root]})["OperationId"]
    operation = _operation(cfn, operation_id)
    assert operation["Status"] == "FAILED"
    assert "1 of 2" in operation["StatusReason"]
    results = {r["Account"]: r for r in cfn.list_stack_set_operation_results(
        StackSetName="iamwatchd-member-roles", OperationId=operation_id)["Summaries"]}
    assert set(results) == {fine, taken}, "the management account gets no instance"
    assert results[fine]["Status"] == "SUCCEEDED"
    assert results[taken]["Status"] == "FAILED"
    assert "already exists" in results[taken]["StatusReason"], results[taken]
    assert _role_trust(emulator, fine) is not None


def test_assume_role_calls_are_counted_by_the_account_gone_into(emulator):
    emulator.client("organizations").create_organization(FeatureSet="ALL")
    prod, dev = member_account(emulator, "prod"), member_account(emulator, "dev")
    assert emulator.control("GET", "counters/accounts") == (200, {})
    as_account(emulator, "iam", prod)
    as_account(emulator, "iam", prod)
    as_account(emulator, "iam", dev)
    with pytest.raises(ClientError):
        as_account(emulator, "iam", dev, role="iamwatchd-member")  # no such role: refused
    status, counted = emulator.control("GET", "counters/accounts")
    assert status == 200
    zero = {"lookup_events_calls": 0, "lookup_events_throttled": 0}
    assert counted == {
        prod: {"assume_role_calls": 2, "assume_role_refused": 0, **zero},
        dev: {"assume_role_calls": 2, "assume_role_refused": 1, **zero},
    }
    # The management account, whose credentials made every call, went into none of them.
    assert MANAGEMENT not in counted


def test_lookup_events_calls_and_throttles_are_counted_per_account(emulator):
    emulator.client("organizations").create_organization(FeatureSet="ALL")
    prod = member_account(emulator, "prod")
    theirs = as_account(emulator, "cloudtrail", prod)
    emulator.settings(lookup_rate=1)
    mine = emulator.client("cloudtrail")
    outcomes = []
    for _ in range(3):
        try:
            mine.lookup_events(MaxResults=1)
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert outcomes == ["ok", "ThrottlingException", "ThrottlingException"]
    theirs.lookup_events(MaxResults=1)
    # Another region has a budget of its own; its calls count in the same account.
    emulator.client("cloudtrail", "us-west-2").lookup_events(MaxResults=1)
    counted = emulator.control("GET", "counters/accounts")[1]
    assert counted[MANAGEMENT]["lookup_events_calls"] == 4
    assert counted[MANAGEMENT]["lookup_events_throttled"] == 2
    assert counted[prod]["lookup_events_calls"] == 1
    assert counted[prod]["lookup_events_throttled"] == 0
    assert counted[prod]["assume_role_calls"] == 1
    # The per-account counts add up to the emulator's totals.
    totals = emulator.counters()
    assert sum(c["lookup_events_calls"] for c in counted.values()) == totals["lookup_events_calls"]
    assert (sum(c["lookup_events_throttled"] for c in counted.values())
            == totals["lookup_events_throttled"])
    # A reset forgets them.
    emulator.control("POST", "reset")
    assert emulator.control("GET", "counters/accounts") == (200, {})
