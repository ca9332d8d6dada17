"""The server-sent-events parser under the streaming client."""

from __future__ import annotations

from assistant.llm.sse import Event, parse_events


def test_events_split_on_blank_lines_and_stop_at_done() -> None:
    lines = ['data: {"a": 1}', "", ": keep-alive", "", 'data: {"b": 2}', "", "data: [DONE]", "", "data: late"]
    assert list(parse_events(lines)) == [Event("message", '{"a": 1}'), Event("message", '{"b": 2}')]


def test_multi_line_data_and_named_events() -> None:
    lines = ["event: error", "data: {", 'data: "x": 1}', "", "data:no-space", ""]
    events = list(parse_events(lines))
    assert events[0] == Event("error", '{\n"x": 1}')
    assert events[0].json() == {"x": 1}
    assert events[1] == Event("message", "no-space")


def test_last_event_without_trailing_blank_line() -> None:
    assert list(parse_events(['data: {"c": 3}'])) == [Event("message", '{"c": 3}')]
