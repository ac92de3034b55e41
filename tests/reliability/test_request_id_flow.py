import pytest

from attribution.models import Postback
from tests.factories import TEST_POSTBACK_TOKEN, NetworkFactory


@pytest.mark.slow
def test_a_postbacks_worker_logs_under_the_intakes_request_id(worker, client):
    # given
    network = NetworkFactory()

    # when: a network's postback arrives through a proxy that named the request
    response = client.get(
        f"/postback/{network.slug}/",
        {"token": TEST_POSTBACK_TOKEN, "click_id": "no-such-click", "txid": "t-1"},
        HTTP_X_REQUEST_ID="edge-req-42",
    )
    worker.wait_for("succeeded", timeout=30)

    # then: the answer and the worker's lines for that postback share the id
    assert response.status_code == 200
    assert response["X-Request-ID"] == "edge-req-42"
    task_lines = [
        line
        for line in worker.output().splitlines()
        if "attribution.process_postback" in line and "succeeded" in line
    ]
    assert task_lines, worker.output()[-3000:]
    assert all("[edge-req-42]" in line for line in task_lines)
    assert Postback.objects.filter(pk=response.json()["postback_id"]).exists()
