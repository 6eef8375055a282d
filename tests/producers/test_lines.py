from hypothesis import given, settings
from hypothesis import strategies as st

from trainsentry.producers.lines import LineSplitter, split_lines, split_output


def stream(chunks: list[bytes]) -> list[str]:
    splitter = LineSplitter()
    out = [line for chunk in chunks for line in splitter.feed(chunk)]
    return out + splitter.finish()


def test_the_rules_md_line_rule() -> None:
    assert split_output(b"a\nb\r\n\n") == ["a", "b", ""]
    assert split_output(b" 10%\r 50%\r100%\n") == [" 10%", " 50%", "100%"]
    assert split_output(b"a\r\r\n") == ["a", ""]          # one trailing \r dropped, one kept
    assert split_output(b"last line, no newline") == ["last line, no newline"]
    assert split_output(b"") == []


def test_progress_pieces_come_out_as_soon_as_their_carriage_return_arrives() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"epoch 1 ") == []
    assert splitter.feed(b" 30%\r") == ["epoch 1  30%"]
    assert splitter.feed(b"\n") == []                     # that \r was the line's own ending
    assert splitter.feed(b"done\r") == ["done"]
    assert splitter.feed(b"\r\n") == [""]
    assert splitter.finish() == []


def test_invalid_utf8_is_replaced_in_the_line() -> None:
    assert stream([b"loss \xff\xfe ok\n", b"caf\xc3", b"\xa9\n"]) == ["loss \ufffd\ufffd ok", "caf\u00e9"]


def test_a_line_without_end_is_cut_into_bounded_pieces() -> None:
    splitter = LineSplitter(max_line_bytes=4)
    assert splitter.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert splitter.finish() == ["ij"]


def test_text_lines_follow_the_same_rule() -> None:
    assert split_lines("Traceback:\n  line\r\nerr") == ["Traceback:", "  line", "err"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b"\xff", b"\xc3\xa9", b" "]),
                max_size=40),
       st.data())
def test_any_chunking_gives_the_reference_lines(parts: list[bytes], data: st.DataObject) -> None:
    output = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(output)), max_size=8)))
    chunks = [output[i:j] for i, j in zip([0, *cuts], [*cuts, len(output)], strict=True)]
    assert stream(chunks) == split_output(output)
