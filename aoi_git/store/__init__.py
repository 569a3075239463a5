"""Git as the database: the one git path, the store, transactions, trailers, history."""
