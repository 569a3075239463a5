"""An engineer: writes the module its task's label asks for, with unit tests.

Runs in the task's worktree (cwd); aoi commits what it changes on branch aoi/<task-id>.
"""

import json
import os
import pathlib

with open(os.environ["AOI_TASK_FILE"]) as fh:
    task = json.load(fh)
labels = task.get("labels", [])
feedback = " ".join(f["text"] if isinstance(f, dict) else str(f)
                    for f in task.get("feedback", []))
files: dict[str, str] = {}

if "words" in labels:
    files["textkit/__init__.py"] = '"""textkit: tiny text statistics."""\n'
    files["textkit/words.py"] = '''"""Word statistics."""

import re
from collections import Counter

WORD = re.compile(r"[A-Za-z']+")


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def word_count(text: str) -> int:
    return len(words(text))


def top_words(text: str, n: int = 3) -> list[tuple[str, int]]:
    return Counter(words(text)).most_common(n)
'''
    files["tests/test_words.py"] = '''import unittest

from textkit.words import top_words, word_count


class WordTests(unittest.TestCase):
    def test_count(self):
        self.assertEqual(word_count("The cat sat. The end!"), 5)

    def test_top(self):
        self.assertEqual(top_words("a b a c a b", 2), [("a", 3), ("b", 2)])
'''
    summary = "Added textkit/words.py (word_count, top_words) with 2 unit tests."
elif "sentences" in labels:
    reworking = "sentence" in feedback.lower() or "fail" in feedback.lower()
    splitter = r'"[.!?]+"' if reworking else r'"[.]+"'
    files["textkit/sentences.py"] = f'''"""Sentence statistics."""

import re

END = re.compile({splitter})


def sentence_count(text: str) -> int:
    return len([part for part in END.split(text) if part.strip()])
'''
    files["tests/test_sentences.py"] = '''import unittest

from textkit.sentences import sentence_count


class SentenceTests(unittest.TestCase):
    def test_periods(self):
        self.assertEqual(sentence_count("One. Two. Three."), 3)

    def test_question_and_exclamation(self):
        self.assertEqual(sentence_count("Hi! Are you well? Yes."), 3)
'''
    summary = ("Fixed: sentences now end at . ! or ? as the review asked."
               if reworking else "Added textkit/sentences.py (sentence_count) with 2 tests.")
elif "cli" in labels:
    files["textkit/__main__.py"] = '''"""python -m textkit FILE: print word and sentence statistics."""

import sys

from textkit.sentences import sentence_count
from textkit.words import top_words, word_count


def main(argv: list[str]) -> int:
    text = open(argv[0]).read() if argv else sys.stdin.read()
    print(f"words: {word_count(text)}")
    print(f"sentences: {sentence_count(text)}")
    print("top: " + ", ".join(f"{w} ({n})" for w, n in top_words(text, 3)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
'''  # noqa: E501
    files["tests/test_cli.py"] = '''import subprocess
import sys
import unittest


class CliTests(unittest.TestCase):
    def test_stdin(self):
        out = subprocess.run([sys.executable, "-m", "textkit"], input="Go. Go now!",
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("words: 3", out)
        self.assertIn("sentences: 2", out)
'''
    summary = "Added python -m textkit with a test that runs it."
elif "docs" in labels:
    files["textkit/README.md"] = """# textkit

Tiny text statistics: word counts, the most common words and sentence counts.

    python -m textkit FILE     # or: ... | python -m textkit

prints `words: N`, `sentences: N` and `top: word (n), ...`. In Python:
`textkit.words.word_count`, `textkit.words.top_words`, `textkit.sentences.sentence_count`.
"""
    summary = "Added textkit/README.md: what textkit does and how to run it."
else:
    summary = "Nothing to build for this task's labels."

for path, text in files.items():
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)

with open(os.environ["AOI_RESULT_FILE"], "w") as fh:
    json.dump({"outcome": "completed", "summary": summary,
               "lessons": ["Ship tests with the code so the reviewer can run them."]}, fh)
