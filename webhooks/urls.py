from django.urls import URLPattern, URLResolver, path

from webhooks import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("webhooks/", apis.WebhookListCreateApi.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "webhooks/<int:pk>/rotate-secret/",
        apis.WebhookRotateSecretApi.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<int:pk>/deliveries/",
        apis.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path("webhooks/<int:pk>/resend/", apis.WebhookResendApi.as_view(), name="webhook-resend"),
    path(
        "webhooks/<int:pk>/resends/<int:resend_id>/",
        apis.WebhookResendDetailApi.as_view(),
        name="webhook-resend-detail",
    ),
]
