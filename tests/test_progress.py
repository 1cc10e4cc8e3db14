"""What a fit prints: nothing, a per-epoch table, or a table and progress bars."""

import io

import pytest

from sklearn_dividemix import DivideMixClassifier, UntrustedFitWarning
from sklearn_dividemix._epochs import EpochReporter

N_SAMPLES = 100
PARAMS = dict(max_epochs=3, warmup_epochs=2, batch_size=16, lr=0.1, random_state=0)
HEADER = [
    "epoch",
    "phase",
    "loss_net1",
    "loss_net2",
    "labeled_net1",
    "labeled_net2",
    "dur",
]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


def _fit(noisy_digits, verbose):
    X, y = noisy_digits["X_train"][:N_SAMPLES], noisy_digits["y_noisy"][:N_SAMPLES]
    return DivideMixClassifier(**PARAMS, verbose=verbose).fit(X, y)


def test_verbose_0_prints_nothing(noisy_digits, capsys):
    _fit(noisy_digits, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_verbose_1_prints_header_and_one_line_per_epoch(noisy_digits, capsys):
    clf = _fit(noisy_digits, verbose=1)
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar
    header, *rows, final = captured.out.strip().splitlines()
    assert header.split() == HEADER
    assert len(rows) == PARAMS["max_epochs"]
    # the last line is the final division, the one behind clean_mask_
    assert f"keeps {clf.clean_mask_.mean():.1%} of the labels" in final
    for line, row in zip(rows, clf.history_, strict=True):
        epoch, phase, loss1, loss2, labeled1, labeled2, _ = line.split()
        assert (int(epoch), phase) == (row["epoch"], row["phase"])
        assert float(loss1) == pytest.approx(row["loss_net1"], abs=1e-4)
        assert float(loss2) == pytest.approx(row["loss_net2"], abs=1e-4)
        for shown, net in ((labeled1, "net1"), (labeled2, "net2")):
            percent = 100 * row[f"labeled_{net}"] / N_SAMPLES
            assert float(shown.rstrip("%")) == pytest.approx(percent, abs=0.05)


def test_verbose_2_adds_a_progress_bar_per_epoch(noisy_digits, capsys):
    _fit(noisy_digits, verbose=2)
    captured = capsys.readouterr()
    # header, one line per epoch, the final division
    assert len(captured.out.strip().splitlines()) == 2 + PARAMS["max_epochs"]
    # tqdm draws on stderr, one bar per epoch named after its phase
    assert captured.err.count("warm-up") >= PARAMS["warmup_epochs"]
    assert "mixmatch" in captured.err
    assert "it/s" in captured.err or "s/it" in captured.err


@pytest.mark.parametrize("verbose, n_lines", [(0, 0), (1, 2), (2, 2)])
def test_reporter_writes_to_its_stream(verbose, n_lines, capsys):
    stream = io.StringIO()
    reporter = EpochReporter(verbose, stream=stream)
    for epoch in (1, 2):
        reporter.start_epoch(4, "warm-up")
        for _ in range(4):
            reporter.step()
        row = dict(
            epoch=epoch,
            phase="warmup",
            loss_net1=1.0,
            loss_net2=2.0,
            labeled_net1=50,
            labeled_net2=25,
            dur=0.5,
        )
        reporter.end_epoch(row, n_samples=100)
    lines = stream.getvalue().splitlines()
    assert len(lines) == n_lines + (verbose >= 1)
    if verbose >= 1:
        assert lines[1].split() == [
            "1",
            "warmup",
            "1.0000",
            "2.0000",
            "50.0%",
            "25.0%",
            "0.50",
        ]
    assert ("warm-up" in capsys.readouterr().err) == (verbose >= 2)


def test_reporter_close_ends_an_unfinished_bar(capsys):
    reporter = EpochReporter(2, stream=io.StringIO())
    reporter.start_epoch(10, "mixmatch")
    reporter.step()
    reporter.close()
    assert reporter._bar is None
    reporter.close()  # closing twice is harmless
    assert "mixmatch" in capsys.readouterr().err


def test_verbose_says_why_once_in_the_warning(noisy_digits, capsys):
    """Issue 20: verbose=1 printed every reason the warning then gave again."""
    d = noisy_digits
    clf = DivideMixClassifier(max_epochs=3, warmup_epochs=1, random_state=0, verbose=1)
    with pytest.warns(UntrustedFitWarning) as record:
        clf.fit(d["X_train"][:150], d["y_noisy"][:150])
    untrusted = [w for w in record if issubclass(w.category, UntrustedFitWarning)]
    assert len(untrusted) == 1
    message = str(untrusted[0].message)
    out = capsys.readouterr().out
    final = out.strip().splitlines()[-1]
    assert final.startswith("final division: clean_mask_ keeps")
    assert final.endswith("NOT trusted (see the UntrustedFitWarning and fit_verdict_)")
    reasons = clf.fit_verdict_["reasons"]
    assert reasons and reasons[0] in message
    assert not any(reason in out for reason in reasons)
