"""The staff roles cover every creditflow app, found without a list to keep up to date."""

from config.roles import project_app_labels


def test_every_app_of_this_repository_and_no_library_is_under_the_roles():
    # when
    labels = project_app_labels()

    # then
    assert {"tracking", "attribution", "reports"} <= set(labels)
    assert not {"config", "auth", "admin", "django_celery_beat", "axes"} & set(labels)
