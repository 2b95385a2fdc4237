"""What a surviving DDP rank says about a lost one (the real kills are in test_resume.py, marked slow)."""

from __future__ import annotations

import pytest

from lightning_template_core._checkpointing.lost_rank import is_lost_peer_error, short_reason

GLOO = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer"
    " [127.0.0.1]:24982. This is typically caused by a remote worker crashing. Check the logs of the remote worker"
    " before reporting an error. GLHF! 🏖️"
)


def test_the_reason_is_the_backends_first_sentence_without_its_source_line():
    assert short_reason(RuntimeError(GLOO)) == "Connection closed by peer [127.0.0.1]:24982"
    assert is_lost_peer_error(RuntimeError(GLOO))


@pytest.mark.parametrize(
    ("message", "expected"),
    [("", "RuntimeError"), ("word " * 60, ("word " * 24).strip() + " ..."), ("Timed out.\nmore", "Timed out")],
)
def test_a_reason_is_short_and_never_empty(message, expected):
    assert short_reason(RuntimeError(message)) == expected
