"""How the organisation learns: journals, retrospectives, hiring, reviews, metrics."""
