"""The planner: decomposes the root project into subtasks (the result file of docs/agents.md)."""

import json
import os

with open(os.environ["AOI_TASK_FILE"]) as fh:
    task = json.load(fh)
result = {
    "outcome": "completed",
    "summary": "Split textkit into a word module, a sentence module and a CLI over both.",
    "subtasks": [
        {"key": "words", "title": "Word statistics: word_count and top_words",
         "description": "textkit/words.py with word_count(text) and top_words(text, n), "
                        "plus unit tests in tests/test_words.py.",
         "assignee": "eng-1", "labels": ["words"], "reviewer": "qa"},
        {"key": "sentences", "title": "Sentence statistics: sentence_count",
         "description": "textkit/sentences.py with sentence_count(text): sentences end with "
                        ". ! or ?. Unit tests in tests/test_sentences.py.",
         "assignee": "eng-2", "labels": ["sentences"], "reviewer": "qa"},
        {"key": "cli", "title": "Command line: python -m textkit FILE",
         "description": "textkit/__main__.py printing words, sentences and the top 3 words.",
         "assignee": "eng-1", "labels": ["cli"], "depends_on": ["words", "sentences"],
         "reviewer": "qa"},
    ],
    "lessons": ["Split by module so two engineers can work in parallel without conflicts."],
    "usage": {"input_tokens": 0, "output_tokens": 0, "usd": 0.0},
}
with open(os.environ["AOI_RESULT_FILE"], "w") as fh:
    json.dump(result, fh)
