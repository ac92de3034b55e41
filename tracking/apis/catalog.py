"""`/api/v1/campaigns/` and `/api/v1/creatives/`: create, list, read, change (PATCH)."""

from typing import Any

from rest_framework import generics
from rest_framework.serializers import BaseSerializer

from tracking.apis.errors import service_errors_as_400
from tracking.models import Campaign, Creative
from tracking.serializers import CampaignSerializer, CreativeSerializer
from tracking.services.campaigns import (
    campaign_create,
    campaign_update,
    creative_create,
    creative_update,
)


class CampaignListCreateApi(generics.ListCreateAPIView[Campaign]):
    queryset = Campaign.objects.order_by("-id")
    serializer_class = CampaignSerializer

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        with service_errors_as_400():
            serializer.instance = campaign_create(**serializer.validated_data)


class CampaignDetailApi(generics.RetrieveUpdateAPIView[Campaign]):
    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        with service_errors_as_400():
            serializer.instance = campaign_update(
                campaign=self.get_object(), **serializer.validated_data
            )


class CreativeListCreateApi(generics.ListCreateAPIView[Creative]):
    queryset = Creative.objects.order_by("-id")
    serializer_class = CreativeSerializer

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        with service_errors_as_400():
            serializer.instance = creative_create(**serializer.validated_data)


class CreativeDetailApi(generics.RetrieveUpdateAPIView[Creative]):
    queryset = Creative.objects.all()
    serializer_class = CreativeSerializer

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        with service_errors_as_400():
            serializer.instance = creative_update(
                creative=self.get_object(), **serializer.validated_data
            )
