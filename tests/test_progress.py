"""The training log: each epoch's line gives the steps actually run, also when the time budget stops it early."""
import re

import classically_deep as cd
from conftest import quick_args


def test_an_epoch_cut_short_by_the_time_budget_reports_the_steps_it_ran(tiny_archive, tmp_path, capsys):
    args = quick_args(tiny_archive, tmp_path, "--max_minutes=1e-9", "--epochs=5", "--hidden_size=16", "--head=sigmoid",
                      "--seq_len=16", "--batch_size=4", "--primer_frames=8", "--generate_frames=4", "--num_outputs=1")
    assert cd.main(args) == 0
    out = capsys.readouterr().out
    assert "Epoch 1/5" in out and "Epoch 2/5" not in out
    ends = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(ends) == 1
    steps = re.match(r"epoch 1: 1/(\d+) steps, [\d.]+ s, \d+ ms/step, loss [\d.]+, val_frame_nll [\d.]+", ends[0])
    assert steps and int(steps.group(1)) > 1, ends  # one step run of an epoch of several
