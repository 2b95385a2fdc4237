"""Checkpoint files: written whole or not at all; Lightning's micro-batch counters carried to another layout."""

from __future__ import annotations

import pytest
import torch

from lightning_template_core._checkpointing import atomic_torch_save
from lightning_template_core._checkpointing.resume_state import rescale_micro_batch_counters
from lightning_template_core._errors import UserError


class FailsHalfway:
    """Pickling this raises after torch.save has begun writing the file."""

    def __reduce__(self):
        raise RuntimeError("disk full")


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_partial_file(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    atomic_torch_save({"step": 1, "weights": torch.ones(1000)}, path)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_torch_save({"weights": torch.zeros(1000), "bad": FailsHalfway()}, path)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize(
    ("where", "fragments"),
    [("a folder", ["Is a directory", "give the path of a file"]), ("under a file", ["a part of the path is a file"])],
)
def test_a_path_the_file_system_refuses_is_one_user_error_naming_it(tmp_path, where, fragments):
    (tmp_path / "a-file").write_text("in the way\n")
    path = tmp_path if where == "a folder" else tmp_path / "a-file" / "last.ckpt"
    with pytest.raises(UserError) as refused:
        atomic_torch_save({"step": 1}, path)
    assert str(refused.value).startswith(f"Cannot write {path} (") and all(f in str(refused.value) for f in fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing left behind


def loops(ready: int, completed: int) -> dict:
    counts = {"ready": ready, "started": ready, "processed": ready, "completed": completed}
    return {"fit_loop": {"epoch_loop.batch_progress": {"total": dict(counts), "current": dict(counts)}}}


def test_micro_batch_counters_follow_the_new_accumulation_and_keep_their_distance_to_ready():
    state = loops(ready=40, completed=39)  # written at a batch's end: not counted completed yet
    rescale_micro_batch_counters(state, old_accumulate=4, new_accumulate=1)
    progress = state["fit_loop"]["epoch_loop.batch_progress"]
    assert progress["current"] == {"ready": 10, "started": 10, "processed": 10, "completed": 9}
    rescale_micro_batch_counters(state, old_accumulate=1, new_accumulate=2)
    assert progress["total"]["ready"] == 20 and progress["total"]["completed"] == 19


def test_counters_inside_an_accumulation_window_are_refused():
    with pytest.raises(UserError, match="inside an accumulation window"):
        rescale_micro_batch_counters(loops(ready=6, completed=6), old_accumulate=4, new_accumulate=1)
