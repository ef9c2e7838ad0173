"""The README's demo: iamwatchd on a local AWS, end to end, stopping by itself (``scripts/demo``).

1. starts the emulator (moto + our plugin + an SMTP sink + an HTTP sink for chat);
2. ``iamwatchd deploy`` creates the stack there (trail, log group, filters, alarms, topics, queue);
3. ``iamwatchd run`` starts the daemon, mailing to the sink and posting HIGH and CRITICAL
   changes to a Slack channel (the HTTP sink);
4. a scripted set of IAM activity: a new user, an admin-policy attach, a new access key, a read
   and a failed call;
5. prints the e-mails and the Slack messages the daemon sent, then stops everything.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = pathlib.Path(__file__).resolve().parent
ROOT_KEY = "AKIAIOSFODNN7EXAMPLE"


def say(text: str) -> None:
    bold = sys.stdout.isatty()
    print(f"\n\033[1m== {text}\033[0m" if bold else f"\n== {text}", flush=True)


def client(url: str, service: str, key: str = ROOT_KEY, secret: str = "x"):
    return boto3.client(service, region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 3, "mode": "standard"}))


def daemon_config(work: pathlib.Path, smtp_port: int, outputs: dict) -> pathlib.Path:
    state = work / "state"
    state.mkdir()
    path = work / "iamwatchd.toml"
    path.write_text(f"""
[aws]
region = "us-east-1"

[poller]
poll_interval = "1s"
short_window = "5s"
sweep_interval = "10s"
sweep_horizon = "2m"
start_from = "5m"

[store]
state_directory = "{state}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"            # the local sink only; real servers get STARTTLS (the default)
allow_plaintext = true
from = "iamwatchd <iamwatchd@example.com>"
to = ["security@example.com"]

[notifiers.chat]        # a Slack channel; its webhook URL (a secret) comes from the environment
type = "slack"
min_severity = "HIGH"

[digest]                # bursts of one principal's changes become digests; a short window for
window = "10s"          # the demo (default 60s): alice's failed call is held that long

[alarm]                 # the safety net: the stack's alarm reaches the daemon through this queue
queue_url = "{outputs['QueueUrl']}"
log_group = "{outputs['LogGroupName']}"
""")
    return path


def wait_for(what: str, condition, deadline: float = 60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)  # polling a condition at a human pace
    raise SystemExit(f"demo: timed out waiting for {what}")


def show_mail(path: pathlib.Path) -> None:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    print(f"\n--- {message['Subject']}")
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body else ""
    # The who and what sections; the full mail also has where, when, why and a console link.
    for line in text.splitlines()[2:24]:
        print(f"    {line}")


def show_chat(path: pathlib.Path) -> None:
    request = json.loads(path.read_text())
    if request["status"] >= 300:
        return
    message = json.loads(request["body"])
    blocks = message["blocks"]
    print(f"\n--- Slack {request['path']}: {blocks[0]['text']['text']}")
    for field in blocks[1].get("fields", [])[:3]:
        print(f"    {field['text']}")


def main(binary: str) -> int:
    work = pathlib.Path(tempfile.mkdtemp(prefix="iamwatchd-demo-"))
    maildir = work / "mail"
    chatdir = work / "chat"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "iamwatchd_emulator", "--maildir", str(maildir),
         "--http-dir", str(chatdir),
         "--lookup-delay", "2", "--log-delay", "4", "--exit-with-stdin"],
        cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        stderr=(work / "emulator.log").open("w"),
    )
    daemon = None
    try:
        ready = emulator.stdout.readline()
        if not ready.startswith("READY "):
            print("demo: the emulator did not start", file=sys.stderr)
            return 1
        fields = dict(part.split("=", 1) for part in ready.split()[1:])
        url, smtp_port = fields["aws"], int(fields["smtp"].rsplit(":", 1)[1])
        print(f"local AWS at {url}, mail sink on port {smtp_port}, files in {work}")
        env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": ROOT_KEY,
               "AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true",
               "IAMWATCHD__NOTIFIERS__CHAT__WEBHOOK_URL": f"{fields['http']}/slack/security"}

        say("iamwatchd deploy --email security@example.com --daemon-queue true")
        subprocess.run([binary, "deploy", "--email", "security@example.com",
                        "--daemon-queue", "true", "--alarm-period", "60"], env=env, check=True)

        say("iamwatchd run (mail to the local sink; HIGH and CRITICAL also to a Slack channel)")
        stack = client(url, "cloudformation").describe_stacks(StackName="iamwatchd")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        config = daemon_config(work, smtp_port, outputs)
        log = (work / "daemon.log").open("w")
        daemon = subprocess.Popen([binary, "run", "--config", str(config)], env=env,
                                  stdout=log, stderr=log)

        say("alice changes IAM, reads, and tries something that fails")
        root = client(url, "iam")
        root.create_user(UserName="alice")
        key = root.create_access_key(UserName="alice")["AccessKey"]
        alice = client(url, "iam", key["AccessKeyId"], key["SecretAccessKey"])
        alice.create_user(UserName="bob")
        print("  alice: CreateUser bob")
        alice.attach_user_policy(UserName="bob",
                                 PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        print("  alice: AttachUserPolicy AdministratorAccess -> bob")
        alice.create_access_key(UserName="bob")
        print("  alice: CreateAccessKey for bob")
        alice.list_users()
        print("  alice: ListUsers (a read: not reported)")
        try:
            alice.delete_role(RoleName="production-admin")
        except ClientError as error:
            print(f"  alice: DeleteRole production-admin -> {error.response['Error']['Code']}")

        say("e-mails received by the sink (one per change; the read is not among them)")
        mails = wait_for("six e-mails", lambda: (lambda m: m if len(m) >= 6 else None)(
            sorted(maildir.glob("*.eml"))))
        for path in mails:
            show_mail(path)

        say("Slack messages received by the sink (min_severity = HIGH: the HIGH and CRITICAL ones)")
        posts = wait_for("five Slack messages", lambda: (lambda p: p if len(p) >= 5 else None)(
            sorted(chatdir.glob("*.json"))))
        for path in posts:
            show_chat(path)

        say("stopping the daemon (SIGTERM: it finishes what is in flight and exits 0)")
        daemon.send_signal(signal.SIGTERM)
        print(f"  exit status {daemon.wait(timeout=30)}; logs and mail in {work}")
        daemon = None
        return 0
    finally:
        if daemon is not None:
            daemon.kill()
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
