"""``_StackResource``: the lifecycle every resource type of this package shares.

A resource type declares what differs (its type name, name property, required properties, what
forces a replacement, its Fn::GetAtt attributes) and how to create, update and delete it through
moto's backends; the rules CloudFormation applies to all of them live here once: validation
worded like CloudFormation's, generated names kept across updates, replacement when a
replace-only property changes, and "already gone" counting as deleted.
"""

from __future__ import annotations

from typing import Any, ClassVar

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

from .errors import PropertiesValidationError, _is_not_found
from .properties import _missing_keys


class _StackResource:
    """Lifecycle shared by every resource type in this package.

    Subclasses declare their CloudFormation type, name property, required properties, the
    properties whose change needs a replacement and their Fn::GetAtt attributes, and implement
    ``_create``, ``_update`` and ``_delete`` against moto's backends. This class turns that into
    the interface moto's stack engine calls (create/update_from_cloudformation_json, delete,
    physical_resource_id, has_cfn_attr/get_cfn_attribute).

    Not a CloudFormationModel on purpose: moto registers only *direct* subclasses.
    """

    TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    REPLACED_WHEN_CHANGED: ClassVar[tuple[str, ...]] = ()
    # Fn::GetAtt attribute -> instance attribute holding its value
    ATTRIBUTES: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        name: str,
        properties: dict[str, Any],
        account_id: str,
        region_name: str,
        logical_id: str,
        explicit_name: bool,
    ):
        self.name = name
        self.properties = properties
        self.account_id = account_id
        self.region_name = region_name
        self.logical_id = logical_id
        # CloudFormation generates a name when the template gives none, and keeps it across
        # in-place updates; only a name written in the template can change it.
        self.explicit_name = explicit_name

    # -- moto's registry interface -------------------------------------------------------------

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        return getattr(self, self.ATTRIBUTES[attribute_name])

    @property
    def physical_resource_id(self) -> str:
        return self.name

    def is_created(self) -> bool:
        return True

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def _validate(cls, logical_id: str, properties: dict[str, Any]) -> None:
        problems = _missing_keys(properties, cls.REQUIRED, "#")
        if problems:
            raise PropertiesValidationError(logical_id, problems)

    @classmethod
    def _is_named_in(cls, properties: dict[str, Any]) -> bool:
        return bool(cls.NAME_PROPERTY) and properties.get(cls.NAME_PROPERTY) is not None

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        logical_id = kwargs.get("LogicalId", resource_name)
        cls._validate(logical_id, properties)
        resource = cls(
            resource_name,
            properties,
            account_id,
            region_name,
            logical_id,
            explicit_name=cls._is_named_in(properties),
        )
        resource._create()
        return resource

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        """Update in place when AWS can, otherwise replace (create the new one, delete the old).

        moto hands every update a *freshly generated* name when the template names nothing; using
        it would rename (replace) the resource on every update. CloudFormation keeps the physical
        name, so it is only taken when the template drops a name it used to give.
        """
        properties = cloudformation_json.get("Properties") or {}
        cls._validate(original_resource.logical_id, properties)
        explicit_name = cls._is_named_in(properties)
        if explicit_name:
            name = properties[cls.NAME_PROPERTY]
        elif original_resource.explicit_name:
            name = new_resource_name
        else:
            name = original_resource.name

        needs_replacement = name != original_resource.name or any(
            properties.get(key) != original_resource.properties.get(key)
            for key in cls.REPLACED_WHEN_CHANGED
        )
        if needs_replacement:
            replacement = cls(
                name,
                properties,
                account_id,
                region_name,
                original_resource.logical_id,
                explicit_name,
            )
            replacement._create()
            original_resource.delete(account_id, region_name)
            return replacement

        original_resource._update(properties)
        original_resource.properties = properties
        original_resource.explicit_name = explicit_name
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        """Called by moto on stack deletion, resource removal and rollback.

        A resource that is already gone counts as deleted, as in CloudFormation (e.g. a metric
        filter whose log group was deleted first).
        """
        try:
            self._delete()
        except Exception as exc:
            if not _is_not_found(exc):
                raise

    def _create(self) -> None:
        raise NotImplementedError

    def _update(self, properties: dict[str, Any]) -> None:
        raise NotImplementedError

    def _delete(self) -> None:
        raise NotImplementedError
