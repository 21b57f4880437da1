"""The <thinking> splitter: the same answer however the text is chunked (docs/kiro-protocol.md, “Thinking”)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_gateway.kiro.thinking import ThinkingSplitter


def run(chunks, enabled=True):
    s = ThinkingSplitter(enabled)
    out = []
    for c in chunks:
        out += s.feed(c)
    out += s.finish()
    return ("".join(t for k, t in out if k == "thinking"), "".join(t for k, t in out if k == "text"),
            sum(k == "end" for k, _ in out))


def test_basic_split():
    assert run(["<thinking>\nplan\n</thinking>\n\nanswer"]) == ("plan", "answer", 1)


def test_quoted_close_tag_does_not_end_thinking():
    text = "<thinking>\nuse `</thinking>` to close\n</thinking>\n\nok"
    assert run([text]) == ("use `</thinking>` to close", "ok", 1)


def test_close_tag_needs_blank_line_except_at_end():
    assert run(["<thinking>a</thinking> b</thinking>\n\nc"]) == ("a</thinking> b", "c", 1)
    assert run(["<thinking>a</thinking>  "]) == ("a", "", 1)


def test_tag_not_at_start_is_text():
    assert run(["Say <thinking>x</thinking>\n\n"]) == ("", "Say <thinking>x</thinking>\n\n", 0)


def test_disabled_passes_everything_through():
    assert run(["<thinking>x</thinking>\n\ny"], enabled=False) == ("", "<thinking>x</thinking>\n\ny", 0)


def test_unterminated_thinking_is_closed_at_end():
    assert run(["<thinking>\nstill going"]) == ("still going", "", 1)


def test_split_open_tag_and_whitespace_only():
    assert run(["  <thin", "king>", "\n", "x", "</think", "ing>\n", "\nrest"]) == ("x", "rest", 1)
    assert run(["   ", "\n"]) == ("", "", 0)


samples = st.sampled_from([
    "<thinking>\nI should say hi. Note `</thinking>` is a tag.\n</thinking>\n\nHello there! </thinking>\n\n ok",
    "\n<thinking>\r\nabc\n</thinking>\n\n\n\nDone <thinking>not me</thinking>",
    "plain answer with </thinking>\n\n inside",
    "<thinking>多字节的思考</thinking>\n\n答案",
    "<thinking></thinking>\n\nempty",
])


@settings(max_examples=300, deadline=None)
@given(samples, st.data())
def test_any_chunking_gives_the_same_result(text, data):
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=15)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert run(chunks) == run([text])


def test_sentence_punctuation_before_close_tag_still_closes():
    assert run(["<thinking>Plan it.</thinking>\n\nDone."]) == ("Plan it.", "Done.", 1)
    assert run(["<thinking>Plan it?", "</thinking>", "\n\nDone."]) == ("Plan it?", "Done.", 1)
