"""Agent backends: how an employee's talent is run as a process under the agent
contract (docs/agents.md)."""
