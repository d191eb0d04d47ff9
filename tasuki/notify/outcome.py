"""What became of one attempt to deliver a message, as the ledger records it."""

from __future__ import annotations

from typing import NamedTuple

from tasuki.errors import TasukiError
from tasuki.notify.ledger import Status


class Outcome(NamedTuple):
    """The result of one send: a ledger status and what the service said.

    ``sent``: ``result`` holds the service's acknowledgement (Slack's channel and ``ts``, the
    SMTP reply); ``failed``: ``error`` holds its refusal (Slack's error code, the SMTP reply);
    ``unknown``: the request went out and no answer came back; ``pending``: the service said it
    did nothing (try again later); ``skipped``: there was nowhere to send it."""

    status: Status
    result: str = ""
    error: str = ""


class DeliveryUnavailable(TasukiError):
    """Slack or the mail server could not take messages now (5xx, rate limit past its retries,
    connection refused): the messages stay owed and the job fails so it is run again."""
