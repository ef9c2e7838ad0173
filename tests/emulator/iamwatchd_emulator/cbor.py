"""CloudWatch over the Smithy RPC v2 CBOR protocol, translated to the query protocol moto speaks.

Why this exists: the current AWS SDKs for Rust (and others) talk to CloudWatch in the Smithy
RPC v2 CBOR protocol (``smithy-protocol: rpc-v2-cbor``), while moto 5.2.5 answers CloudWatch in
the query protocol (form-encoded request, XML response) and in awsJson 1.0 - never in CBOR. Rather
than teach moto a third wire format, :class:`CborCloudWatch` sits in front of the WSGI stack and
translates each CBOR call into the equivalent query call and each XML answer back into CBOR.

The translation is driven entirely by botocore's CloudWatch service model, so it is generic:
no operation is special-cased. botocore's ``QuerySerializer`` builds the form body and its
``QueryParser`` reads moto's XML; this module only converts values between the CBOR data model
and botocore's Python data model, shape by shape.

The translated request is a normal query-protocol CloudWatch call (``POST /``, form body
``Action=…&Version=2010-08-01&…``) carrying the caller's original ``Authorization`` and
``X-Amz-*`` headers, so anything between this middleware and moto - moto itself deriving region
and account from the SigV4 credential scope, the CloudTrail recorder reading ``Action`` and the
form parameters - sees exactly what a query-protocol client would have sent.

Wire rules implemented (Smithy RPC v2 CBOR specification, and the awsQueryCompatible trait that
the CloudWatch model carries):

* Requests: ``POST {prefix?}/service/GraniteServiceVersion20100801/operation/{Operation}`` (the
  service segment may also be the absolute shape id with ``#`` written as ``.``), header
  ``smithy-protocol: rpc-v2-cbor``, body a CBOR map of the input members (empty body = empty
  input), optionally ``Content-Encoding: gzip`` (PutMetricData carries ``requestCompression``).
* Responses: status 200, headers ``smithy-protocol: rpc-v2-cbor`` and ``Content-Type:
  application/cbor``, body a CBOR map of the output members; operations without an output shape
  answer with an empty body and no ``Content-Type``. Timestamps are tag 1 over a 64-bit float of
  epoch seconds (millisecond resolution); ``double``/``float`` members are always CBOR floats
  (the Rust decoder rejects an integer where a double is modelled); blobs are byte strings.
* Errors: the modelled status code, body ``{"__type": "<namespace>#<ErrorShape>", "message": …}``
  and, because CloudWatch is awsQueryCompatible, header ``x-amzn-query-error: <QueryCode>;<Type>``.
  Clients match errors on that query code (the Rust SDK's generated matchers use e.g.
  ``"InvalidParameterCombination"``, not the shape name ``InvalidParameterCombinationException``),
  so both are sent.
"""

from __future__ import annotations

import datetime
import gzip
import io
import uuid
import zlib
from http import HTTPStatus
from typing import Any, Callable, Iterable

import botocore.session
import cbor2
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel, Shape
from botocore.parsers import QueryParser, ResponseParserError
from botocore.serialize import QuerySerializer
from botocore.utils import percent_encode_sequence
from werkzeug.wsgi import get_input_stream

StartResponse = Callable[..., Any]

#: Smithy namespace of the CloudWatch model. botocore's JSON model does not carry it, but the
#: ``__type`` of an error must be an absolute shape id
#: (``com.amazonaws.cloudwatch#ResourceNotFound``).
SMITHY_NAMESPACE = "com.amazonaws.cloudwatch"

PROTOCOL_HEADER_VALUE = "rpc-v2-cbor"
CBOR_CONTENT_TYPE = "application/cbor"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

#: Protocol-level failures that happen before an operation runs. AWS's JSON-family front end
#: answers these with the ``com.amazon.coral.service`` shapes; they have no query-protocol code.
SERIALIZATION_EXCEPTION = "com.amazon.coral.service#SerializationException"
UNKNOWN_OPERATION_EXCEPTION = "com.amazon.coral.service#UnknownOperationException"

#: Request headers that describe the CBOR encoding of the original request. They are dropped from
#: the translated request so that nothing downstream takes the form request for a CBOR or JSON
#: one, or tries to gunzip or de-chunk the plain form body.
_CBOR_ONLY_HEADERS = (
    "HTTP_SMITHY_PROTOCOL",
    "HTTP_ACCEPT",
    "HTTP_CONTENT_ENCODING",
    "HTTP_TRANSFER_ENCODING",
    "HTTP_X_AMZN_QUERY_MODE",
    "HTTP_X_AMZ_TARGET",
    "HTTP_X_AMZN_TARGET",
)


class MalformedRequest(Exception):
    """The CBOR request cannot be mapped onto the operation's input shape.

    Raised with a message naming the offending member path, which is returned to the caller in
    a ``SerializationException`` - the error AWS answers for bodies it cannot deserialise.
    """


class CborCloudWatch:
    """WSGI middleware answering CloudWatch's RPC v2 CBOR protocol in front of a query-protocol app.

    Every request that is not an RPC v2 CBOR call for CloudWatch is passed to ``app`` untouched.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.service_model: ServiceModel = botocore.session.get_session().get_service_model(
            "cloudwatch"
        )
        target_prefix = self.service_model.metadata["targetPrefix"]
        # The spec lets a client name the service by its shape name or by its absolute shape id.
        self._service_segments = {target_prefix, f"{SMITHY_NAMESPACE}.{target_prefix}"}
        # Both keep no per-request state, so one instance serves every server thread.
        self._serializer = QuerySerializer()
        self._parser = QueryParser()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        operation_name = self._operation_name(environ)
        if operation_name is None:
            return self.app(environ, start_response)
        status, headers, body = self._handle(environ, operation_name)
        if not any(name.lower() == "content-length" for name, _ in headers):
            headers = [*headers, ("Content-Length", str(len(body)))]
        start_response(_status_line(status), headers)
        return [body]

    def _operation_name(self, environ: dict[str, Any]) -> str | None:
        """The operation an RPC v2 CBOR request for CloudWatch names, or None for any other request.

        Only the last four path segments route a request (``service/{name}/operation/{op}``), so a
        client may put its own prefix in front.
        """
        if environ.get("HTTP_SMITHY_PROTOCOL", "").strip().lower() != PROTOCOL_HEADER_VALUE:
            return None
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        segments = environ.get("PATH_INFO", "").rstrip("/").split("/")
        if len(segments) < 4:
            return None
        service_word, service, operation_word, operation = segments[-4:]
        if service_word != "service" or operation_word != "operation":
            return None
        if service not in self._service_segments:
            return None
        return operation

    def _handle(self, environ: dict[str, Any], operation_name: str) -> tuple[int, list, bytes]:
        try:
            operation = self.service_model.operation_model(operation_name)
        except OperationNotFoundError:
            return _protocol_error(
                400, UNKNOWN_OPERATION_EXCEPTION, f"Unknown operation {operation_name}"
            )
        try:
            params = self._decode_input(environ, operation)
        except MalformedRequest as error:
            return _protocol_error(400, SERIALIZATION_EXCEPTION, str(error))

        form = self._serializer.serialize_to_request(params, operation)
        form_body = percent_encode_sequence(form["body"]).encode("ascii")
        inner_status, inner_headers, inner_body = self._call_app(
            _query_environ(environ, form_body)
        )
        return self._encode_answer(operation, inner_status, inner_headers, inner_body)

    def _decode_input(self, environ: dict[str, Any], operation: OperationModel) -> dict[str, Any]:
        """The operation's input parameters, in botocore's Python data model."""
        # get_input_stream honours Content-Length, or reads to the end of a chunked body.
        raw = get_input_stream(environ).read()
        raw = _decode_content_encoding(raw, environ.get("HTTP_CONTENT_ENCODING", ""))
        shape = operation.input_shape
        if not raw:
            return {}
        stream = io.BytesIO(raw)
        try:
            document = cbor2.load(stream)
        except (cbor2.CBORError, ValueError, OverflowError) as error:
            raise MalformedRequest(f"Request body is not valid CBOR: {error}") from error
        if stream.tell() != len(raw):
            raise MalformedRequest("Request body holds more than one CBOR data item")
        if shape is None:
            return {}
        return _from_cbor(shape, document, shape.name)

    def _call_app(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Runs the inner WSGI app to completion and returns its status code, headers and body."""
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = list(headers)
            return written.append

        result = self.app(environ, capture)
        try:
            for chunk in result:
                written.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], b"".join(written)

    def _encode_answer(
        self,
        operation: OperationModel,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[int, list, bytes]:
        """Re-encodes moto's query-protocol answer as the RPC v2 CBOR answer."""
        header_map = {name.lower(): value for name, value in headers}
        response = {"status_code": status, "headers": header_map, "body": body}
        request_id = header_map.get("x-amzn-requestid") or str(uuid.uuid4())

        if status >= 300:
            try:
                error = self._parser.parse(response, operation.output_shape).get("Error") or {}
            except ResponseParserError:
                error = {}
            # botocore reports a body that is no error document (an empty or HTML 5xx page) with
            # the status code as its Code. The spec tells clients to judge such a response by its
            # status code alone, so it is handed on as it is rather than dressed up as an error.
            if not error.get("Code") or error["Code"] == str(status):
                return status, headers, body
            return self._error_answer(operation, status, error, request_id)

        # A success document moto cannot have produced for this operation is an emulator bug;
        # botocore's ResponseParserError propagates and the server reports a 500.
        parsed = self._parser.parse(response, operation.output_shape)
        answer_headers = [
            ("smithy-protocol", PROTOCOL_HEADER_VALUE),
            ("x-amzn-RequestId", request_id),
        ]
        if operation.output_shape is None:
            return 200, answer_headers, b""
        document = _to_cbor(operation.output_shape, parsed)
        answer_headers.append(("Content-Type", CBOR_CONTENT_TYPE))
        return 200, answer_headers, cbor2.dumps(document)

    def _error_answer(
        self, operation: OperationModel, status: int, error: dict[str, Any], request_id: str
    ) -> tuple[int, list, bytes]:
        """A query-protocol ``<Error>`` as an RPC v2 CBOR error.

        The error shape is looked up by its query code, first among the operation's own errors:
        two CloudWatch shapes share the code ``ResourceNotFound`` (``ResourceNotFound`` and
        ``DashboardNotFoundError``), and the operation's list says which one it can raise.
        """
        code = error["Code"]
        error_type = error.get("Type") or ("Receiver" if status >= 500 else "Sender")
        message = error.get("Message") or error.get("message") or ""
        shape = _error_shape(operation, code)
        if shape is None:
            document: dict[str, Any] = {"__type": f"{SMITHY_NAMESPACE}#{code}", "message": message}
        else:
            status = shape.metadata.get("error", {}).get("httpStatusCode", status)
            document = {"__type": f"{SMITHY_NAMESPACE}#{shape.name}"}
            # The query <Error> element is flat: modelled string members appear next to Code.
            for name, member in shape.members.items():
                if member.type_name == "string" and isinstance(error.get(name), str):
                    document[name] = error[name]
            message_member = next(
                (name for name in shape.members if name.lower() == "message"), "message"
            )
            document.setdefault(message_member, message)
        headers = [
            ("smithy-protocol", PROTOCOL_HEADER_VALUE),
            ("Content-Type", CBOR_CONTENT_TYPE),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-query-error", f"{code};{error_type}"),
        ]
        return status, headers, cbor2.dumps(document)


def _error_shape(operation: OperationModel, code: str) -> Shape | None:
    for shape in operation.error_shapes:
        if shape.error_code == code:
            return shape
    return operation.service_model.shape_for_error_code(code)


def _protocol_error(status: int, type_id: str, message: str) -> tuple[int, list, bytes]:
    """An error raised by this layer itself, before any operation ran."""
    headers = [
        ("smithy-protocol", PROTOCOL_HEADER_VALUE),
        ("Content-Type", CBOR_CONTENT_TYPE),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    return status, headers, cbor2.dumps({"__type": type_id, "message": message})


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _decode_content_encoding(raw: bytes, content_encoding: str) -> bytes:
    """Undoes ``Content-Encoding`` (codings are listed in the order they were applied)."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding != "gzip":
            raise MalformedRequest(f"Unsupported Content-Encoding: {coding}")
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise MalformedRequest(f"Request body is not valid gzip: {error}") from error
    return raw


def _query_environ(environ: dict[str, Any], form_body: bytes) -> dict[str, Any]:
    """The WSGI environ of the equivalent query-protocol request.

    Only the request line, body and CBOR-specific headers change; ``Authorization``, ``Host``,
    ``X-Amz-Date``, ``X-Amz-Security-Token`` and the rest are kept, so moto resolves the same
    account and region (it reads them from the SigV4 credential scope and does not verify the
    signature, which no longer matches the rewritten request).
    """
    translated = {key: value for key, value in environ.items() if key not in _CBOR_ONLY_HEADERS}
    translated.pop("wsgi.input_terminated", None)
    translated.update(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "RAW_URI": "/",
            "REQUEST_URI": "/",
            "CONTENT_TYPE": FORM_CONTENT_TYPE,
            "CONTENT_LENGTH": str(len(form_body)),
            "wsgi.input": io.BytesIO(form_body),
        }
    )
    return translated


# --- value conversion, driven by the botocore shape --------------------------------------------

_INTEGER_TYPES = {"integer", "long", "short", "byte"}
_FLOAT_TYPES = {"double", "float"}


def _from_cbor(shape: Shape, value: Any, path: str) -> Any:
    """A decoded CBOR value as the Python value botocore's serializers expect for ``shape``.

    Unknown structure members and nulls are dropped (Smithy servers ignore members they do not
    know and treat null as absent); a value of the wrong CBOR type is a malformed request.
    """
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise MalformedRequest(f"{path}: expected a map")
        converted = {}
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None or _is_null(member_value):
                continue
            converted[name] = _from_cbor(member, member_value, f"{path}.{name}")
        return converted
    if kind == "list":
        if not isinstance(value, list):
            raise MalformedRequest(f"{path}: expected an array")
        return [
            _from_cbor(shape.member, item, f"{path}[{index}]")
            for index, item in enumerate(value)
            if not _is_null(item)
        ]
    if kind == "map":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise MalformedRequest(f"{path}: expected a map with string keys")
        return {
            key: _from_cbor(shape.value, item, f"{path}.{key}")
            for key, item in value.items()
            if not _is_null(item)
        }
    if kind == "timestamp":
        # cbor2 turns tag 1 into an aware datetime; a bare number is accepted as epoch seconds.
        if isinstance(value, datetime.datetime):
            return value.astimezone(datetime.timezone.utc)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        raise MalformedRequest(f"{path}: expected a timestamp (tag 1)")
    if kind in _INTEGER_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise MalformedRequest(f"{path}: expected an integer")
    if kind in _FLOAT_TYPES:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise MalformedRequest(f"{path}: expected a number")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise MalformedRequest(f"{path}: expected a boolean")
    if kind == "blob":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        raise MalformedRequest(f"{path}: expected a byte string")
    if kind == "string":
        if isinstance(value, str):
            return value
        raise MalformedRequest(f"{path}: expected a text string")
    raise MalformedRequest(f"{path}: shape type {kind} is not supported by this protocol")


def _is_null(value: Any) -> bool:
    return value is None or value is cbor2.undefined


def _to_cbor(shape: Shape, value: Any) -> Any:
    """A value parsed by botocore as the CBOR data item RPC v2 CBOR uses for ``shape``.

    Only modelled members are emitted, so botocore's ``ResponseMetadata`` never reaches the wire.
    """
    kind = shape.type_name
    if kind == "structure":
        return {
            name: _to_cbor(member, value[name])
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [_to_cbor(shape.member, item) for item in value]
    if kind == "map":
        return {key: _to_cbor(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return cbor2.CBORTag(1, _epoch_seconds(value))
    if kind in _FLOAT_TYPES:
        return float(value)
    if kind in _INTEGER_TYPES:
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind == "blob":
        return bytes(value)  # botocore's parser has already base64-decoded the XML text
    return value


def _epoch_seconds(value: Any) -> float:
    """Epoch seconds as a float with millisecond resolution (the protocol's timestamp precision).

    Always a float: tag 1 may carry an integer, but a float is what every SDK decoder accepts.
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        seconds = value.timestamp()
    else:
        seconds = float(value)
    return float(round(seconds, 3))
