from django.urls import URLPattern, URLResolver, path

from attribution import apis, import_apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("networks/", apis.NetworkListCreateApi.as_view(), name="network-list"),
    path("networks/<int:pk>/", apis.NetworkDetailApi.as_view(), name="network-detail"),
    path("offers/", apis.OfferListCreateApi.as_view(), name="offer-list"),
    path("offers/<int:pk>/", apis.OfferDetailApi.as_view(), name="offer-detail"),
    path("conversions/", apis.ConversionListApi.as_view(), name="conversion-list"),
    path("conversions/<int:pk>/", apis.ConversionDetailApi.as_view(), name="conversion-detail"),
    path(
        "conversions/import/",
        import_apis.ConversionImportApi.as_view(),
        name="conversion-import",
    ),
    path(
        "conversions/imports/<int:pk>/",
        import_apis.ConversionImportDetailApi.as_view(),
        name="conversion-import-detail",
    ),
]
