"""The admin app, with creditflow's site (`reports.admin_site`) as `admin.site`.

Listed in INSTALLED_APPS instead of `django.contrib.admin`; every `@admin.register` then
registers on the creditflow site, whose home page is the dashboard.
"""

from django.contrib.admin.apps import AdminConfig


class CreditflowAdminConfig(AdminConfig):
    default_site = "reports.admin_site.CreditflowAdminSite"
