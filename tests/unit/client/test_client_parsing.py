"""The pieces the commands rely on: the event-stream parser, error details, --data values."""

from __future__ import annotations

import pytest

from tass.client.errors import UsageError, format_detail
from tass.client.specs import parse_data
from tass.client.sse import ServerSentEvent, iter_sse


def test_event_stream_parsing():
    lines = [
        ": ping - a comment",
        "event: status",
        'data: {"status":',
        'data:  "running"}',
        "id: 7",
        "",
        "",  # an empty dispatch is nothing
        "data: unnamed",
        "",
        "event: metrics",
        "data: last event, no blank line after it",
    ]

    assert list(iter_sse(lines)) == [
        ServerSentEvent("status", '{"status":\n "running"}', "7"),
        ServerSentEvent("message", "unnamed", "7"),
        ServerSentEvent("metrics", "last event, no blank line after it", "7"),
    ]
    assert ServerSentEvent("status", '{"status": "running"}').json() == {"status": "running"}


def test_fastapi_details_become_field_messages():
    detail = [
        {"loc": ["body", "train", "dataset", "path"], "msg": "Field required", "type": "missing"},
        {"loc": ["query", "limit"], "msg": "Input should be greater than 0", "type": "x"},
        {"loc": ["body", "model_id"], "msg": "model_id: no model 'x'", "type": "value_error"},
        {"loc": [], "msg": "whole body", "type": "x"},
    ]

    assert format_detail(detail) == [
        "dataset.path: Field required",
        "query.limit: Input should be greater than 0",
        "model_id: no model 'x'",  # not "model_id: model_id: ..."
        "whole body",
    ]
    assert format_detail("plain message") == ["plain message"]


@pytest.mark.parametrize(
    ("value", "dataset"),
    [
        ("synthetic", {"source": "synthetic"}),
        ("synthetic:64", {"source": "synthetic", "num_examples": 64}),
        ("cifar10", {"source": "cifar10"}),
        ("image-folder:/data/a:b", {"source": "image-folder", "path": "/data/a:b"}),
    ],
)
def test_data_values(value, dataset):
    assert parse_data(value) == dataset


@pytest.mark.parametrize("value", ["", ":x", "synthetic:ten", "image-folder:"])
def test_bad_data_values(value):
    with pytest.raises(UsageError):
        parse_data(value)
