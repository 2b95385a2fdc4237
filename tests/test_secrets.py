"""A password in a URL a command is given is never printed or written by the run, whether it fails or succeeds."""

from __future__ import annotations

import pytest

from lightning_template_core._secrets import MASK, mask, secrets_in

from conftest import TINY, console_script, expect_user_error

SECRET = "pw123-not-for-logs"


def test_mask_hides_every_urls_password_and_keeps_the_rest():
    text = f"tracking_uri=http://ada:{SECRET}@10.0.0.1:5000/x and postgresql://bo:p%40ss@db/study, https://host/x"
    masked = mask(text)
    assert SECRET not in masked and "p%40ss" not in masked
    assert f"http://ada:{MASK}@10.0.0.1:5000/x" in masked and "https://host/x" in masked
    assert secrets_in([text]) == {SECRET, "p%40ss", "p@ss"}


def everything_written(run_dir, *, but=()) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name not in but}


@pytest.mark.slow
def test_an_unreachable_tracker_is_one_paragraph_within_a_bounded_wait_and_the_password_appears_nowhere(tmp_path):
    run_dir = tmp_path / "run"
    uri = f"logger.mlflow.tracking_uri=http://ada:{SECRET}@127.0.0.1:1"
    run = console_script("fit", *TINY, "logger=[csv,mlflow]", uri, f"hydra.run.dir={run_dir}", check=False, timeout=120)
    expect_user_error(run, "logger.mlflow.tracking_uri=http://ada:***@127.0.0.1:1 cannot be reached", "logger=csv")
    assert SECRET not in run.output
    assert not run_dir.exists() or not any(SECRET.encode() in data for data in everything_written(run_dir).values())


@pytest.mark.slow
def test_a_run_given_a_password_in_a_url_records_it_masked(tmp_path):
    """The artifact location of the run's MLflow store carries a password: it is in no line printed and no file
    the run writes (MLflow's own store, mlflow.db, keeps the location it must write to)."""
    run_dir = tmp_path / "run"
    location = f"logger.mlflow.artifact_location=http://ada:{SECRET}@127.0.0.1:1/artifacts"
    run = console_script(
        "fit", *TINY, "trainer.max_steps=2", "logger=[csv,mlflow]", location, f"hydra.run.dir={run_dir}"
    )
    assert SECRET not in run.output
    written = everything_written(run_dir, but=("mlflow.db",))
    assert "artifact_location: http://ada:***@127.0.0.1:1/artifacts" in (run_dir / "config.yaml").read_text()
    assert [path for path, data in written.items() if SECRET.encode() in data] == []
