"""Fixes to moto's stack operations (``moto.cloudformation.models``): a resource that fails
fails the stack, not the API call.

CloudFormation answers CreateStack/UpdateStack/ExecuteChangeSet at once and then reports a failed
resource in the stack's events (CREATE_FAILED / UPDATE_FAILED with a ResourceStatusReason) and
rolls back: ROLLBACK_COMPLETE after a failed creation, UPDATE_ROLLBACK_COMPLETE after a failed
update. moto lets the service error escape from the call instead and leaves the stack half made.
An executed change set also gets the Outputs and Exports of its template, which moto never
builds for it, and the stack's resource listings show only the resources the stack has.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import CloudFormationBackend, Event, Stack

from .errors import _failed_resource, _FailedResource, _failure_reason


def _record_event(
    stack: Stack,
    logical_id: str,
    physical_id: str,
    resource_type: str,
    status: str,
    reason: str | None = None,
) -> None:
    """Append a stack event the way moto's Stack._add_stack_event does, for any resource."""
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id,
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    event.sendToSns(stack.account_id, stack.region_name, stack.notification_arns)
    stack.events.append(event)


def _record_stack_event(stack: Stack, status: str, reason: str | None = None) -> None:
    _record_event(stack, stack.name, stack.stack_id, "AWS::CloudFormation::Stack", status, reason)


def _record_failure(stack: Stack, failed: _FailedResource, error: BaseException) -> None:
    _record_event(
        stack,
        failed.logical_id,
        "",
        failed.resource_type,
        f"{failed.operation}_FAILED",
        _failure_reason(failed.resource_type, error),
    )


def _put_template(stack: Stack, text: Any, template: dict[str, Any]) -> None:
    """Make ``template`` the stack's template (GetTemplate, Description)."""
    stack.template = text
    stack.template_dict = template
    stack.description = template.get("Description")


def _refresh_outputs(
    backend: CloudFormationBackend, stack: Stack, template: dict[str, Any]
) -> None:
    """Give a stack the Outputs and Exports declared in ``template``.

    moto builds a stack's Outputs once, from the template it was created with: a stack created
    by a change set starts with an empty template and never had Outputs, and a change-set
    update kept the old ones.
    """
    stack.output_map = parsing.OutputMap(stack.resource_map, template, stack.stack_id)
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        del backend.exports[name]
    for export in stack.exports:
        backend.exports[export.name] = export


def _roll_back_creation(
    backend: CloudFormationBackend, stack: Stack, failed: _FailedResource, error: BaseException
) -> None:
    """What CloudFormation does when a resource fails to create (rollback enabled, the default):
    CREATE_FAILED for the resource, ROLLBACK_IN_PROGRESS, delete what was created,
    ROLLBACK_COMPLETE (or ROLLBACK_FAILED if a deletion fails)."""
    if not stack.events:  # failed while moto evaluated Outputs, before its first event
        _record_stack_event(stack, "CREATE_IN_PROGRESS", "User Initiated")
    _record_failure(stack, failed, error)
    stack.status = "ROLLBACK_IN_PROGRESS"
    _record_stack_event(
        stack,
        "ROLLBACK_IN_PROGRESS",
        f"The following resource(s) failed to create: [{failed.logical_id}]. "
        "Rollback requested by user.",
    )
    resource_map = stack.resource_map
    created = [
        resource
        for resource in resource_map._parsed_resources.values()
        if getattr(resource, "logical_resource_id", None)
    ]
    try:
        resource_map.delete()
    except Exception as exc:
        stack.status = "ROLLBACK_FAILED"
        _record_stack_event(stack, "ROLLBACK_FAILED", f"Rollback failed: {exc}")
        return
    for resource in created:
        _record_event(
            stack,
            resource.logical_resource_id,
            str(getattr(resource, "physical_resource_id", "") or ""),
            getattr(resource, "cf_resource_type", ""),
            "DELETE_COMPLETE",
        )
    # Nothing of the template exists any more. moto creates resources lazily on first access,
    # and DescribeStacks (Outputs) / DescribeStackResources access them all: without this the
    # rolled-back resources would be created again by the next describe call.
    resource_map._resource_json_map = {}
    _refresh_outputs(backend, stack, {})  # a rolled-back stack has no Outputs
    stack.status = "ROLLBACK_COMPLETE"
    _record_stack_event(stack, "ROLLBACK_COMPLETE")


@dataclass(frozen=True)
class _StackSnapshot:
    """What a failed update rolls back to: the template and parameters in force before it."""

    template: Any
    template_dict: dict[str, Any]
    parameters: dict[str, Any]

    @classmethod
    def of(cls, stack: Stack) -> _StackSnapshot:
        return cls(
            stack.template,
            copy.deepcopy(stack.template_dict),
            dict(stack.resource_map.input_parameters),
        )

    def parameters_replacing(self, current: dict[str, Any]) -> dict[str, Any]:
        """The previous parameters, plus the previous default of every parameter the failed
        update set: moto's update only revisits resources whose parameters it sees change."""
        restored = dict(self.parameters)
        declared = self.template_dict.get("Parameters") or {}
        for key in current:
            if key not in restored and "Default" in declared.get(key, {}):
                default = declared[key]["Default"]
                restored[key] = (
                    ",".join(map(str, default)) if isinstance(default, list) else str(default)
                )
        return restored


def _roll_back_update(
    backend: CloudFormationBackend,
    stack: Stack,
    failed: _FailedResource,
    error: BaseException,
    previous: _StackSnapshot,
) -> None:
    """What CloudFormation does when an update fails: roll the stack back to the previous
    template (itself an update), UPDATE_ROLLBACK_COMPLETE or UPDATE_ROLLBACK_FAILED."""
    _record_failure(stack, failed, error)
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    verb = "create" if failed.operation == "CREATE" else "update"
    _record_stack_event(
        stack,
        "UPDATE_ROLLBACK_IN_PROGRESS",
        f"The following resource(s) failed to {verb}: [{failed.logical_id}].",
    )
    resource_map = stack.resource_map
    if failed.logical_id not in resource_map._parsed_resources:
        # A resource that failed to create has nothing to roll back (moto would warn that it
        # cannot delete it).
        resource_map._resource_json_map = {
            logical_id: resource
            for logical_id, resource in resource_map._resource_json_map.items()
            if logical_id != failed.logical_id
        }
    try:
        resource_map.update(
            previous.template_dict, previous.parameters_replacing(resource_map.input_parameters)
        )
    except Exception as exc:
        stack.status = "UPDATE_ROLLBACK_FAILED"
        _record_stack_event(stack, "UPDATE_ROLLBACK_FAILED", f"Rollback failed: {exc}")
        return
    _put_template(stack, previous.template, previous.template_dict)
    _refresh_outputs(backend, stack, previous.template_dict)
    _record_stack_event(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    _record_stack_event(stack, "UPDATE_ROLLBACK_COMPLETE")


def _rolling_back_failed_creation(create_stack: Callable[..., Stack]) -> Callable[..., Stack]:
    """CreateStack returns the stack id and the stack fails on its own, as in AWS.

    moto lets the service error escape from CreateStack instead (in the wrong protocol for a
    JSON service, so clients cannot even parse it) and leaves the stack CREATE_IN_PROGRESS.
    """

    @functools.wraps(create_stack)
    def wrapper(self: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Stack:
        try:
            return create_stack(self, name, *args, **kwargs)
        except Exception as exc:
            failed = _failed_resource(exc)
            stack = next((s for s in self.stacks.values() if s.name == name), None)
            if failed is None or stack is None:
                raise
            _roll_back_creation(self, stack, failed, exc)
            return stack

    return wrapper


def _rolling_back_failed_update(update_stack: Callable[..., Stack]) -> Callable[..., Stack]:
    """UpdateStack: a resource that fails to update rolls the stack back, as in AWS."""

    @functools.wraps(update_stack)
    def wrapper(self: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Stack:
        stack = self.get_stack(name)
        previous = _StackSnapshot.of(stack)
        try:
            return update_stack(self, name, *args, **kwargs)
        except Exception as exc:
            failed = _failed_resource(exc)
            if failed is None:
                raise
            _roll_back_update(self, stack, failed, exc, previous)
            return stack

    return wrapper


def _executing_change_sets_fully(execute_change_set: Callable[..., None]) -> Callable[..., None]:
    """ExecuteChangeSet with Outputs refreshed and failures rolled back like the stack calls."""

    @functools.wraps(execute_change_set)
    def wrapper(
        self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
    ) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = change_set.stack
        previous = _StackSnapshot.of(stack)
        try:
            execute_change_set(self, change_set_name, stack_name)
        except Exception as exc:
            failed = _failed_resource(exc)
            if failed is None:
                raise
            change_set.execution_status = "EXECUTE_FAILED"
            if change_set.change_set_type == "CREATE":
                _put_template(stack, change_set.template, change_set.template_dict)
                _roll_back_creation(self, stack, failed, exc)
            else:
                _roll_back_update(self, stack, failed, exc, previous)
            return
        _put_template(stack, change_set.template, change_set.template_dict)
        _refresh_outputs(self, stack, change_set.template_dict)

    return wrapper


def _listing_only_existing_resources(
    stack_resources: Callable[[Stack], Iterable[Any]],
) -> Callable[[Stack], list[Any]]:
    """Stack.stack_resources (DescribeStackResources, DescribeStackResource, ListStackResources)
    without the template's resources that the stack does not have.

    moto lists a stack's resources through its lazy ResourceMap, which has None for a resource
    whose Condition is false (never created, or deleted by an update that made it false) and for
    one of a type moto does not model. The responses showed each None as a resource without
    LogicalResourceId, ResourceType and PhysicalResourceId (ListStackResources: empty strings),
    and DescribeStackResources naming one was an internal error. CloudFormation lists only the
    resources the stack has, each with all three.
    """

    @functools.wraps(stack_resources)
    def wrapper(self: Stack) -> list[Any]:
        return [resource for resource in stack_resources(self) if resource is not None]

    return wrapper
