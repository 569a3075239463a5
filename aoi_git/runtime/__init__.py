"""Running the organisation: the daemon loop, the scheduler, agent processes."""
