"""Tool access by role: which of the tools an employee asks for it may use (claude backend).

The tools asked for are the profile's `tools`, or its talent's when the profile lists
none. A tool spec may carry a pattern (`Bash(git:*)`); access is decided by its name:

- base tools (`aoi.yaml` `tools.base`) are granted to everyone, asked for or not;
- a gated tool (a key of `tools.gated`) only if the employee's role is listed for it
  (or `*` is);
- any other tool is a talent's own: granted only to holders of a talent that lists it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aoi_git.domain.model import Employee, OrgConfig, Talent


def tool_name(spec: str) -> str:
    return spec.split("(", 1)[0].strip()


@dataclass(frozen=True)
class ToolAccess:
    allowed: tuple[str, ...]
    denied: dict[str, str] = field(default_factory=dict)  # spec -> why


def tool_access(emp: Employee, config: OrgConfig, talent: Talent | None) -> ToolAccess:
    wanted = list(emp.tools) or (list(talent.tools) if talent is not None else [])
    talent_names = {tool_name(t) for t in talent.tools} if talent is not None else set()
    allowed = list(config.base_tools)
    denied: dict[str, str] = {}
    for spec in wanted:
        name = tool_name(spec)
        if name in config.base_tools:
            continue
        roles = config.gated_tools.get(name)
        if roles is not None:
            if emp.role in roles or "*" in roles:
                allowed.append(spec)
            else:
                denied[spec] = (f"gated: aoi.yaml tools.gated.{name} does not list the role "
                                f"{emp.role!r}")
        elif name in talent_names:
            allowed.append(spec)
        else:
            denied[spec] = (f"neither a base nor a gated tool, and not a tool of the talent "
                            f"{emp.talent or '(none)'}")
    return ToolAccess(tuple(dict.fromkeys(allowed)), denied)


def allowed_tools(emp: Employee, config: OrgConfig, talent: Talent | None) -> list[str]:
    """The tools the employee's agent is given (see the module doc)."""
    return list(tool_access(emp, config, talent).allowed)
