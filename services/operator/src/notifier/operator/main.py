"""The operator's composition root: read settings, set up logging, run kopf with our handlers.

Equivalent to `kopf run --standalone --liveness=http://0.0.0.0:8080/healthz -m
notifier.operator.handlers` plus `-A` or `-n NAMESPACE`, with our JSON logging.
"""

from __future__ import annotations

import os

import kopf

from notifier.operator import handlers  # noqa: F401  (importing registers the kopf handlers)
from notifier.operator.logs import setup_operator_logging
from notifier.operator.settings import OperatorSettings


def main() -> None:
    settings = OperatorSettings.from_env(os.environ)
    setup_operator_logging(settings.log_level)
    # One replica (see the chart), so no peering objects are needed: standalone.
    kopf.run(
        registry=kopf.get_default_registry(),
        standalone=True,
        clusterwide=settings.clusterwide,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint,
        memo=kopf.Memo(config=settings),
    )


if __name__ == "__main__":
    main()
