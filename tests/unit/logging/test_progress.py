"""The progress bar: drawn on a terminal, silent elsewhere."""

from __future__ import annotations

import io
import logging

from fedscale_halor.logging.progress import ProgressSink
from fedscale_halor.types import EvalResult, RoundMetrics


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _round(index: int, test: EvalResult | None = None) -> RoundMetrics:
    return RoundMetrics(round=index, clock_s=40.0 * index, wall_time_s=0.1, participants=(1, 2), completed=2,
                        train_loss=1.0 / index, learning_rate=0.05, test=test)


def _last_frame(stream: io.StringIO) -> str:
    frames = [frame for frame in stream.getvalue().replace("\n", "\r").split("\r") if frame.strip()]
    return frames[-1]


def test_on_a_terminal_the_bar_resumes_at_the_done_rounds_and_shows_the_latest_accuracy() -> None:
    # Prepare: a resumed job, 2 of 5 rounds already done
    stream = _Terminal()
    sink = ProgressSink(5, rounds_done=2, stream=stream)
    first_frame = _last_frame(stream)

    # Execute: round 3 evaluated (9 of 10 right), round 4 not
    sink.on_round(_round(3, EvalResult(num_samples=10, loss_sum=1.0, top1_correct=9, top5_correct=10)))
    sink.on_round(_round(4))
    sink.close()

    # Assert: the last frame is round 4's, with round 3's accuracy, round 4's loss 1/4 and clock 4 * 40 s
    assert sink.active is False
    assert "2/5" in first_frame
    last = _last_frame(stream)
    assert "4/5" in last
    assert "top1=0.9000" in last and "loss=0.2500" in last and "clock=160s" in last


def test_off_a_terminal_nothing_is_written() -> None:
    # Prepare
    stream = io.StringIO()
    sink = ProgressSink(5, stream=stream)

    # Execute
    sink.on_round(_round(1))
    sink.close()

    # Assert
    assert sink.active is False
    assert stream.getvalue() == ""


def test_the_terminal_decision_is_injectable() -> None:
    # Prepare / Execute: a plain buffer declared a terminal, and a terminal declared not one
    drawn = ProgressSink(3, stream=io.StringIO(), is_terminal=lambda stream: True)
    silent_stream = _Terminal()
    silent = ProgressSink(3, stream=silent_stream, is_terminal=lambda stream: False)

    # Assert
    assert drawn.active and not silent.active
    drawn.close()
    silent.on_round(_round(1))
    assert silent_stream.getvalue() == ""


def test_a_log_line_printed_to_the_terminal_clears_the_bar_first() -> None:
    # Prepare: the job's logger echoes to the same terminal the bar is drawn on
    stream = _Terminal()
    logger = logging.getLogger("test.progress.echo")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    sink = ProgressSink(4, stream=stream, logger=logger)

    # Execute
    logger.info("round 1 finished")
    sink.on_round(_round(1))
    sink.close()
    logger.info("after the job")
    logger.removeHandler(handler)

    # Assert: the line starts at the left edge (a carriage return after the wiped bar), not after the bar's text;
    # once closed, the filter is gone and the line follows the finished bar's own newline
    text = stream.getvalue()
    assert text[text.index("round 1 finished") - 1] == "\r"
    assert text[text.index("after the job") - 1] == "\n"
    assert handler.filters == []
