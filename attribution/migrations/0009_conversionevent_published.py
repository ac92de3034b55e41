from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0008_conversion_import"),
    ]

    operations = [
        # Events from before the outbox existed count as published (nobody subscribed then);
        # only then does the default for new events become "not yet published".
        migrations.AddField(
            model_name="conversionevent",
            name="published",
            field=models.BooleanField(db_default=True),
        ),
        migrations.AlterField(
            model_name="conversionevent",
            name="published",
            field=models.BooleanField(db_default=False),
        ),
        migrations.AddIndex(
            model_name="conversionevent",
            index=models.Index(
                condition=models.Q(("published", False)),
                fields=["id"],
                name="conversion_event_unpublished",
            ),
        ),
    ]
