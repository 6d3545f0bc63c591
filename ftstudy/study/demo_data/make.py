"""Write the demo's bundled data (run once; the files are committed): AG News-shaped topic classification and
xLAM-shaped tool calling, each with a training split and a held-out test split that never overlap: no text in
both, and no training text that shares a 13-gram with a test item (`ftstudy decontaminate` finds none).

The texts are built from small phrase tables written for this project. Classification is made harder than
keyword spotting: every article mixes in a phrase from another topic, so a model has to weigh the evidence.

Usage: python ftstudy/study/demo_data/make.py   (deterministic: the same files every time)
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from ftstudy.data.decontam import ngrams as decontam

HERE = Path(__file__).resolve().parent

TOPICS = {  # label -> subjects, actions, settings (AG News order: World, Sports, Business, Sci/Tech)
    0: (["The prime minister", "Diplomats", "The UN envoy", "Rebel leaders", "The foreign minister", "Border guards",
         "The president", "Opposition parties", "Peace negotiators", "The embassy"],
        ["signed a ceasefire", "held talks on the border dispute", "condemned the election violence",
         "announced new sanctions", "called for calm after the protests", "recalled its ambassador",
         "agreed to a prisoner exchange", "postponed the vote", "sent aid to the flooded region"],
        ["in the capital", "at the summit", "after the coup", "near the frontier", "in the parliament"]),
    1: (["The home team", "The striker", "The tennis champion", "The coach", "The league leaders", "The goalkeeper",
         "The sprinter", "The cricket captain", "The rookie", "The title holders"],
        ["won the final", "scored twice", "lost the semi-final", "signed a new contract", "broke the world record",
         "was sent off", "retired from the sport", "clinched the championship", "beat the rivals on penalties"],
        ["in extra time", "at the stadium", "in the playoffs", "at the grand slam", "on home turf"]),
    2: (["Shares of the retailer", "The central bank", "The carmaker", "Oil prices", "The airline", "Investors",
         "The bank's profits", "The mining group", "Quarterly sales", "The insurer"],
        ["rose sharply", "fell for a third quarter", "beat forecasts", "cut interest rates", "announced a merger",
         "laid off workers", "raised its dividend", "warned of slower growth", "filed for bankruptcy"],
        ["on the stock market", "in early trading", "despite weak demand", "after the earnings call", "this quarter"]),
    3: (["Researchers", "The space agency", "The software company", "Astronomers", "The chip maker", "Engineers",
         "The robotics lab", "Hackers", "The telescope team", "The browser update"],
        ["unveiled a faster processor", "discovered a distant planet", "launched a satellite",
         "released an open source tool", "found a security flaw", "built a quantum computer",
         "trained a new language model", "fixed the encryption bug", "mapped the human genome"],
        ["in a new study", "for the next mission", "for millions of users", "with a new sensor", "in the lab"]),
}


def article(rng: random.Random, label: int) -> str:
    subj, act, where = (rng.choice(part) for part in TOPICS[label])
    other = rng.choice([t for t in TOPICS if t != label])
    o_subj, o_act, _ = (rng.choice(part) for part in TOPICS[other])
    # one sentence about the topic, one distracting clause from another topic, then the topic again
    return f"{subj} {act} {where}. Meanwhile, {o_subj.lower()} {o_act}. {rng.choice(TOPICS[label][0])} commented."


TOOLS = [
    {"name": "get_weather", "description": "Current weather for a city.",
     "parameters": {"city": {"type": "str", "description": "City name."},
                    "unit": {"type": "str, optional", "description": "celsius or fahrenheit", "default": "celsius"}}},
    {"name": "convert_currency", "description": "Convert an amount between currencies.",
     "parameters": {"amount": {"type": "float", "description": "Amount."},
                    "source": {"type": "str", "description": "From currency code."},
                    "target": {"type": "str", "description": "To currency code."}}},
    {"name": "set_timer", "description": "Start a countdown timer.",
     "parameters": {"minutes": {"type": "int", "description": "Length in minutes."}}},
    {"name": "search_flights", "description": "Find flights between two cities.",
     "parameters": {"origin": {"type": "str", "description": "Departure city."},
                    "destination": {"type": "str", "description": "Arrival city."}}},
]
CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Delhi", "Rome", "Seoul"]
CODES = ["USD", "EUR", "JPY", "GBP", "INR"]


def tool_row(rng: random.Random, i: int) -> dict:
    kind = rng.randrange(5)
    if kind == 0:
        city = rng.choice(CITIES)
        q, calls = rng.choice(["What is the weather in {c}?", "Is it raining in {c} right now?",
                               "Tell me the weather for {c}."]).format(c=city), [{"name": "get_weather", "arguments": {"city": city}}]
    elif kind == 1:
        amt, a, b = rng.choice([5, 10, 20, 50, 100]), *rng.sample(CODES, 2)
        q = rng.choice(["Convert {n} {a} to {b}.", "How much is {n} {a} in {b}?"]).format(n=amt, a=a, b=b)
        calls = [{"name": "convert_currency", "arguments": {"amount": amt, "source": a, "target": b}}]
    elif kind == 2:
        m = rng.choice([1, 2, 3, 5, 10, 15, 20, 30])
        q = rng.choice(["Set a timer for {m} minutes.", "Start a {m} minute timer."]).format(m=m)
        calls = [{"name": "set_timer", "arguments": {"minutes": m}}]
    elif kind == 3:
        a, b = rng.sample(CITIES, 2)
        q = rng.choice(["Find flights from {a} to {b}.", "Are there flights from {a} to {b}?"]).format(a=a, b=b)
        calls = [{"name": "search_flights", "arguments": {"origin": a, "destination": b}}]
    else:
        q = rng.choice(["Tell me a joke about cats.", "What is your favourite colour?", "Say hello in French."])
        calls = []
    tools = rng.sample(TOOLS, k=rng.choice([2, 3, 4]))
    needed = {c["name"] for c in calls}
    tools += [t for t in TOOLS if t["name"] in needed and t not in tools]
    return {"id": i, "query": q, "tools": json.dumps(tools), "answers": json.dumps(calls)}


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    rng = random.Random(20261125)
    news, seen = [], set()
    while len(news) < 1100:
        label = len(news) % 4
        text = article(rng, label)
        if text not in seen:  # train and test never share a text
            seen.add(text)
            news.append({"text": text, "label": label})
    rng.shuffle(news)
    test = news[900:1100]
    # Sentences recur across texts built from the same phrase tables: keep out of training every text that
    # shares a 13-gram with a test text (ftstudy's own decontamination check), and draw new ones in their place.
    index = decontam.Index()
    index.add("ag_news", test)
    # (a generator of its own, so that the tool-calling rows below stay as they were)
    train, redraw = [], random.Random(20261130)
    for row in news[:900]:
        while index.scan_row(row):
            text = article(redraw, row["label"])
            if text not in seen:
                seen.add(text)
                row = {"text": text, "label": row["label"]}
        train.append(row)
    write(HERE / "ag_news_train.jsonl", train)
    write(HERE / "bench" / "ag_news_mc.jsonl", test)
    calls, seen = [], set()
    while len(calls) < 800:
        row = tool_row(rng, len(calls))
        key = (row["query"], row["tools"])
        if key not in seen:
            seen.add(key)
            calls.append(row)
    write(HERE / "xlam_train.jsonl", calls[:680])
    write(HERE / "bench" / "xlam_heldout.jsonl", calls[680:800])


if __name__ == "__main__":
    main()
