"""What accord advertises over SCIM, and how SCIM Users and Groups map onto accord's.

accord advertises the RFC 7643 core Group schema (``displayName``, ``members`` with ``value``
and ``$ref``, ``externalId``) and the core User schema restricted to what it
stores: ``userName``, ``name`` (``formatted``, ``familyName``, ``givenName``),
``displayName``, ``emails`` (``value``, ``type``, ``primary``; required: the primary one is
the account's e-mail address), ``active`` and the common ``externalId``. Anything else a
client sends (a title, phone numbers, the enterprise extension) is accepted and dropped, since
nothing would keep it. No Bulk, sort, ETags or password changes: the ServiceProviderConfig
says so.

The models, the PATCH machinery and the filter language are scim2-models'; ``POLICY`` is its
tolerant reading of what Microsoft Entra ID sends (a ``remove`` carrying a value, a path filter
that matches no entry yet, attributes accord does not store).
"""

from __future__ import annotations

from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Email,
    ETag,
    Filter,
    Group,
    Meta,
    Patch,
    ResourceType,
    Schema,
    ScimPolicy,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
    User,
)
from scim2_models.resources.service_provider_config import Pagination

from accord.domain.errors import InvalidInput
from accord.services.scim import ScimUser, ScimUserState
from accord.services.scim_groups import ScimGroup, ScimGroupState

MAX_RESULTS = 200
NAME_PARTS = ("formatted", "familyName", "givenName")
EMAIL_PARTS = ("value", "type", "primary")
STORED = ("name", "displayName", "emails")  # kept in scim_users.attributes
MEMBER_PARTS = ("value", "$ref")  # no display: the member's own resource has its names

POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def user_schema() -> Schema:
    """The core User schema, with only the attributes accord stores."""
    schema = User.to_schema()
    kept = []
    for attribute in schema.attributes or []:
        if attribute.name == "name":
            subs = attribute.sub_attributes or []
            attribute.sub_attributes = [a for a in subs if a.name in NAME_PARTS]
        elif attribute.name == "emails":
            subs = attribute.sub_attributes or []
            attribute.sub_attributes = [a for a in subs if a.name in EMAIL_PARTS]
            for sub in attribute.sub_attributes:
                sub.required = sub.name == "value"
            attribute.required = True  # the primary address is the account's e-mail
        elif attribute.name == "active":
            attribute.required = True  # always answered: a suspended user is active: false
        elif attribute.name not in ("userName", "displayName"):
            continue
        kept.append(attribute)
    schema.attributes = kept
    schema.description = "A user of this organization in accord"
    return schema


def service_provider_config(base_url: str) -> ServiceProviderConfig:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        pagination=Pagination(cursor=False, index=True, max_page_size=MAX_RESULTS),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="SCIM token",
                description="The organization's token from `accord scim-token create`, "
                "sent as `Authorization: Bearer scim_…`.",
                primary=True,
            )
        ],
    )
    config.meta = Meta(
        resource_type="ServiceProviderConfig", location=f"{base_url}/ServiceProviderConfig"
    )
    return config


def group_schema() -> Schema:
    """The core Group schema: ``displayName`` and ``members`` (users of this organization)."""
    schema = Group.to_schema()
    for attribute in schema.attributes or []:
        if attribute.name == "displayName":
            attribute.required = True
            attribute.uniqueness = Uniqueness.server  # within the organization
        elif attribute.name == "members":
            subs = attribute.sub_attributes or []
            attribute.sub_attributes = [a for a in subs if a.name in MEMBER_PARTS]
            for sub in attribute.sub_attributes:
                sub.required = sub.name == "value"
                if sub.name == "$ref":
                    sub.reference_types = ["User"]
    schema.description = "A group of this organization's users; it may grant a role in accord"
    return schema


def resource_types(base_url: str) -> list[ResourceType]:
    user = ResourceType.from_resource(User)
    user.description = "A user of this organization"
    user.meta = Meta(resource_type="ResourceType", location=f"{base_url}/ResourceTypes/User")
    group = ResourceType.from_resource(Group)
    group.description = "A group of this organization's users"
    group.meta = Meta(resource_type="ResourceType", location=f"{base_url}/ResourceTypes/Group")
    return [user, group]


def schemas(base_url: str) -> list[Schema]:
    found = [user_schema(), group_schema()]
    for schema in found:
        schema.meta = Meta(resource_type="Schema", location=f"{base_url}/Schemas/{schema.id}")
    return found


# -- accord ↔ SCIM -------------------------------------------------------------------------------


def _primary_email(emails: list[Email]) -> str | None:
    for chosen in (
        [e for e in emails if e.primary],
        [e for e in emails if str(e.type or "") == "work"],
        emails,
    ):
        for email in chosen:
            if email.value:
                return str(email.value)
    return None


def _full_name(resource: User) -> str:
    name = resource.name
    if resource.display_name and resource.display_name.strip():
        return resource.display_name
    if name is not None and name.formatted and name.formatted.strip():
        return name.formatted
    parts = [name.given_name, name.family_name] if name is not None else []
    joined = " ".join(p for p in parts if p and p.strip())
    return joined or str(resource.user_name)


def stored_attributes(resource: User) -> dict[str, Any]:
    """The SCIM-only attributes of a resource that accord keeps."""
    dumped = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    kept: dict[str, Any] = {}
    if isinstance(dumped.get("name"), dict):
        kept["name"] = {k: v for k, v in dumped["name"].items() if k in NAME_PARTS}
    if dumped.get("displayName"):
        kept["displayName"] = dumped["displayName"]
    if isinstance(dumped.get("emails"), list):
        kept["emails"] = [
            {k: v for k, v in e.items() if k in EMAIL_PARTS} for e in dumped["emails"]
        ]
    return kept


def state_of(resource: User, *, active: bool) -> ScimUserState:
    """What accord is asked for: ``active`` is the resource's, else the given one (a PUT
    without ``active`` leaves it as it is)."""
    email = _primary_email(list(resource.emails or []))
    if email is None:
        raise InvalidInput("The user needs an e-mail address (emails, the primary one is used).")
    return ScimUserState(
        user_name=str(resource.user_name or ""),
        email=email,
        full_name=_full_name(resource),
        active=active if resource.active is None else bool(resource.active),
        external_id=resource.external_id,
        attributes=stored_attributes(resource),
    )


def _emails(stored: list[dict[str, Any]] | None, email: str | None) -> list[dict[str, Any]]:
    """The stored e-mail list, with accord's address as its primary one (a change made through
    accord's own API shows here too)."""
    emails = [dict(e) for e in stored or []]
    if email is None or any(str(e.get("value", "")).lower() == email for e in emails):
        return emails
    for entry in emails:
        if entry.get("primary"):
            entry["value"] = email
            return emails
    return [{"value": email, "type": "work", "primary": True}, *emails]


def resource_of(found: ScimUser, base_url: str) -> User:
    """The SCIM resource of a SCIM client's user."""
    record, user = found.record, found.user
    attributes = record.attributes
    document: dict[str, Any] = {
        "schemas": [str(User.__schema__)],
        "id": str(user.id),
        "userName": record.user_name,
        "active": found.active,
        "emails": _emails(attributes.get("emails"), user.email),
        "meta": {
            "resourceType": "User",
            "created": record.created_at.isoformat(),
            "lastModified": max(record.updated_at, user.updated_at).isoformat(),
            "location": f"{base_url}/Users/{user.id}",
        },
    }
    if record.external_id:
        document["externalId"] = record.external_id
    if attributes.get("name"):
        document["name"] = attributes["name"]
    if attributes.get("displayName"):
        document["displayName"] = attributes["displayName"]
    return User.model_validate(document, scim_policy=POLICY)


def group_state_of(resource: Group) -> ScimGroupState:
    """What accord is asked for: the members by their ``value`` (accord user ids)."""
    values = [str(m.value) for m in resource.members or [] if m.value]
    return ScimGroupState(
        display_name=str(resource.display_name or ""),
        external_id=resource.external_id,
        members=tuple(values),
    )


def group_of(found: ScimGroup, base_url: str) -> Group:
    """The SCIM resource of a SCIM client's group."""
    record = found.record
    document: dict[str, Any] = {
        "schemas": [str(Group.__schema__)],
        "id": str(record.id),
        "displayName": record.display_name,
        "members": [
            {
                "value": str(member.user.id),
                "$ref": f"{base_url}/Users/{member.user.id}",
            }
            for member in found.members
        ],
        "meta": {
            "resourceType": "Group",
            "created": record.created_at.isoformat(),
            "lastModified": record.updated_at.isoformat(),
            "location": f"{base_url}/Groups/{record.id}",
        },
    }
    if record.external_id:
        document["externalId"] = record.external_id
    return Group.model_validate(document, scim_policy=POLICY)
