"""One module per subcommand; each exposes a click command (or group)."""

from __future__ import annotations

import click


def REGISTRY() -> list[click.Command]:  # noqa: N802 - a constant-like accessor
    from aoi_git.commands import (
        answer,
        daemon,
        demo,
        fire,
        graph,
        hire,
        hook,
        init,
        log,
        market,
        one_on_one,
        retro,
        review,
        stats,
        status,
        task,
        validate,
    )

    return [
        init.init, validate.validate, task.task, graph.tree, graph.graph, log.log, hook.hook,
        daemon.daemon, status.status, answer.answer, review.review, demo.demo,
        market.market_cmd, hire.hire, fire.fire, one_on_one.one_on_one, retro.retro,
        stats.stats,
    ]
