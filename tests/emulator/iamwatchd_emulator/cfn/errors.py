"""How a failing resource is reported: CloudFormation's own errors, the resource to blame, and
the ResourceStatusReason CloudFormation shows for a service error.

moto lets a service error escape from the API call. CloudFormation instead fails the resource,
shows the error (wrapped, see ``_failure_reason``) in the stack's events and rolls back; to do
that the stack patches need to know *which* resource failed, so the exception carries a
``_FailedResource``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from moto.core.exceptions import ServiceException
from moto.moto_api._internal import mock_random

logger = logging.getLogger(__name__)


class StackResourceError(Exception):
    """A failure that CloudFormation itself reports (not a service's handler error).

    Its text is the ResourceStatusReason verbatim, e.g. the properties validation message.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PropertiesValidationError(StackResourceError):
    """A required property is missing or malformed, worded like CloudFormation's schema check."""

    def __init__(self, logical_id: str, problems: Iterable[str]):
        super().__init__(
            f"Properties validation failed for resource {logical_id} with message: "
            + "\n".join(problems)
        )


class ResourceAlreadyExists(StackResourceError):
    """CloudFormation refuses to adopt an existing resource with the name the template asks for."""

    def __init__(self, resource_type: str, identifier: str):
        super().__init__(
            f"Resource of type '{resource_type}' with identifier '{identifier}' already exists."
        )


def _aws_error(exc: BaseException) -> tuple[str, str, int] | None:
    """(error code, message, HTTP status) of a moto service error; None for anything else.

    moto has two error families: ``ServiceException`` (code is the AWS error code) and the
    older werkzeug-based ``JsonRESTError`` (``error_type`` is the AWS code, ``code`` the status).
    """
    if isinstance(exc, ServiceException):
        status = 500 if "Internal" in exc.code else 400
        return exc.code, exc.message, status
    error_type = getattr(exc, "error_type", None)
    if isinstance(error_type, str):
        status = getattr(exc, "code", 400)
        return error_type, getattr(exc, "message", str(exc)), int(status) if status else 400
    return None


def _is_not_found(exc: BaseException) -> bool:
    error = _aws_error(exc)
    return error is not None and any(
        marker in error[0] for marker in ("NotFound", "NoSuch", "DoesNotExist", "NonExistent")
    )


def _failure_reason(resource_type: str, exc: BaseException) -> str:
    """The ResourceStatusReason CloudFormation shows for a resource that failed to create.

    Registry-based resources report the service error wrapped like this:
    ``Resource handler returned message: "<message> (Service: CloudTrail, Status Code: 400,
    Request ID: ...)" (RequestToken: ..., HandlerErrorCode: NotFound)``.
    """
    if isinstance(exc, StackResourceError):
        return exc.reason
    error = _aws_error(exc)
    if error is None:
        # Not a service error: a bug here or in moto. Keep the stack honest (it failed) and keep
        # the traceback for whoever debugs the emulator.
        logger.error("creating a %s failed unexpectedly", resource_type, exc_info=exc)
        return f"Internal Failure ({type(exc).__name__}: {exc})"
    code, message, status = error
    if _is_not_found(exc):
        handler_code = "NotFound"
    elif status < 500:
        handler_code = "InvalidRequest"
    else:
        handler_code = "ServiceInternalError"
    service = resource_type.split("::")[1]
    return (
        f'Resource handler returned message: "{message} (Service: {service}, '
        f'Status Code: {status}, Request ID: {mock_random.uuid4()})" '
        f"(RequestToken: {mock_random.uuid4()}, HandlerErrorCode: {handler_code})"
    )


# The attribute of an exception that names the resource whose creation or update raised it.
_FAILED_RESOURCE = "_iamwatchd_failed_resource"


@dataclass(frozen=True)
class _FailedResource:
    """The resource a failed stack operation blames, as its events and rollback name it."""

    logical_id: str
    resource_type: str
    operation: str  # CREATE or UPDATE


def _failed_resource(exc: BaseException) -> _FailedResource | None:
    """The resource ``exc`` was raised for, if a resource's creation or update raised it."""
    return getattr(exc, _FAILED_RESOURCE, None)
