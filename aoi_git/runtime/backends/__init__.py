"""Agent backends: how an employee's talent is run as a process under the SPEC §4 contract."""
