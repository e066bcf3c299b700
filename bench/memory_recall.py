"""How often recall loads the memory a question is about: 20 personal facts
among 300+ ordinary memories of one user, each asked about twice, once in the
fact's own words (lexical) and once in other words (paraphrased), with full
text alone and with hybrid recall (full text + the local embedder), side by
side on one embedded PostgreSQL 18 (it ships pgvector).

    .venv/bin/python -m bench.memory_recall [--write]

Also times planning's load (embedding the question included) for both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import machine, scratch_database, write_section
from memory.db import open_database
from memory.embedded import EmbeddedPostgres
from memory.embeddings import LocalEmbedder
from memory.memories import MemoryDraft, MemoryStore
from memory.models import User
from memory.vectors import Vectors

# (the fact, a question in its words, a question in other words)
FACTS = [
    ("I live in Tromsø", "Where do I live?", "Which city am I based in?"),
    ("My doctor is Dr. Hansen", "Who is my doctor?", "Who is my physician?"),
    ("I work as a nurse at the university hospital", "Where do I work?", "What is my job?"),
    ("My daughter is called Ingrid", "What is my daughter called?", "What's my kid's name?"),
    ("I am allergic to peanuts", "What am I allergic to?", "Which foods should I avoid?"),
    ("I drive a red Volvo", "What colour is the Volvo I drive?", "What car do I own?"),
    ("My birthday is on the 3rd of March", "When is my birthday?", "When was I born?"),
    (
        "I play the cello in an orchestra",
        "Which orchestra do I play in?",
        "What instrument do I perform?",
    ),
    ("My wife is called Marta", "What is my wife called?", "Who am I married to?"),
    ("I speak Norwegian and Polish", "Which languages do I speak?", "Am I multilingual?"),
    ("My dog is a beagle named Rufus", "What is my dog named?", "Do I have any pets?"),
    ("I am vegetarian", "Am I vegetarian?", "Do I eat meat?"),
    ("I run a marathon every autumn", "Do I run a marathon?", "What endurance sport do I do?"),
    (
        "My favourite author is Ursula K. Le Guin",
        "Who is my favourite author?",
        "Which writer do I love reading?",
    ),
    ("I studied chemistry in Bergen", "What did I study?", "What was my university degree?"),
    (
        "My brother lives in Toronto",
        "Where does my brother live?",
        "Which of my siblings is in Canada?",
    ),
    ("I am afraid of flying", "What am I afraid of?", "Do I get nervous on planes?"),
    ("I take my coffee black", "How do I take my coffee?", "Do I add milk to my drinks?"),
    (
        "My password manager is Bitwarden",
        "Which password manager do I use?",
        "Where do I keep my logins?",
    ),
    ("I grow tomatoes on my balcony", "What do I grow on my balcony?", "Do I do any gardening?"),
]
TOPICS = [
    "the quarterly report",
    "the train timetable",
    "a sorting algorithm",
    "the office printer",
    "the football results",
    "a pasta recipe",
    "the museum exhibition",
    "the budget meeting",
    "the hiking trail",
    "a podcast episode",
    "the server migration",
    "a film review",
    "the bus route",
    "the bakery's opening hours",
    "the conference talk",
    "a chess opening",
    "the library's new books",
    "the weather forecast",
    "a spreadsheet formula",
    "the team lunch",
]
VERBS = [
    "We talked about",
    "The user asked about",
    "There was a question on",
    "We compared notes on",
    "The user mentioned",
    "We looked up",
    "We summarised",
    "The user wanted tips on",
    "We drafted a note about",
    "We went through",
    "We fixed a problem with",
    "We planned",
    "We discussed",
    "The user was curious about",
    "We checked",
    "We wrote an email about",
]


def fillers() -> list[str]:
    return [f"{verb} {topic}." for verb in VERBS for topic in TOPICS][:320]


async def measure(url: str, embedder: LocalEmbedder | None) -> dict[str, object]:
    db = await open_database(url, pool_size=4)
    try:
        vectors = Vectors(db, embedder)
        await vectors.open()
        store = MemoryStore(db, vectors)
        async with db.sessions.begin() as s:
            user = User(email=f"recall-{time.time_ns()}@example.com", password_hash="x")
            s.add(user)
            await s.flush()
            user_id = user.id
        contents = fillers()
        facts = [f"User said: {fact}" for fact, _, _ in FACTS]
        for i, content in enumerate(contents):
            await store.add(user_id, MemoryDraft("fact", None, content))
            if i % 16 == 0 and i // 16 < len(facts):
                await store.add(user_id, MemoryDraft("fact", None, facts[i // 16]))
        hits = {"lexical": 0, "paraphrased": 0}
        times: list[float] = []
        for fact, lexical, paraphrased in FACTS:
            for kind, question in (("lexical", lexical), ("paraphrased", paraphrased)):
                started = time.perf_counter()
                loaded = await store.load_relevant(user_id, question)
                times.append((time.perf_counter() - started) * 1000)
                hits[kind] += f"User said: {fact}" in [m["content"] for m in loaded]
        return {
            "mode": vectors.mode,
            "hits": hits,
            "p50": statistics.median(times),
            "memories": len(contents) + len(facts),
        }
    finally:
        await db.close()


async def run() -> str:
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedPostgres(Path(scratch) / "pg", database="postgres")
        server_url = server.start()
        try:
            rows = []
            embedder = LocalEmbedder()
            for variant, used in (("full text", None), ("hybrid (local embedder)", embedder)):
                with scratch_database(server_url) as url:
                    rows.append((variant, await measure(url, used)))
            where = machine(server_url)
            await embedder.close()
        finally:
            server.stop()
    n = len(FACTS)
    lines = [
        "## memory_recall",
        "",
        f"`.venv/bin/python -m bench.memory_recall --write` on {where}; load average "
        f"{load_average:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (other "
        "sessions shared this machine).",
        "",
        f"One user with {rows[0][1]['memories']} memories: {n} personal facts among ordinary "
        f"ones. Each fact is asked about twice ({2 * n} questions): in its own words and in "
        "other words. A hit is the fact among the memories planning loads (the default "
        'budget of 1,500 tokens). "p50 load" is planning\'s whole load, embedding the '
        "question included. The database is migrated to head: embeddings stored as "
        "halfvec, searched through their index (migration 0010).",
        "",
        "| recall | lexical hits | paraphrased hits | p50 load |",
        "| --- | ---: | ---: | ---: |",
    ]
    for variant, result in rows:
        hits = result["hits"]
        assert isinstance(hits, dict)
        lines.append(
            f"| {variant} | {hits['lexical']}/{n} | {hits['paraphrased']}/{n} | "
            f"{result['p50']:.1f} ms |"
        )
    lines += [
        "",
        "Targets: lexical 100%, paraphrased ≥ 90% with the local embedder.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    body = asyncio.run(run())
    print(body)
    if args.write:
        write_section("memory_recall", body)


if __name__ == "__main__":
    main()
