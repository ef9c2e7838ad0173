"""A watchable tour of the local AWS that iamwatchd is tested on (run by ``scripts/demo``).

Starts the emulator, deploys the alarm-path stack (trail → log group → metric filter → alarm →
SNS → SQS) through CloudFormation, makes a few IAM changes as an IAM user, then shows both paths
the daemon will watch: the detailed records LookupEvents returns at once, and the bare alarm that
arrives later through the queue. Stops everything by itself.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = pathlib.Path(__file__).resolve().parent
STACK = HERE.parent / "e2e" / "stack.json"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def main() -> int:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "iamwatchd_emulator", "--lookup-delay", "1", "--log-delay", "3",
         "--exit-with-stdin"],
        cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        ready = emulator.stdout.readline()
        if not ready.startswith("READY "):
            print("the emulator did not start", file=sys.stderr)
            return 1
        print(ready.strip())
        url = dict(p.split("=", 1) for p in ready.split()[1:])["aws"]
        return tour(url)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def client(url: str, service: str, key: str = "AKIAIOSFODNN7EXAMPLE", secret: str = "x"):
    return boto3.client(service, region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 3, "mode": "standard"}))


def tour(url: str) -> int:
    say("deploy the alarm path with CloudFormation")
    cfn = client(url, "cloudformation")
    cfn.create_stack(StackName="iamwatchd-demo", TemplateBody=STACK.read_text(),
                     Capabilities=["CAPABILITY_IAM"])
    cfn.get_waiter("stack_create_complete").wait(StackName="iamwatchd-demo",
                                                 WaiterConfig={"Delay": 1})
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName="iamwatchd-demo")["Stacks"][0]["Outputs"]}
    for key, value in sorted(outputs.items()):
        print(f"  {key:13} {value}")

    say("alice changes IAM (and reads, and tries something she may not)")
    root = client(url, "iam")
    root.create_user(UserName="alice")
    key = root.create_access_key(UserName="alice")["AccessKey"]
    alice = client(url, "iam", key["AccessKeyId"], key["SecretAccessKey"])
    alice.create_user(UserName="bob")
    alice.attach_user_policy(UserName="bob",
                             PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    alice.create_access_key(UserName="bob")
    alice.list_users()
    try:
        alice.delete_role(RoleName="does-not-exist")
    except ClientError as error:
        print(f"  (failed as expected: {error.response['Error']['Code']})")

    say("fast path: CloudTrail LookupEvents (EventSource=iam.amazonaws.com), newest first")
    trail = client(url, "cloudtrail")
    deadline = time.monotonic() + 30
    events: list = []
    while time.monotonic() < deadline and not any(e["EventName"] == "DeleteRole" for e in events):
        events = trail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventSource", "AttributeValue": "iam.amazonaws.com"}])["Events"]
        time.sleep(0.5)  # records become visible after --lookup-delay; poll at a human pace
    for event in reversed(events):
        record = json.loads(event["CloudTrailEvent"])
        who = record["userIdentity"].get("userName") or record["userIdentity"]["type"]
        what = json.dumps(record.get("requestParameters") or {})[:70]
        flags = "read" if record["readOnly"] else ("FAILED " + record["errorCode"]
                                                   if record.get("errorCode") else "CHANGE")
        print(f"  {record['eventTime']}  {flags:22} {record['eventName']:18} by {who:6} {what}")

    say("slow path: the alarm's SNS message arrives on the queue (it names no event)")
    sqs = client(url, "sqs")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=outputs["QueueUrl"], WaitTimeSeconds=2)
        if messages.get("Messages"):
            alarm = json.loads(json.loads(messages["Messages"][0]["Body"])["Message"])
            print(json.dumps({k: alarm[k] for k in ("AlarmName", "NewStateValue",
                              "NewStateReason", "StateChangeTime")}, indent=2))
            say("done: iamwatchd joins the two paths and reports each change once, with who/what")
            return 0
    print("no alarm arrived within 60 s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
