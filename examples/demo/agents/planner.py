"""The planner: decomposes the root project into subtasks (the result file of docs/agents.md).

When the project comes back (its review rejected it), the planner revises its plan
instead of starting over: it keeps the subtasks it made, whose work is accepted and
merged, and adds only what the review asked for.
"""

import json
import os

with open(os.environ["AOI_TASK_FILE"]) as fh:
    task = json.load(fh)
planned = (task.get("extra") or {}).get("subtasks") or []  # the plan it made before
if planned:
    feedback = " ".join(f["text"] if isinstance(f, dict) else str(f)
                        for f in task.get("feedback", []))
    result = {
        "outcome": "completed",
        "summary": f"Kept the {len(planned)} accepted subtasks; added the usage "
                   "documentation the review asked for.",
        "keep": planned,
        "subtasks": [
            {"key": "docs", "title": "Usage documentation: textkit/README.md",
             "description": "textkit/README.md: what textkit does and how to run "
                            f"python -m textkit FILE. The review said: {feedback[-300:]}",
             "assignee": "eng-2", "labels": ["docs"], "reviewer": "qa"},
        ],
        "lessons": ["A project ships its usage documentation; plan it from the start."],
        "usage": {"input_tokens": 0, "output_tokens": 0, "usd": 0.0},
    }
else:
    result = {
        "outcome": "completed",
        "summary": "Split textkit into a word module, a sentence module and a CLI over both.",
        "subtasks": [
            {"key": "words", "title": "Word statistics: word_count and top_words",
             "description": "textkit/words.py with word_count(text) and top_words(text, n), "
                            "plus unit tests in tests/test_words.py.",
             "assignee": "eng-1", "labels": ["words"], "reviewer": "qa"},
            {"key": "sentences", "title": "Sentence statistics: sentence_count",
             "description": "textkit/sentences.py with sentence_count(text): sentences end "
                            "with . ! or ?. Unit tests in tests/test_sentences.py.",
             "assignee": "eng-2", "labels": ["sentences"], "reviewer": "qa"},
            {"key": "cli", "title": "Command line: python -m textkit FILE",
             "description": "textkit/__main__.py printing words, sentences and the top 3 "
                            "words.",
             "assignee": "eng-1", "labels": ["cli"], "depends_on": ["words", "sentences"],
             "reviewer": "qa"},
        ],
        "lessons": ["Split by module so two engineers can work in parallel without conflicts."],
        "usage": {"input_tokens": 0, "output_tokens": 0, "usd": 0.0},
    }
with open(os.environ["AOI_RESULT_FILE"], "w") as fh:
    json.dump(result, fh)
