"""The plots app's names for the access-policy questions its callers ask. The rule
itself lives in core.policy (one table of roles × resources); these are thin calls
into it, kept so that services, importers and views keep their vocabulary."""

from __future__ import annotations

from core import policy
from plots.models.people import UserProfile

Role = UserProfile.Role


def role_of(user) -> str | None:
    """The role's name, or None for a caller without one (not signed in, no profile)."""
    return policy.role_of(user) if policy.has_role(user) else None


def organization_of(user):
    """The Organization the user acts for (one query), or None."""
    try:
        return user.chacra_profile.organization
    except (AttributeError, UserProfile.DoesNotExist):
        return None


def is_staff_role(user) -> bool:
    return policy.is_staff(user)


def can_write_at_all(user) -> bool:
    """Whether the role writes anything (checked before any lookup, so that a role
    without write access learns nothing about which codes exist)."""
    return policy.writes_anything(user)


def can_write_organization(user, organization_id: int | None, resource: str = "plot") -> bool:
    """Whether the user may write ``resource`` records of ``organization_id`` (every
    organization-owned resource shares the plot's write rule, core.policy.TABLE)."""
    return policy.may_write(user, resource, organization_id)


def sees_personal_data_of(user, producer) -> bool:
    return policy.covers(user, "producer_personal_data", producer.organization_id)
