"""Who may see and change what. One place, used by querysets, services and the API."""

from __future__ import annotations

from plots.models.people import UserProfile

Role = UserProfile.Role

# Roles that read and write everything.
STAFF_ROLES = frozenset({Role.ADMIN, Role.TECHNICIAN})
# Roles that see personal data (national id, phone) — the cooperative only for its own members.
PERSONAL_DATA_ROLES = frozenset({Role.ADMIN, Role.TECHNICIAN, Role.COOPERATIVE})


def role_of(user) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    profile = getattr(user, "chacra_profile", None)
    try:
        return profile.role if profile is not None else None
    except UserProfile.DoesNotExist:  # pragma: no cover - reverse one-to-one miss
        return None


def organization_of(user):
    try:
        return user.chacra_profile.organization
    except (AttributeError, UserProfile.DoesNotExist):
        return None


def is_staff_role(user) -> bool:
    return role_of(user) in STAFF_ROLES


def can_write_at_all(user) -> bool:
    """Whether the role writes anything (checked before any lookup, so that a role
    without write access learns nothing about which codes exist)."""
    return role_of(user) in STAFF_ROLES | {Role.COOPERATIVE}


def can_write_organization(user, organization_id: int | None) -> bool:
    role = role_of(user)
    if role in STAFF_ROLES:
        return True
    if role == Role.COOPERATIVE:
        org = organization_of(user)
        return org is not None and org.id == organization_id
    return False


def sees_personal_data_of(user, producer) -> bool:
    role = role_of(user)
    if role in STAFF_ROLES:
        return True
    if role == Role.COOPERATIVE:
        org = organization_of(user)
        return org is not None and org.id == producer.organization_id
    return False
