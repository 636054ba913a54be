from django.conf import settings
from django.db import models

from core import policy


class Organization(models.Model):
    class Kind(models.TextChoices):
        COOPERATIVE = "cooperative", "Cooperative"
        ASSOCIATION = "association", "Producer association"
        EXPORTER = "exporter", "Exporter / buyer"
        NURSERY_OPERATOR = "nursery_operator", "Nursery operator"
        MUNICIPALITY = "municipality", "Municipality"
        FINANCIER = "financier", "Financier"
        PROGRAMME = "programme", "Programme"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    ruc = models.CharField("RUC (tax id)", max_length=11, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Producer(models.Model):
    """A farming household. National id and phone are personal data."""

    class Gender(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Not recorded"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    gender = models.CharField(max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    national_id = models.CharField("DNI", max_length=20, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="producers",
                                     help_text="The cooperative or association the household belongs to.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["organization", "code"])]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class UserProfile(models.Model):
    """The role a user acts in, and for a cooperative user, which organization."""

    class Role(models.TextChoices):
        # The names are the access policy's (core.policy), which says what each may do.
        ADMIN = policy.ADMIN, "Administrator"
        TECHNICIAN = policy.TECHNICIAN, "Field technician"
        COOPERATIVE = policy.COOPERATIVE, "Cooperative"
        BUYER = policy.BUYER, "Buyer / exporter"
        INVESTOR = policy.INVESTOR, "Investor"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chacra_profile")
    role = models.CharField(max_length=12, choices=Role.choices)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="members")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role=policy.COOPERATIVE) | models.Q(organization__isnull=False),
                name="cooperative_user_has_organization",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"
