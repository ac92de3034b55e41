from django.urls import URLPattern, URLResolver, path

from tracking.apis.catalog import (
    CampaignDetailApi,
    CampaignListCreateApi,
    CreativeDetailApi,
    CreativeListCreateApi,
)
from tracking.apis.clicks import ClickDetailApi, ClickImportApi, ClickListApi
from tracking.apis.contacts import ContactDetailApi, ContactIdentifyApi, ContactListApi
from tracking.apis.messages import MessageBulkCreateApi, MessageDetailApi, MessageListCreateApi

urlpatterns: list[URLPattern | URLResolver] = [
    path("campaigns/", CampaignListCreateApi.as_view(), name="campaign-list"),
    path("campaigns/<int:pk>/", CampaignDetailApi.as_view(), name="campaign-detail"),
    path("creatives/", CreativeListCreateApi.as_view(), name="creative-list"),
    path("creatives/<int:pk>/", CreativeDetailApi.as_view(), name="creative-detail"),
    path("messages/", MessageListCreateApi.as_view(), name="message-list"),
    path("messages/bulk/", MessageBulkCreateApi.as_view(), name="message-bulk"),
    path("messages/<int:pk>/", MessageDetailApi.as_view(), name="message-detail"),
    path("contacts/", ContactListApi.as_view(), name="contact-list"),
    path("contacts/identify/", ContactIdentifyApi.as_view(), name="contact-identify"),
    path("contacts/<int:pk>/", ContactDetailApi.as_view(), name="contact-detail"),
    path("clicks/", ClickListApi.as_view(), name="click-list"),
    path("clicks/import/", ClickImportApi.as_view(), name="click-import"),
    path("clicks/<str:click_id>/", ClickDetailApi.as_view(), name="click-detail"),
]
