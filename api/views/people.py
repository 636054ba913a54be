"""/api/v1/producers and /api/v1/organizations (plain JSON)."""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api.params import Pagination, parse_choice, reject_unknown
from api.serializers import OrganizationSerializer, ProducerSerializer
from plots import selectors, services
from plots.errors import ValidationFailed
from plots.models import Organization, Producer


class ProducerListView(APIView):
    # Declared for the OpenAPI document: the list answers Pagination's {count, next, previous, results}.
    pagination_class = Pagination

    @extend_schema(summary="Producers (households) you can see",
                   parameters=[OpenApiParameter("organization", str), OpenApiParameter("gender", str)],
                   responses=ProducerSerializer(many=True))
    def get(self, request):
        reject_unknown(request.query_params, {"organization", "gender", "limit", "offset"})
        gender = parse_choice(request.query_params.get("gender"), "gender", Producer.Gender.choices)
        qs = selectors.producer_list(user=request.user, organization=request.query_params.get("organization"),
                                     gender=gender).annotate(plot_count=Count("plots"))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(
            ProducerSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(summary="Register a producer", request=ProducerSerializer, responses={201: ProducerSerializer})
    def post(self, request):
        serializer = ProducerSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        org_code = data.pop("organization")["code"]
        organization = Organization.objects.filter(code=org_code).first()
        if organization is None:
            raise ValidationFailed(f"organization {org_code!r} does not exist", field="organization")
        producer = services.producer_create(organization=organization, actor=request.user, **data)
        producer.plot_count = 0  # a new household has no plot yet; the field is always present
        return Response(ProducerSerializer(producer, context={"request": request}).data, status=201)


class ProducerDetailView(APIView):
    @extend_schema(summary="One producer", responses=ProducerSerializer)
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        producer = selectors.producer_get(user=request.user, code=code)
        producer.plot_count = producer.plots.count()
        return Response(ProducerSerializer(producer, context={"request": request}).data)


class OrganizationListView(APIView):
    pagination_class = Pagination

    @extend_schema(summary="Organizations you can see", responses=OrganizationSerializer(many=True))
    def get(self, request):
        reject_unknown(request.query_params, {"limit", "offset"})
        qs = selectors.organization_list(user=request.user).annotate(
            producer_count=Count("producers", distinct=True), plot_count=Count("plots", distinct=True))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(OrganizationSerializer(page, many=True).data)


class OrganizationDetailView(APIView):
    @extend_schema(summary="One organization", responses=OrganizationSerializer)
    def get(self, request, code: str):
        reject_unknown(request.query_params, set())
        org = selectors.organization_get(user=request.user, code=code)
        org.producer_count = org.producers.count()
        org.plot_count = org.plots.count()
        return Response(OrganizationSerializer(org).data)
