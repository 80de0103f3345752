"""connlog.shapes.rest.respond: the HTTP status and headers go as response
metadata unless the gateway implies them (the call's shape's success
status, nothing else to send)."""

from __future__ import annotations

import pytest

from connlog.shapes.rest import STATUS_HEADER, respond


class RecordingContext:
    """The one ServicerContext method respond uses, recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple[str, str], ...]] = []

    async def send_initial_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.sent.append(tuple(metadata))


@pytest.mark.parametrize(("status", "headers", "implied", "sent"), [
    (201, (), 201, []),  # through the gateway, the shape's success: nothing to send
    (200, (), 200, []),
    (201, (), None, [((STATUS_HEADER, "201"),)]),  # a direct caller: always named
    (200, (), None, [((STATUS_HEADER, "200"),)]),
    (422, (), 201, [((STATUS_HEADER, "422"),)]),  # another status than the implied one
    (200, (), 201, [((STATUS_HEADER, "200"),)]),
    (201, (("retry-after", "3"),), 201, [((STATUS_HEADER, "201"), ("retry-after", "3"))]),  # headers to send
])
async def test_the_status_goes_unless_the_gateway_implies_it(status, headers, implied, sent):
    context = RecordingContext()
    body = await respond(context, status, {"id": 1}, headers=headers, implied=implied)  # type: ignore[arg-type]
    assert context.sent == sent
    assert body.content_type == "application/json" and body.data == b'{"id":1}'
