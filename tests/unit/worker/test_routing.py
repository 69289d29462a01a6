"""Each task reaches its own queue only, so train and evaluate workers can be run apart
(checked on the real Redis broker: its direct exchanges deliver to every matching binding)."""

from __future__ import annotations

from tass.core.queue import EVALUATE_TASK, TRAIN_TASK, make_producer
from tass.core.settings import Settings, get_settings


def test_train_and_evaluate_messages_land_only_in_their_own_queue(monkeypatch, redis_server):
    broker = redis_server.url(2)  # a db of this test's own on the run's Redis: empty queues
    monkeypatch.setenv("TASS_BROKER_URL", broker)
    get_settings.cache_clear()
    try:
        from tass.worker.app import create_celery

        worker = create_celery()
        producer = make_producer(Settings(broker_url=broker))
        with worker.connection_for_read() as conn:
            for queue in worker.amqp.queues.values():  # declared as a starting worker does
                queue(conn.default_channel).declare()
            producer.send_task(TRAIN_TASK, args=["t1"], queue="train")
            producer.send_task(EVALUATE_TASK, args=["e1"], queue="evaluate")

            channel = conn.default_channel
            received = {}
            for name in ("train", "evaluate"):
                received[name] = []
                while (message := channel.basic_get(name, no_ack=True)) is not None:
                    received[name].append(message.headers["task"])
    finally:
        get_settings.cache_clear()
    assert received == {"train": [TRAIN_TASK], "evaluate": [EVALUATE_TASK]}
