"""A tracker on a server is reached before training starts, within a bounded wait, or refused in one paragraph.

MLflow's client retries an unreachable server with backoff for minutes, then raises from
deep inside the first log call, after training began. Here a run asks the server once,
as it is built, with at most ``RETRIES`` retries of ``TIMEOUT_SECONDS`` each (the user's own
``MLFLOW_HTTP_REQUEST_*`` settings win), and the URI is shown with its password masked.
"""

from __future__ import annotations

import os

from lightning.pytorch.loggers import Logger

from lightning_template_core._errors import UserError
from lightning_template_core._secrets import mask

TIMEOUT_SECONDS = 10
RETRIES = 2  # with a backoff factor of 1: a refused connection is known in about 3 s, a silent host in about 35 s
MLFLOW_HTTP = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(TIMEOUT_SECONDS),
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(RETRIES),
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def check_trackers_reachable(loggers: list[Logger]) -> None:
    """A UserError naming the first logger whose tracking server does not answer."""
    for logger in loggers:
        uri = getattr(logger, "_tracking_uri", None)
        if type(logger).__name__ == "MLFlowLogger" and str(uri).startswith(("http://", "https://")):
            _check_mlflow(str(uri))


def _check_mlflow(uri: str) -> None:
    for name, value in MLFLOW_HTTP.items():
        os.environ.setdefault(name, value)
    from mlflow.tracking import MlflowClient  # an extra: imported only where the logger is used

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as err:  # the client raises MlflowException or requests' errors, wrapped in several ways
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise UserError(
            f"logger.mlflow.tracking_uri={mask(uri)} cannot be reached ({mask(reason)}). Start the tracking"
            " server or fix the URI (credentials go in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, not"
            " the URL), or train without it: logger=csv. Nothing was written."
        ) from None
