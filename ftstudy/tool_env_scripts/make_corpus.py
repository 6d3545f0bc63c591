"""Write the tiny model's bundled pretraining corpus, `pretrain_corpus.txt` (run once; the file is committed).

A real base model has read news, stories, dialogues, arithmetic, JSON records and code before anyone fine-tunes
it; this corpus gives the tiny model a few hundred kilobytes of the same kinds of text, so that fine-tuning
adapts a model that already models language (a LoRA adapter cannot teach a random `lm_head` anything).

What it deliberately does NOT hold: the demo's tasks. No article is followed by its topic label, no
instruction asks to classify, no tool list or `<tool_call>` appears, and no row of ftstudy/study/demo_data is
copied here (tests/test_tiny.py checks that). Generic skills the tasks later use are present as any web text
has them: topic vocabulary in news prose, and records that restate facts from a sentence as JSON.

Usage: python ftstudy/tool_env_scripts/make_corpus.py   (deterministic: the same file every time)
"""
from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "pretrain_corpus.txt"

NAMES = ["Ana", "Ben", "Chen", "Dara", "Elif", "Femi", "Goran", "Hana", "Ivan", "Jia", "Kofi", "Lena", "Mateo",
         "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tomas", "Uma", "Viktor", "Wen", "Yusuf", "Zara"]
CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Delhi", "Rome", "Seoul", "Madrid", "Lisbon", "Berlin", "Nairobi",
          "Sydney", "Toronto", "Dublin", "Vienna", "Prague", "Athens", "Bogota", "Hanoi", "Dakar", "Quito", "Riga",
          "Accra", "Manila", "Lagos", "Havana", "Kyiv", "Doha", "Perth"]
CODES = ["USD", "EUR", "JPY", "GBP", "INR", "CHF", "CAD", "AUD", "BRL", "KRW"]
THINGS = ["books", "apples", "tickets", "chairs", "lamps", "coins", "shirts", "cups", "plants", "maps"]
NEWS = {  # subject, verb phrase, detail: ordinary news prose on many subjects (never labelled)
    "politics": (["the minister", "lawmakers", "the mayor", "the governor", "voters", "the senate", "the envoy",
                  "the ruling party", "officials", "the delegation"],
                 ["approved a new budget", "debated the reform bill", "met foreign leaders", "promised new elections",
                  "signed a trade agreement", "rejected the proposal", "opened an inquiry", "lifted the curfew"],
                 ["after long talks", "in the capital", "on Tuesday", "at the summit", "despite protests"]),
    "sport": (["the team", "the forward", "the champion", "the coach", "the captain", "the club", "the runner",
               "the defender", "the boxer", "the cyclist"],
              ["won the match", "scored in the second half", "lost the final", "set a new record",
               "signed for a rival club", "was injured in training", "reached the quarter-finals", "drew the game"],
              ["at the stadium", "on Saturday", "in the league", "before a home crowd", "in the last minute"]),
    "money": (["the company", "shares", "the bank", "the retailer", "exporters", "the market", "the firm",
               "investors", "the factory", "prices"],
              ["reported higher profits", "fell sharply", "raised wages", "cut its forecast", "bought a rival",
               "hired new staff", "closed two stores", "paid a dividend"],
              ["this year", "in the third quarter", "on Wall Street", "after strong sales", "amid weak demand"]),
    "science": (["scientists", "the lab", "researchers", "the startup", "engineers", "the observatory", "doctors",
                 "the probe", "the team of biologists", "programmers"],
                ["tested a new vaccine", "photographed a comet", "built a smaller battery", "released new software",
                 "measured the melting ice", "sequenced a rare plant", "designed a faster chip", "patched a bug"],
                ["in a paper", "at the university", "this week", "with a new method", "for the first time"]),
    "life": (["the chef", "the museum", "the festival", "the library", "the school", "the theatre", "farmers",
              "the village", "the artist", "families"],
             ["opened a new wing", "celebrated its anniversary", "welcomed visitors", "planted new trees",
              "held a concert", "baked bread for the market", "painted a mural", "shared old photographs"],
             ["in the spring", "on the weekend", "by the river", "in the old town", "for the holidays"]),
}
STORY = ["Once upon a time", "Long ago", "One rainy morning", "Late at night", "Every summer"]
PLACES = ["a small village", "a busy harbour", "the mountains", "an old house", "a quiet forest"]
EVENTS = ["found a map", "lost a key", "heard a strange song", "met a talking fox", "built a tiny boat"]
QA = [("What is the capital of {c}?", None), ("Say hello.", "Hello! How can I help you today?"),
      ("Thank you!", "You are welcome."), ("What day comes after Monday?", "Tuesday."),
      ("Name a colour.", "Blue."), ("Is ice cold?", "Yes, ice is cold.")]
CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Peru": "Lima", "Norway": "Oslo", "Egypt": "Cairo",
            "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon", "Germany": "Berlin", "Kenya": "Nairobi",
            "Ireland": "Dublin", "Austria": "Vienna", "Greece": "Athens", "Ghana": "Accra", "Latvia": "Riga"}


def news(rng: random.Random) -> str:
    topic = rng.choice(list(NEWS))
    subj, verb, detail = NEWS[topic]
    sents = []
    for _ in range(rng.randint(2, 4)):
        city = rng.choice(CITIES)
        sents.append(f"{rng.choice(subj).capitalize()} {rng.choice(verb)} {rng.choice(detail)} in {city}.")
    return " ".join(sents)


def record(rng: random.Random) -> str:
    """A sentence and the same facts restated as a JSON record: the copying any web text teaches."""
    who, a, b = rng.choice(NAMES), *rng.sample(CITIES, 2)
    kind = rng.randrange(5)
    if kind == 0:
        return f'{who} travelled from {a} to {b}.\n' + json.dumps({"person": who, "from": a, "to": b})
    if kind == 1:
        n, x, y = rng.choice([3, 7, 12, 25, 40, 75, 200, 1500]), *rng.sample(CODES, 2)
        return f"{who} changed {n} {x} into {y}.\n" + json.dumps({"person": who, "amount": n, "from": x, "to": y})
    if kind == 2:
        n, thing = rng.randint(2, 60), rng.choice(THINGS)
        return f"{who} bought {n} {thing} in {a}.\n" + json.dumps({"buyer": who, "item": thing, "count": n, "place": a})
    if kind == 3:
        m = rng.choice([4, 6, 8, 12, 25, 45, 60, 90])
        return f"The meeting with {who} lasts {m} minutes.\n" + json.dumps({"event": "meeting", "with": who, "minutes": m})
    t = rng.randint(-5, 35)
    return f"It is {t} degrees in {a} today.\n" + json.dumps({"place": a, "temperature": t})


def story(rng: random.Random) -> str:
    who = rng.choice(NAMES)
    return (f"{rng.choice(STORY)}, in {rng.choice(PLACES)}, {who} {rng.choice(EVENTS)}. "
            f"{who} told a friend from {rng.choice(CITIES)}, and together they {rng.choice(EVENTS)}.")


def arithmetic(rng: random.Random) -> str:
    a, b, thing = rng.randint(2, 40), rng.randint(2, 40), rng.choice(THINGS)
    if rng.random() < 0.5:
        return f"{rng.choice(NAMES)} has {a} {thing} and gets {b} more. {a} + {b} = {a + b}. The answer is {a + b}."
    return f"There are {a} boxes with {b} {thing} in each. {a} * {b} = {a * b}. The answer is {a * b}."


def dialogue(rng: random.Random) -> str:
    q, a = rng.choice(QA)
    if a is None:
        country = rng.choice(list(CAPITALS))
        q, a = q.format(c=country), f"The capital of {country} is {CAPITALS[country]}."
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>"


KINDS = [(news, 4), (record, 3), (story, 1), (arithmetic, 1), (dialogue, 1)]


def corpus(n: int = 4000, seed: int = 20261130) -> str:
    rng = random.Random(seed)
    makers = [k for k, w in KINDS for _ in range(w)]
    return "\n\n".join(rng.choice(makers)(rng) for _ in range(n)) + "\n"


if __name__ == "__main__":
    OUT.write_text(corpus(), encoding="utf-8")
