"""CloudWatch over Smithy RPC v2 CBOR, end to end through a real HTTP server.

The client side is botocore's own RPC v2 CBOR implementation (``RpcV2CBORSerializer`` and
``RpcV2CBORParser``): botocore 1.44 lists CloudWatch's protocols as ``smithy-rpc-v2-cbor``,
``json`` and ``query`` but picks ``json`` first and has no setting to choose, so the tests load a
copy of botocore's CloudWatch model that lists only ``smithy-rpc-v2-cbor``. Everything else -
signing, request compression, error factory, paginators - is botocore's stock behaviour.

The server is moto's WSGI application wrapped by :class:`CborCloudWatch`, served by werkzeug on
an ephemeral port. Between the two sits :class:`InnerRequests`, a stand-in for the CloudTrail
recorder that reads each translated request's form parameters, so the tests can check that moto
(and the recorder) receive an ordinary query-protocol call.
"""

from __future__ import annotations

import datetime
import io
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs

import boto3
import botocore.session
import cbor2
import pytest
import urllib3
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

# The emulator package lives next to this directory and is not installed into the venv.

from iamwatchd_emulator.cbor import CborCloudWatch

REGION = "eu-west-2"
ACCOUNT = "123456789012"  # moto's default account for any access key it does not know
SERVICE = "GraniteServiceVersion20100801"
CREDENTIALS = {"aws_access_key_id": "AKIDCBORTEST", "aws_secret_access_key": "secret"}
#: A SigV4 header for hand-made requests: moto routes by its credential scope, never checks it.
AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential=AKIDCBORTEST/20240101/{REGION}/monitoring/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0000"
)


@dataclass
class InnerRequest:
    method: str
    path: str
    content_type: str
    authorization: str
    target: str
    form: dict[str, list[str]]


@dataclass
class InnerRequests:
    """WSGI middleware recording what reaches moto, as the CloudTrail recorder would see it."""

    app: Callable
    seen: list[InnerRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        content_type = environ.get("CONTENT_TYPE", "")
        form = {}
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8"))
        with self.lock:
            self.seen.append(
                InnerRequest(
                    method=environ["REQUEST_METHOD"],
                    path=environ.get("PATH_INFO", ""),
                    content_type=content_type,
                    authorization=environ.get("HTTP_AUTHORIZATION", ""),
                    target=environ.get("HTTP_X_AMZ_TARGET", ""),
                    form=form,
                )
            )
        return self.app(environ, start_response)

    def query_calls(self, action: str) -> list[InnerRequest]:
        with self.lock:
            return [r for r in self.seen if r.form.get("Action") == [action]]


@dataclass
class Server:
    url: str
    inner: InnerRequests


@pytest.fixture(scope="module")
def server():
    inner = InnerRequests(DomainDispatcherApplication(create_backend_app))
    httpd = make_server("127.0.0.1", 0, CborCloudWatch(inner), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(url=f"http://127.0.0.1:{httpd.server_port}", inner=inner)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def cbor_client(server, tmp_path_factory):
    """A boto3 CloudWatch client that speaks RPC v2 CBOR (see the module docstring)."""
    data_dir = tmp_path_factory.mktemp("botocore-data")
    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model("cloudwatch", "service-2")
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    model_path = data_dir / "cloudwatch" / model["metadata"]["apiVersion"] / "service-2.json"
    model_path.parent.mkdir(parents=True)
    model_path.write_text(json.dumps(model))

    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(data_dir))
    client = boto3.Session(botocore_session=session).client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=server.url,
        config=Config(retries={"total_max_attempts": 1}),
        **CREDENTIALS,
    )
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def put_alarm(client, name: str, **overrides: Any) -> None:
    params = {
        "AlarmName": name,
        "Namespace": "IamWatchd/Test",
        "MetricName": "Changes",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 2,
        "Threshold": 70.5,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Dimensions": [{"Name": "Trail", "Value": "main"}],
        "AlarmActions": [f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"],
        "ActionsEnabled": True,
    }
    client.put_metric_alarm(**{**params, **overrides})


def describe_one(client, name: str) -> dict[str, Any]:
    (alarm,) = client.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarm


def raw_call(server: Server, path: str, body: bytes, **headers: str) -> urllib3.BaseHTTPResponse:
    """A hand-made RPC v2 CBOR request, for what botocore hides (raw bytes, protocol errors)."""
    request_headers = {
        "smithy-protocol": "rpc-v2-cbor",
        "Content-Type": "application/cbor",
        "Accept": "application/cbor",
        "Authorization": AUTHORIZATION,
        "X-Amz-Date": "20240101T000000Z",
        **headers,
    }
    return urllib3.request(
        "POST", server.url + path, body=body, headers=request_headers, retries=False
    )


def test_alarm_lifecycle(cbor_client, server):
    name = unique("lifecycle")
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    put_alarm(cbor_client, name)
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)

    alarm = describe_one(cbor_client, name)
    # The alarm lives in the caller's region: the credential scope survived the translation.
    assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    assert alarm["Threshold"] == 70.5
    assert alarm["EvaluationPeriods"] == 2
    assert alarm["Dimensions"] == [{"Name": "Trail", "Value": "main"}]
    assert alarm["AlarmActions"] == [f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"]
    assert alarm["ActionsEnabled"] is True
    assert before <= alarm["AlarmConfigurationUpdatedTimestamp"] <= after

    cbor_client.disable_alarm_actions(AlarmNames=[name])
    assert describe_one(cbor_client, name)["ActionsEnabled"] is False
    cbor_client.enable_alarm_actions(AlarmNames=[name])
    assert describe_one(cbor_client, name)["ActionsEnabled"] is True

    cbor_client.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test says so")
    alarm = describe_one(cbor_client, name)
    assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "test says so")
    assert before <= alarm["StateUpdatedTimestamp"]

    cbor_client.delete_alarms(AlarmNames=[name])
    assert cbor_client.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_inner_request_is_an_ordinary_query_call(cbor_client, server):
    name = unique("query-call")
    put_alarm(cbor_client, name)
    cbor_client.delete_alarms(AlarmNames=[name])

    (delete,) = [
        r
        for r in server.inner.query_calls("DeleteAlarms")
        if r.form.get("AlarmNames.member.1") == [name]
    ]
    assert delete.method == "POST"
    assert delete.path == "/"
    assert delete.content_type.startswith("application/x-www-form-urlencoded")
    assert delete.target == ""
    assert delete.form == {
        "Action": ["DeleteAlarms"],
        "Version": ["2010-08-01"],
        "AlarmNames.member.1": [name],
    }
    # botocore signed the CBOR request; the same Authorization header reaches moto.
    assert f"/{REGION}/monitoring/aws4_request" in delete.authorization


def test_describe_alarms_paginator_collects_every_alarm(cbor_client, server):
    prefix = unique("page")
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for name in names:
        put_alarm(cbor_client, name)

    paginator = cbor_client.get_paginator("describe_alarms")
    pages = paginator.paginate(AlarmNamePrefix=prefix, PaginationConfig={"PageSize": 2})
    collected = [alarm["AlarmName"] for page in pages for alarm in page["MetricAlarms"]]

    # moto 5.2.5 ignores MaxRecords and answers in one page; the paginator must still see all,
    # and the page size must have reached moto as the query parameter.
    assert sorted(collected) == names
    calls = [
        r
        for r in server.inner.query_calls("DescribeAlarms")
        if r.form.get("AlarmNamePrefix") == [prefix]
    ]
    assert calls and all(r.form["MaxRecords"] == ["2"] for r in calls)


def test_list_metrics_pages_through_next_token(cbor_client, server):
    namespace = unique("Paging")
    metric_names = sorted(f"metric-{i:03d}" for i in range(501))  # moto pages at 500
    sent_encodings = []

    def record_encoding(request, **_):
        sent_encodings.append(request.headers.get("Content-Encoding"))

    event = "before-send.cloudwatch.PutMetricData"
    cbor_client.meta.events.register(event, record_encoding)
    try:
        cbor_client.put_metric_data(
            Namespace=namespace,
            MetricData=[{"MetricName": n, "Value": 1.0} for n in metric_names],
        )
    finally:
        cbor_client.meta.events.unregister(event, record_encoding)
    # A body this large is gzip-compressed by the client (PutMetricData's requestCompression);
    # a prepared request's header values are bytes.
    assert sent_encodings == [b"gzip"]

    pages = list(cbor_client.get_paginator("list_metrics").paginate(Namespace=namespace))
    listed = sorted(m["MetricName"] for page in pages for m in page["Metrics"])

    assert listed == metric_names
    assert len(pages) == 2
    (second,) = [
        r
        for r in server.inner.query_calls("ListMetrics")
        if r.form.get("Namespace") == [namespace] and "NextToken" in r.form
    ]
    assert second.form["NextToken"] == [pages[0]["NextToken"]]


def test_metric_data_round_trip(cbor_client, server):
    namespace = unique("Stats")
    minute = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    minute -= datetime.timedelta(minutes=5)
    cbor_client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Events", "Timestamp": minute, "Value": value, "Unit": "Count"}
            for value in (1.0, 2.0, 3.0)
        ],
    )
    # The tag-1 timestamp reached moto as the query protocol's ISO 8601 text.
    (put,) = [
        r
        for r in server.inner.query_calls("PutMetricData")
        if r.form.get("Namespace") == [namespace]
    ]
    assert put.form["MetricData.member.1.Timestamp"] == [minute.strftime("%Y-%m-%dT%H:%M:%SZ")]

    window = {
        "StartTime": minute - datetime.timedelta(minutes=1),
        "EndTime": minute + datetime.timedelta(minutes=2),
    }
    stats = cbor_client.get_metric_statistics(
        Namespace=namespace,
        MetricName="Events",
        Period=60,
        Statistics=["Sum", "Average", "Maximum", "SampleCount"],
        **window,
    )
    (point,) = stats["Datapoints"]
    assert point["Timestamp"] == minute
    assert (point["Sum"], point["Average"], point["Maximum"], point["SampleCount"]) == (
        6.0,
        2.0,
        3.0,
        3.0,
    )

    data = cbor_client.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "events",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": "Events"},
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        **window,
    )
    (result,) = data["MetricDataResults"]
    assert result["Timestamps"] == [minute]
    assert result["Values"] == [6.0]


ERROR_CASES = {
    # operation-modelled error whose shape name equals its query code
    "resource-not-found": (
        lambda client, alarm: client.set_alarm_state(
            AlarmName=unique("missing"), StateValue="OK", StateReason="r"
        ),
        "ResourceNotFound",
        "ResourceNotFound",
        404,
    ),
    # shape name InvalidParameterCombinationException, query code InvalidParameterCombination
    "invalid-parameter-combination": (
        lambda client, alarm: client.get_metric_statistics(
            Namespace="IamWatchd/Test",
            MetricName="Changes",
            StartTime=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
            EndTime=datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc),
            Period=60,
        ),
        "InvalidParameterCombinationException",
        "InvalidParameterCombination",
        400,
    ),
    # a service error that SetAlarmState does not list (shape ValidationException)
    "validation": (
        lambda client, alarm: client.set_alarm_state(
            AlarmName=alarm, StateValue="BROKEN", StateReason="r"
        ),
        "ValidationException",
        "ValidationError",
        400,
    ),
}


@pytest.mark.parametrize("case", ERROR_CASES, ids=list(ERROR_CASES))
def test_errors_arrive_as_modelled_exceptions(cbor_client, case):
    call, shape_name, query_code, status = ERROR_CASES[case]
    alarm = unique("errors")
    put_alarm(cbor_client, alarm)

    with pytest.raises(getattr(cbor_client.exceptions, shape_name)) as raised:
        call(cbor_client, alarm)

    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    # botocore took the code from x-amzn-query-error and the shape name from __type.
    assert response["Error"]["Code"] == query_code
    assert response["Error"]["QueryErrorCode"] == shape_name
    assert response["Error"]["Type"] == "Sender"
    assert response["Error"]["Message"]


def test_wire_format(cbor_client, server):
    name = unique("wire")
    put_alarm(cbor_client, name, Threshold=80.0)

    # A client-chosen path prefix and the absolute service shape id route like the plain path.
    response = raw_call(
        server,
        f"/v1/service/com.amazonaws.cloudwatch.{SERVICE}/operation/DescribeAlarms",
        cbor2.dumps({"AlarmNames": [name], "UnknownMember": 1, "AlarmTypes": None}),
    )
    assert response.status == 200
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert response.headers["Content-Type"] == "application/cbor"
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert b"\xc1\xfb" in response.data  # a timestamp: tag 1 over a 64-bit float
    document = cbor2.loads(response.data)
    assert set(document) <= {"MetricAlarms", "CompositeAlarms", "NextToken"}
    (alarm,) = document["MetricAlarms"]
    assert alarm["Threshold"] == 80.0
    assert isinstance(alarm["Threshold"], float)  # a double is never sent as a CBOR integer
    assert isinstance(alarm["StateUpdatedTimestamp"], datetime.datetime)
    assert alarm["StateUpdatedTimestamp"].microsecond % 1000 == 0  # millisecond resolution

    # An operation without output answers 200 with no body and no Content-Type.
    response = raw_call(
        server, f"/service/{SERVICE}/operation/DeleteAlarms", cbor2.dumps({"AlarmNames": [name]})
    )
    assert response.status == 200
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert "Content-Type" not in response.headers
    assert response.data == b""


PROTOCOL_ERRORS = {
    "unknown-operation": (
        "NoSuchOperation",
        cbor2.dumps({}),
        {},
        "com.amazon.coral.service#UnknownOperationException",
    ),
    "not-cbor": ("DescribeAlarms", b"\xff", {}, "com.amazon.coral.service#SerializationException"),
    "trailing-data": (
        "DescribeAlarms",
        cbor2.dumps({}) + b"\x00",
        {},
        "com.amazon.coral.service#SerializationException",
    ),
    "wrong-member-type": (
        "DeleteAlarms",
        cbor2.dumps({"AlarmNames": "not-a-list"}),
        {},
        "com.amazon.coral.service#SerializationException",
    ),
    "unsupported-encoding": (
        "DescribeAlarms",
        cbor2.dumps({}),
        {"Content-Encoding": "br"},
        "com.amazon.coral.service#SerializationException",
    ),
}


@pytest.mark.parametrize("case", PROTOCOL_ERRORS, ids=list(PROTOCOL_ERRORS))
def test_protocol_errors(server, case):
    operation, body, headers, error_type = PROTOCOL_ERRORS[case]
    before = len(server.inner.seen)

    response = raw_call(server, f"/service/{SERVICE}/operation/{operation}", body, **headers)

    assert response.status == 400
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert cbor2.loads(response.data)["__type"] == error_type
    assert len(server.inner.seen) == before  # rejected before anything reached moto


def test_other_requests_pass_through(server):
    # Stock botocore picks awsJson 1.0 for CloudWatch, which moto answers itself.
    json_client = boto3.client(
        "cloudwatch", region_name=REGION, endpoint_url=server.url, **CREDENTIALS
    )
    assert json_client.meta.service_model.resolved_protocol == "json"
    json_client.list_metrics(Namespace=unique("PassThrough"))
    assert server.inner.seen[-1].target == f"{SERVICE}.ListMetrics"
    assert server.inner.seen[-1].path == "/"

    # An RPC v2 CBOR request for another service is not CloudWatch's to translate.
    other = f"/service/SomeOtherService/operation/{unique('Op')}"
    raw_call(server, other, cbor2.dumps({}))
    assert server.inner.seen[-1].path == other
