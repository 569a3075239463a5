"""The organisation: loading, validation, task operations, flow rules, agent context."""
