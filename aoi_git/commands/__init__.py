"""One module per subcommand; each exposes a click command (or group)."""

from __future__ import annotations

import click


def REGISTRY() -> list[click.Command]:  # noqa: N802 - a constant-like accessor
    from aoi_git.commands import (
        answer,
        daemon,
        demo,
        graph,
        hook,
        init,
        log,
        review,
        status,
        task,
        validate,
    )

    return [
        init.init, validate.validate, task.task, graph.tree, graph.graph, log.log, hook.hook,
        daemon.daemon, status.status, answer.answer, review.review, demo.demo,
    ]
