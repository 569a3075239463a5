"""The domain: pure records, the lifecycle table, ids and the task graph. No IO."""
