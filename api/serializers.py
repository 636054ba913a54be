"""Input validation and JSON output for the non-GeoJSON resources.

Fields are declared explicitly; nothing is "__all__". Plot lists do not use a
serializer at all (see api/geojson.py).
"""

from __future__ import annotations

from rest_framework import serializers

from plots import geometry, roles
from plots.models import AreaUnit, Plot, Producer
from plots.models.plots import SurveyMethod


class OrganizationSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    producers = serializers.IntegerField(source="producer_count", read_only=True)
    plots = serializers.IntegerField(source="plot_count", read_only=True)


class ProducerSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=40)
    name = serializers.CharField(max_length=200)
    gender = serializers.ChoiceField(choices=Producer.Gender.choices, default=Producer.Gender.UNKNOWN)
    organization = serializers.SlugField(source="organization.code", max_length=40)
    national_id = serializers.CharField(max_length=20, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=30, required=False, allow_blank=True)
    plots = serializers.IntegerField(source="plot_count", read_only=True, required=False)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        user = self.context["request"].user
        if not roles.sees_personal_data_of(user, instance):
            data.pop("national_id", None)
            data.pop("phone", None)
        return data


class PlotPropertiesSerializer(serializers.Serializer):
    """The ``properties`` of a plot Feature sent to POST/PATCH /plots."""

    code = serializers.SlugField(max_length=60, required=False)
    producer = serializers.SlugField(max_length=40, required=False)
    declared_area = serializers.FloatField(min_value=0, required=False, allow_null=True)
    declared_area_unit = serializers.ChoiceField(choices=AreaUnit.choices, required=False)
    tenure = serializers.ChoiceField(choices=Plot.Tenure.choices, required=False)
    planting_year = serializers.IntegerField(min_value=1900, max_value=2100, required=False, allow_null=True)
    agroforestry_system = serializers.ChoiceField(choices=Plot.Agroforestry.choices, required=False)
    shade_species = serializers.ListField(child=serializers.CharField(max_length=60), required=False, max_length=30)
    survey_method = serializers.ChoiceField(choices=SurveyMethod.choices, required=False)
    survey_date = serializers.DateField(required=False, allow_null=True)
    gps_accuracy_m = serializers.FloatField(min_value=0, required=False, allow_null=True)
    valid_from = serializers.DateField(required=False, help_text="First day the new boundary is in force.")
    repair = serializers.ListField(
        child=serializers.ChoiceField(choices=list(geometry.REPAIR_RULES)), required=False,
        help_text="Named repair rules to apply to an invalid polygon instead of refusing it.")

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"properties": "must be a JSON object"})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: "unknown property" for name in unknown})
        return super().to_internal_value(data)


class BoundaryVersionSerializer(serializers.Serializer):
    valid_from = serializers.DateField()
    valid_to = serializers.DateField(allow_null=True)
    area_ha = serializers.FloatField(allow_null=True)
    source = serializers.CharField()
    survey_method = serializers.CharField()
    repairs = serializers.JSONField()
