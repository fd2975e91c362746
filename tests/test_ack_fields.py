"""A pulled message's delivery count and stream sequence, read from its ack subject in both
of JetStream's forms, agree with nats-py's own parse (``Msg.metadata``)."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from runtime.pull import deliveries, stream_seq

REPLIES = {
    "nine tokens": "$JS.ACK.WORK.agents-eu.3.1234.17.1733130000000000000.5",
    "domain and account hash": "$JS.ACK.hub.ACC.WORK.agents-eu.3.1234.17.1733130000000000000.5.t",
}


@pytest.mark.parametrize("reply", REPLIES.values(), ids=REPLIES.keys())
def test_ack_subject_fields_match_nats_py(reply: str) -> None:
    msg = Msg(_client=None, subject="s", reply=reply)  # type: ignore[arg-type]
    assert deliveries(msg) == msg.metadata.num_delivered == 3
    assert stream_seq(msg) == msg.metadata.sequence.stream == 1234
